/**
 * The separation-of-duties guard (beyond AWS; an account setting, on by default): no single
 * principal may hold both key administration (PutKeyPolicy, ScheduleKeyDeletion, DisableKey,
 * CreateGrant, ...) and Decrypt on the same key. A key policy or identity policy that would allow
 * it is rejected with MalformedPolicyDocumentException naming the principal and the actions; a grant
 * with ValidationException. The account root is exempt (its use is marked in every audit event).
 */
import { IamMalformedPolicyDocumentException, MalformedPolicyDocumentException, ValidationException } from '../errors/index.js';
import type { EntityKind, GroupRecord, PolicyHolder, RoleRecord, UserRecord } from '../identity/index.js';
import type { GrantRecord, KeyRecord } from '../keys/index.js';
import {
  authorize, evaluate, MANAGED_POLICIES, SOD_ADMIN_ACTIONS, SOD_USE_ACTIONS, type GrantLike, type IdentityPolicy, type PolicyDocument,
} from '../policy/index.js';
import { cachedPolicy } from './common.js';
import type { AuditDraft, CallContext, Services } from './context.js';

/** Whether the account's guard is on (the default). */
export async function sodGuardOn(svc: Services, accountId: string): Promise<boolean> {
  return (await svc.identity.accountSettings(accountId)).separationOfDuties !== false;
}

function documentsOf(h: PolicyHolder, what: string): IdentityPolicy[] {
  const out: IdentityPolicy[] = [];
  for (const [name, text] of Object.entries(h.inlinePolicies)) out.push({ source: `inline policy '${name}' of ${what}`, document: cachedPolicy(text, 'identity') });
  for (const arn of h.attachedPolicies) {
    const m = MANAGED_POLICIES.get(arn);
    if (m) out.push({ source: `managed policy ${arn} attached to ${what}`, document: cachedPolicy(m.document, 'identity') });
  }
  return out;
}

/** Every Resource pattern an Allow statement names ('*' always): the places a conflict could sit. */
function resourcesNamed(docs: readonly PolicyDocument[]): string[] {
  const out = new Set<string>(['*']);
  for (const d of docs) for (const s of d.statements) if (s.effect === 'Allow') for (const r of s.resource ?? []) out.add(r);
  return [...out];
}

/** The conflicting actions for a principal whose identity policies are `policies`, or undefined. */
export function identityConflict(arn: string, accountId: string, policies: readonly IdentityPolicy[]): { resource: string; admin: string[]; use: string[] } | undefined {
  for (const resource of resourcesNamed(policies.map((p) => p.document))) {
    const allowed = (action: string) =>
      authorize({ principal: { arn, accountId, isRoot: false }, action, resource, context: {}, identityPolicies: policies }).effect === 'Allow';
    const admin = SOD_ADMIN_ACTIONS.filter(allowed);
    const use = SOD_USE_ACTIONS.filter(allowed);
    if (admin.length > 0 && use.length > 0) return { resource, admin, use };
  }
  return undefined;
}

function conflictMessage(arn: string, c: { resource: string; admin: string[]; use: string[] }, via: string): string {
  return `Separation of duties: ${via} would give ${arn} both key administration (${c.admin.join(', ')}) and key use (${c.use.join(', ')}) on ${c.resource === '*' ? 'every key' : c.resource}. Give these duties to different principals, or turn the account's separation-of-duties guard off.`;
}

// ---- across policy kinds: key policy + identity policies + grants, asked of the real evaluator ----

/** A principal whose effective rights on keys are checked: its identity policies as they would be. */
interface Subject {
  readonly arn: string;
  readonly accountId: string;
  readonly roleArn?: string;
  readonly policies: readonly IdentityPolicy[];
}

interface KeyConflict {
  keyArn: string;
  admin: string[];
  use: string[];
  adminVia: string;
  useVia: string;
}

/**
 * Would `subject` be allowed both duties on this key, counting the key policy, the subject's
 * identity policies and the key's grants together (policy/authorize, as a request would be)?
 */
function conflictOnKey(
  subject: Subject, keyArn: string, keyPolicy: PolicyDocument, grants: readonly GrantLike[], encryptionContext?: Record<string, string>,
): KeyConflict | undefined {
  const reasons = new Map<string, string>();
  const allowed = (action: string) => {
    const d = authorize({
      principal: { arn: subject.arn, accountId: subject.accountId, roleArn: subject.roleArn, isRoot: false },
      action, resource: keyArn, context: { 'aws:principalarn': subject.roleArn ?? subject.arn, 'aws:principalaccount': subject.accountId },
      keyPolicy, identityPolicies: subject.policies, grants, encryptionContext,
    });
    if (d.effect === 'Allow') reasons.set(action, d.reason);
    return d.effect === 'Allow';
  };
  const use = SOD_USE_ACTIONS.filter(allowed);
  if (use.length === 0) return undefined;
  const admin = SOD_ADMIN_ACTIONS.filter(allowed);
  if (admin.length === 0) return undefined;
  return { keyArn, admin, use, adminVia: reasons.get(admin[0]!)!, useVia: reasons.get(use[0]!)! };
}

function keyConflictMessage(arn: string, c: KeyConflict, via: string): string {
  return `Separation of duties: ${via} would give ${arn} both key administration (${c.admin.join(', ')}) and key use (${c.use.join(', ')}) on ${c.keyArn} ` +
    `(administration: ${c.adminVia}; use: ${c.useVia}). Give these duties to different principals, or turn the account's separation-of-duties guard off.`;
}

/** A version of a customer-managed policy that is about to become its default (CreatePolicyVersion). */
interface PolicyOverride {
  readonly arn: string;
  readonly document: string;
}

/**
 * A user's, group's or role's identity policies: inline, AWS-managed and customer-managed (in its
 * default version, or in `override`'s document for the policy being changed).
 */
async function holderPolicies(svc: Services, acct: string, h: PolicyHolder, what: string, override?: PolicyOverride): Promise<IdentityPolicy[]> {
  void acct;
  const out = documentsOf(h, what);
  for (const arn of h.attachedPolicies) {
    if (MANAGED_POLICIES.has(arn)) continue;
    const text = override?.arn === arn ? override.document : await svc.identity.managedPolicyDocument(arn);
    if (text !== undefined) out.push({ source: `managed policy ${arn} attached to ${what}`, document: cachedPolicy(text, 'identity') });
  }
  return out;
}

/** A user's identity policies (its own and its groups'), with one group possibly replaced by its changed form. */
async function userSubject(svc: Services, acct: string, u: UserRecord, own: PolicyHolder = u, changedGroup?: { name: string; holder: PolicyHolder }, extraGroup?: GroupRecord): Promise<Subject> {
  const policies = await holderPolicies(svc, acct, own, `user ${u.userName}`);
  const groups = new Set(u.groups);
  if (extraGroup) groups.add(extraGroup.groupName);
  for (const gn of groups) {
    const g = changedGroup && changedGroup.name.toLowerCase() === gn.toLowerCase()
      ? changedGroup.holder
      : extraGroup && extraGroup.groupName === gn ? extraGroup : await svc.identity.getEntity<GroupRecord>('group', acct, gn);
    if (g) policies.push(...(await holderPolicies(svc, acct, g, `group ${gn}`)));
  }
  return { arn: u.arn, accountId: acct, policies };
}

async function roleSubject(svc: Services, acct: string, r: RoleRecord, own: PolicyHolder = r): Promise<Subject> {
  return { arn: r.arn, roleArn: r.arn, accountId: acct, policies: await holderPolicies(svc, acct, own, `role ${r.roleName}`) };
}

/** Every key of the account, in every region (identity policies reach them all). */
async function accountKeys(svc: Services, acct: string): Promise<KeyRecord[]> {
  const out: KeyRecord[] = [];
  for (const id of await svc.keys.listAccountKeyIds(acct)) {
    const k = await svc.keys.getKey(id);
    if (k) out.push(k);
  }
  return out;
}

/** An identity change: the subject's rights after it, on every existing key of the account. */
async function assertNoKeyConflict(svc: Services, subject: Subject, via: string): Promise<void> {
  for (const k of await accountKeys(svc, subject.accountId)) {
    const c = conflictOnKey(subject, k.arn, cachedPolicy(k.policy), k.grants ?? []);
    if (c) throw new IamMalformedPolicyDocumentException(keyConflictMessage(subject.arn, c, via));
  }
}

/** Every user (not offboarded) and role of the account, with its identity policies as they are. */
async function accountSubjects(svc: Services, acct: string): Promise<Subject[]> {
  const out: Subject[] = [];
  for (const u of await svc.identity.listEntities<UserRecord>('user', acct)) if (u.offboardedAt === undefined) out.push(await userSubject(svc, acct, u));
  for (const r of await svc.identity.listEntities<RoleRecord>('role', acct)) out.push(await roleSubject(svc, acct, r));
  return out;
}

/**
 * CreateGrant: the grantee's rights on the key with the new grant added (under the grant's
 * encryption-context constraint, if any), counting its key-policy and identity-policy rights too.
 */
export async function assertSodForGrant(svc: Services, acct: string, key: KeyRecord, grant: GrantRecord): Promise<void> {
  if (!(await sodGuardOn(svc, acct))) return;
  const subject = (await accountSubjects(svc, acct)).find((s) => s.arn === grant.granteePrincipal);
  if (!subject) return;
  const ec = grant.constraints?.encryptionContextEquals ?? grant.constraints?.encryptionContextSubset;
  const c = conflictOnKey(subject, key.arn, cachedPolicy(key.policy), [...(key.grants ?? []), grant], ec ? { ...ec } : undefined);
  if (c) {
    throw new ValidationException(
      `Separation of duties: this grant would give ${subject.arn} both key administration (${c.admin.join(', ')}) and key use (${c.use.join(', ')}) on ${key.arn} ` +
      `(administration: ${c.adminVia}; use: ${c.useVia}).`,
    );
  }
}

/**
 * Checks an identity-policy change of a user, group or role: `change` gives the entity's policies
 * after the change. Every principal the entity's policies reach (the user; each member of the
 * group; the role) is checked with all of its policies together.
 */
export async function assertSodForEntity(
  svc: Services, call: CallContext, audit: AuditDraft, kind: EntityKind, name: string, change: (h: PolicyHolder) => PolicyHolder,
  override?: PolicyOverride, via = 'this policy change',
): Promise<void> {
  const acct = call.accountId;
  if (!(await sodGuardOn(svc, acct))) return;
  const checkUser = async (userName: string, changedGroup?: { name: string; holder: PolicyHolder }) => {
    const u = await svc.identity.getEntity<UserRecord>('user', acct, userName);
    if (!u) return;
    const own = kind === 'user' ? change(u) : u;
    const policies = await holderPolicies(svc, acct, own, `user ${u.userName}`, override);
    for (const gn of u.groups) {
      const g = changedGroup && changedGroup.name.toLowerCase() === gn.toLowerCase() ? changedGroup.holder : await svc.identity.getEntity<GroupRecord>('group', acct, gn);
      if (g) policies.push(...(await holderPolicies(svc, acct, g, `group ${gn}`, override)));
    }
    const c = identityConflict(u.arn, acct, policies);
    if (c) throw new IamMalformedPolicyDocumentException(conflictMessage(u.arn, c, via));
    if (u.offboardedAt === undefined) await assertNoKeyConflict(svc, { arn: u.arn, accountId: acct, policies }, via);
  };
  if (kind === 'user') await checkUser(name);
  else if (kind === 'group') {
    const g = await svc.identity.getEntity<GroupRecord>('group', acct, name);
    if (!g) return;
    const holder = change(g);
    for (const member of g.members) await checkUser(member, { name: g.groupName, holder });
  } else {
    const r = await svc.identity.getEntity<RoleRecord>('role', acct, name);
    if (!r) return;
    const subject = { arn: r.arn, roleArn: r.arn, accountId: acct, policies: await holderPolicies(svc, acct, change(r), `role ${r.roleName}`, override) };
    const c = identityConflict(r.arn, acct, subject.policies);
    if (c) throw new IamMalformedPolicyDocumentException(conflictMessage(r.arn, c, via));
    await assertNoKeyConflict(svc, subject, via);
  }
  audit.detail('separationOfDuties', 'checked');
}

/** AddUserToGroup: the user's policies together with the group's. */
export async function assertSodForMembership(svc: Services, call: CallContext, userName: string, groupName: string): Promise<void> {
  const acct = call.accountId;
  if (!(await sodGuardOn(svc, acct))) return;
  const u = await svc.identity.getEntity<UserRecord>('user', acct, userName);
  const g = await svc.identity.getEntity<GroupRecord>('group', acct, groupName);
  if (!u || !g) return;
  const policies = await holderPolicies(svc, acct, u, `user ${u.userName}`);
  for (const gn of new Set([...u.groups, g.groupName])) {
    const other = gn === g.groupName ? g : await svc.identity.getEntity<GroupRecord>('group', acct, gn);
    if (other) policies.push(...(await holderPolicies(svc, acct, other, `group ${gn}`)));
  }
  const c = identityConflict(u.arn, acct, policies);
  if (c) throw new IamMalformedPolicyDocumentException(conflictMessage(u.arn, c, `adding ${u.userName} to group ${g.groupName}`));
  if (u.offboardedAt === undefined) await assertNoKeyConflict(svc, { arn: u.arn, accountId: acct, policies }, `adding ${u.userName} to group ${g.groupName}`);
}

/**
 * A key policy: every principal it names (other than the account and its root) must not be
 * allowed both duties on the key by the policy itself.
 */
export async function assertSodForKeyPolicy(
  svc: Services, accountId: string, keyArn: string, doc: PolicyDocument, grants: readonly GrantLike[] = [],
): Promise<void> {
  if (!(await sodGuardOn(svc, accountId))) return;
  await assertSodForKeyPolicyAlone(accountId, keyArn, doc);
  // Across policy kinds: each user and role of the account, with its identity policies and the key's grants.
  for (const subject of await accountSubjects(svc, accountId)) {
    const c = conflictOnKey(subject, keyArn, doc, grants);
    if (c) throw new MalformedPolicyDocumentException(keyConflictMessage(subject.arn, c, 'this key policy'));
  }
}

/** The key policy by itself: no principal it names may be allowed both duties by it alone. */
function assertSodForKeyPolicyAlone(accountId: string, keyArn: string, doc: PolicyDocument): void {
  const named = new Set<string>();
  for (const s of doc.statements) {
    if (s.effect !== 'Allow' || !s.principal) continue;
    if (s.principal === '*') named.add('*');
    else for (const v of s.principal.AWS ?? []) named.add(v);
  }
  for (const p of named) {
    if (/^\d{12}$/.test(p) || /^arn:aws:iam::\d{12}:root$/.test(p)) continue;
    // '*' stands for anyone: a principal no statement names, so only '*' statements reach it.
    const arn = p === '*' ? `arn:aws:iam::${accountId}:user/\u0000anyone` : p;
    const principal = { arn, accountId: /^arn:aws:(?:iam|sts)::(\d{12}):/.exec(arn)?.[1] ?? accountId, roleArn: arn.includes(':role/') ? arn : undefined };
    const allowed = (action: string) => {
      const d = evaluate(doc, { principal, action, resource: keyArn, context: {} });
      return d.effect === 'Allow' && d.allowedAs === 'principal';
    };
    const admin = SOD_ADMIN_ACTIONS.filter(allowed);
    const use = SOD_USE_ACTIONS.filter(allowed);
    if (admin.length > 0 && use.length > 0) {
      throw new MalformedPolicyDocumentException(conflictMessage(p === '*' ? 'every principal (*)' : p, { resource: keyArn, admin, use }, 'this key policy'));
    }
  }
}

/**
 * CreatePolicyVersion with SetAsDefault: the new document comes into force at once for every user,
 * group (its members) and role the policy is attached to; each is checked as if it were already in force.
 */
export async function assertSodForPolicyVersion(svc: Services, call: CallContext, audit: AuditDraft, policyArn: string, document: string): Promise<void> {
  if (!(await sodGuardOn(svc, call.accountId))) return;
  const override = { arn: policyArn, document };
  for (const a of await svc.identity.policyAttachments(call.accountId, policyArn)) {
    await assertSodForEntity(svc, call, audit, a.kind, a.name, (h) => h, override, `this policy version (attached to ${a.kind} ${a.name})`);
  }
}
