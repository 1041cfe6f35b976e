import { globMatch, type PolicyDocument, type PrincipalSpec, type Statement } from './policy.js';

/** What a new policy allows that the previous one did not (for the key-policy-widened alert). */
export interface PolicyWidening {
  /** Principals the new policy allows something and the previous allowed nothing. */
  addedPrincipals: string[];
  /** principal -> actions newly allowed to it (an action newly allowed, or its condition removed). */
  addedActions: { principal: string; actions: string[] }[];
  /** Deny statements of the previous policy whose (principal, action) the new one no longer denies. */
  removedDenies: { principal: string; actions: string[] }[];
}

interface Pair { principal: string; action: string; conditional: boolean }

function principals(spec: PrincipalSpec | undefined, not: PrincipalSpec | undefined): string[] {
  if (not !== undefined) return ['NotPrincipal:' + JSON.stringify(not)];
  if (spec === undefined || spec === '*') return ['*'];
  // An account id and the account's root ARN name the same principal.
  return Object.entries(spec).flatMap(([type, values]) => values.map((v) => (type === 'AWS' ? (/^\d{12}$/.test(v) ? `arn:aws:iam::${v}:root` : v) : `${type}:${v}`)));
}

function pairs(doc: PolicyDocument, effect: 'Allow' | 'Deny'): Pair[] {
  const out: Pair[] = [];
  for (const st of doc.statements as Statement[]) {
    if (st.effect !== effect) continue;
    const actions = st.action ?? (st.notAction ? ['NotAction:' + st.notAction.join(',')] : []);
    for (const principal of principals(st.principal, st.notPrincipal)) {
      for (const action of actions) out.push({ principal, action: action.toLowerCase(), conditional: st.condition !== undefined });
    }
  }
  return out;
}

/** Whether `had` covers `p`: same or wildcard principal, an action pattern that matches, and no stricter condition. */
function covers(had: Pair, p: Pair): boolean {
  if (had.principal !== '*' && had.principal !== p.principal) return false;
  if (had.action !== p.action && !globMatch(had.action, p.action, true)) return false;
  return !had.conditional || p.conditional;
}

function group(list: Pair[]): { principal: string; actions: string[] }[] {
  const m = new Map<string, Set<string>>();
  for (const p of list) (m.get(p.principal) ?? m.set(p.principal, new Set()).get(p.principal)!).add(p.action);
  return [...m].map(([principal, actions]) => ({ principal, actions: [...actions].sort() }));
}

/**
 * Compares two key policies' Allow and Deny statements by (principal, action). Conditions are
 * compared only as present or absent: removing one counts as widening, changing one does not.
 * Resource elements are ignored (in a key policy they name the key itself).
 */
export function policyWidening(before: PolicyDocument | undefined, after: PolicyDocument): PolicyWidening | undefined {
  const oldAllow = before ? pairs(before, 'Allow') : [];
  const newAllow = pairs(after, 'Allow');
  const added = newAllow.filter((p) => !oldAllow.some((h) => covers(h, p)));
  const oldPrincipals = new Set(oldAllow.map((p) => p.principal));
  const addedPrincipals = [...new Set(added.map((p) => p.principal))].filter((p) => !oldPrincipals.has(p) && !oldPrincipals.has('*')).sort();
  const oldDeny = before ? pairs(before, 'Deny') : [];
  const newDeny = pairs(after, 'Deny');
  const removedDenies = oldDeny.filter((d) => !newDeny.some((n) => n.principal === d.principal && n.action === d.action && (!n.conditional || d.conditional)));
  if (added.length === 0 && removedDenies.length === 0) return undefined;
  return { addedPrincipals, addedActions: group(added), removedDenies: group(removedDenies) };
}
