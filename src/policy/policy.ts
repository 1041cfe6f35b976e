import { MalformedPolicyDocumentException } from '../errors/index.js';
import { conditionHolds, substituteVariables, validateCondition, type ConditionContext } from './conditions.js';

/**
 * The AWS policy language as a pure function: no I/O, no clock (time comes in the request).
 * Explicit Deny wins; no matching Allow is an implicit deny; every decision names what decided it.
 */

export type Effect = 'Allow' | 'Deny';

export interface Statement {
  readonly sid?: string;
  readonly effect: Effect;
  readonly principal?: PrincipalSpec;
  readonly notPrincipal?: PrincipalSpec;
  readonly action?: readonly string[];
  readonly notAction?: readonly string[];
  readonly resource?: readonly string[];
  readonly notResource?: readonly string[];
  readonly condition?: Readonly<Record<string, unknown>>;
  readonly index: number;
}

/** '*' or a map of principal type to values (AWS, Service, Federated, CanonicalUser). */
export type PrincipalSpec = '*' | Readonly<Record<string, readonly string[]>>;

export interface PolicyDocument {
  readonly version: string;
  readonly id?: string;
  readonly statements: readonly Statement[];
}

export interface PolicyPrincipal {
  readonly arn: string;
  readonly accountId: string;
  /** For a role session: the role's ARN, which a policy may name to mean all of its sessions. */
  readonly roleArn?: string;
}

export interface PolicyRequest {
  readonly principal: PolicyPrincipal;
  /** e.g. `kms:Encrypt` */
  readonly action: string;
  /** e.g. the key ARN */
  readonly resource: string;
  /** Condition keys of the request (aws:*, kms:*), any case. */
  readonly context?: ConditionContext;
}

export type DecisionEffect = 'Allow' | 'Deny' | 'ImplicitDeny';

export interface Decision {
  readonly effect: DecisionEffect;
  /** Which policy and statement decided, in words an auditor can read. */
  readonly reason: string;
  /**
   * For an Allow from a resource policy: 'principal' when the statement names the caller (or '*'),
   * 'account' when it names only the caller's account, which delegates to the account's IAM policies.
   */
  readonly allowedAs?: 'principal' | 'account';
}

const VERSIONS = new Set(['2012-10-17', '2008-10-17']);
const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
const MAX_POLICY_BYTES = 32768;

function malformed(msg: string): never {
  throw new MalformedPolicyDocumentException(msg);
}

function stringList(v: unknown, what: string): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[];
  return malformed(`${what} must be a string or a non-empty list of strings.`);
}

function principalSpec(v: unknown, what: string): PrincipalSpec {
  if (v === '*') return '*';
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const out: Record<string, string[]> = {};
    for (const [k, val] of Object.entries(v)) {
      if (!['AWS', 'Service', 'Federated', 'CanonicalUser'].includes(k)) malformed(`${what} has an unknown principal type '${k}'.`);
      const list = stringList(val, `${what}.${k}`);
      if (k === 'AWS') {
        for (const p of list) {
          if (p !== '*' && !/^\d{12}$/.test(p) && !/^arn:aws:(iam|sts)::\d{12}:.+$/.test(p)) {
            malformed(`Policy contains a statement with one or more invalid principals: '${p}'.`);
          }
        }
      }
      out[k] = list;
    }
    if (Object.keys(out).length === 0) malformed(`${what} is empty.`);
    return out;
  }
  return malformed(`${what} must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}.`);
}

function checkActions(list: string[]): void {
  for (const a of list) {
    if (a === '*') continue;
    if (!/^[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+$/.test(a)) malformed(`Policy contains an invalid action: '${a}'.`);
  }
}

/**
 * Parses and validates a policy document. `requirePrincipal` is true for resource (key) policies,
 * where every statement must name whom it applies to.
 */
export function parsePolicy(text: string, opts: { requirePrincipal: boolean }): PolicyDocument {
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) malformed(`The policy is larger than ${MAX_POLICY_BYTES} bytes.`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return malformed('The policy is not valid JSON.');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) malformed('The policy must be a JSON object.');
  const doc = raw as Record<string, unknown>;
  const version = doc.Version ?? '2008-10-17';
  if (typeof version !== 'string' || !VERSIONS.has(version)) malformed(`The policy Version '${String(version)}' is not supported; use "2012-10-17".`);
  if (doc.Id !== undefined && typeof doc.Id !== 'string') malformed('The policy Id must be a string.');
  for (const k of Object.keys(doc)) {
    if (!['Version', 'Id', 'Statement'].includes(k)) malformed(`The policy has an unknown top-level element '${k}'.`);
  }
  if (doc.Statement === undefined) malformed('The policy has no Statement.');
  const rawStatements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  if (rawStatements.length === 0) malformed('The policy has no Statement.');
  const sids = new Set<string>();
  const statements = rawStatements.map((s, index): Statement => {
    const where = `Statement ${index + 1}`;
    if (!s || typeof s !== 'object' || Array.isArray(s)) malformed(`${where} must be a JSON object.`);
    const st = s as Record<string, unknown>;
    for (const k of Object.keys(st)) if (!STATEMENT_KEYS.has(k)) malformed(`${where} has an unknown element '${k}'.`);
    if (st.Sid !== undefined) {
      if (typeof st.Sid !== 'string') malformed(`${where}: Sid must be a string.`);
      if (sids.has(st.Sid)) malformed(`Statement IDs (SID) in a single policy must be unique: '${st.Sid}'.`);
      sids.add(st.Sid);
    }
    if (st.Effect !== 'Allow' && st.Effect !== 'Deny') malformed(`${where}: Effect must be "Allow" or "Deny".`);
    if ((st.Action === undefined) === (st.NotAction === undefined)) malformed(`${where} must have exactly one of Action or NotAction.`);
    if (st.Resource !== undefined && st.NotResource !== undefined) malformed(`${where} must not have both Resource and NotResource.`);
    if (st.Principal !== undefined && st.NotPrincipal !== undefined) malformed(`${where} must not have both Principal and NotPrincipal.`);
    if (opts.requirePrincipal && st.Principal === undefined && st.NotPrincipal === undefined) {
      malformed(`${where} has no Principal; every statement of a key policy must name a principal.`);
    }
    if (!opts.requirePrincipal && (st.Principal !== undefined || st.NotPrincipal !== undefined)) {
      malformed(`${where}: an identity policy must not name a Principal.`);
    }
    const action = st.Action === undefined ? undefined : stringList(st.Action, `${where}: Action`);
    const notAction = st.NotAction === undefined ? undefined : stringList(st.NotAction, `${where}: NotAction`);
    checkActions(action ?? notAction ?? []);
    if (st.Condition !== undefined && (typeof st.Condition !== 'object' || st.Condition === null || Array.isArray(st.Condition))) {
      malformed(`${where}: Condition must be a JSON object.`);
    }
    if (st.Condition !== undefined) validateCondition(st.Condition as Record<string, unknown>, where);
    return {
      sid: st.Sid as string | undefined,
      effect: st.Effect,
      principal: st.Principal === undefined ? undefined : principalSpec(st.Principal, `${where}: Principal`),
      notPrincipal: st.NotPrincipal === undefined ? undefined : principalSpec(st.NotPrincipal, `${where}: NotPrincipal`),
      action,
      notAction,
      resource: st.Resource === undefined ? undefined : stringList(st.Resource, `${where}: Resource`),
      notResource: st.NotResource === undefined ? undefined : stringList(st.NotResource, `${where}: NotResource`),
      condition: st.Condition as Record<string, unknown> | undefined,
      index,
    };
  });
  return { version, id: doc.Id as string | undefined, statements };
}

const globCache = new Map<string, RegExp>();
/** AWS wildcard match: `*` any run, `?` one character; action names compare case-insensitively. */
export function globMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*') && !pattern.includes('?')) {
    return caseInsensitive ? pattern.toLowerCase() === value.toLowerCase() : pattern === value;
  }
  const cacheKey = (caseInsensitive ? 'i:' : 's:') + pattern;
  let re = globCache.get(cacheKey);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, caseInsensitive ? 'is' : 's');
    if (globCache.size > 1000) globCache.clear();
    globCache.set(cacheKey, re);
  }
  return re.test(value);
}

/**
 * How a Principal element names the caller: 'principal' for the caller itself (its ARN, its role's
 * ARN for a role session, or '*'), 'account' for its account (the account id or root ARN), which
 * for anyone but root means "as the account's IAM policies allow". In NotPrincipal (`exact`) a name
 * excludes only exactly that principal.
 */
function principalMatch(spec: PrincipalSpec, p: PolicyPrincipal, exact = false): 'principal' | 'account' | undefined {
  if (spec === '*') return 'principal';
  const aws = spec.AWS;
  if (!aws) return undefined;
  const isRoot = p.arn === `arn:aws:iam::${p.accountId}:root`;
  let found: 'principal' | 'account' | undefined;
  for (const v of aws) {
    if (v === '*' || v === p.arn || (p.roleArn !== undefined && v === p.roleArn)) return 'principal';
    const namesAccount = v === p.accountId || v === `arn:aws:iam::${p.accountId}:root`;
    if (namesAccount) {
      if (isRoot) return 'principal';
      if (!exact) found = 'account';
    }
  }
  return found;
}

function statementApplies(s: Statement, req: PolicyRequest): 'principal' | 'account' | undefined {
  let as: 'principal' | 'account' | undefined = 'principal';
  if (s.principal) {
    as = principalMatch(s.principal, req.principal);
    if (!as) return undefined;
  }
  if (s.notPrincipal && principalMatch(s.notPrincipal, req.principal, true)) return undefined;
  if (s.action && !s.action.some((a) => globMatch(a, req.action, true))) return undefined;
  if (s.notAction && s.notAction.some((a) => globMatch(a, req.action, true))) return undefined;
  const ctx = req.context ?? {};
  const res = (r: string) => globMatch(substituteVariables(r, ctx), req.resource);
  if (s.resource && !s.resource.some(res)) return undefined;
  if (s.notResource && s.notResource.some(res)) return undefined;
  if (s.condition && !conditionHolds(s.condition, ctx)) return undefined;
  return as;
}

function describe(policyName: string, s: Statement): string {
  return `${policyName} statement ${s.sid ? `'${s.sid}'` : `#${s.index + 1}`}`;
}

/**
 * Evaluates one policy: an applicable Deny wins; otherwise the first applicable Allow, preferring
 * one that names the caller over one that names only its account; otherwise an implicit deny.
 */
export function evaluate(doc: PolicyDocument, req: PolicyRequest, policyName = 'key policy'): Decision {
  let allow: Statement | undefined;
  let allowAs: 'principal' | 'account' | undefined;
  for (const s of doc.statements) {
    const as = statementApplies(s, req);
    if (!as) continue;
    if (s.effect === 'Deny') return { effect: 'Deny', reason: `explicit deny in ${describe(policyName, s)}` };
    if (!allow || (allowAs === 'account' && as === 'principal')) {
      allow = s;
      allowAs = as;
    }
  }
  if (allow) return { effect: 'Allow', reason: `allowed by ${describe(policyName, allow)}`, allowedAs: allowAs };
  return { effect: 'ImplicitDeny', reason: `no statement in the ${policyName} allows ${req.action}` };
}

/** AWS's default key policy: the account (and so its IAM policies) controls the key. */
export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [
        {
          Sid: 'Enable IAM User Permissions',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${accountId}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    },
    null,
    2,
  );
}
