/**
 * ReviewAccess (Keyhold's own; `keyhold access review`): for every key of the caller's account and
 * region, every principal that can call each action on it and through what (key policy statement,
 * inline or managed policy of a user, its groups or a role, grant), when each last actually used the
 * key (the audit log's last-use data), and flags:
 *  - sod-conflict: one principal (not the account root, which is exempt) may both administer the key
 *    (PutKeyPolicy, ScheduleKeyDeletion, DisableKey, CreateGrant, ...) and Decrypt with it;
 *  - orphaned-access: a principal that is offboarded, deleted, has no active access key, or is an
 *    ended role session, yet is still named in the key policy or a grant;
 *  - unused-access: an active principal that can use the key cryptographically but has not for
 *    N days (default 90), counting from the later of its creation and the key's when never used;
 *  - owner-gone: the key's owner (Owner tag, else creator) is no longer an active principal.
 * "Who can" is asked of the same evaluator every request goes through (decideOnKey -> policy
 * authorize), for each candidate principal: the root, every user and role of the account, and every
 * principal named in a key policy or grant. Conditions are evaluated with the reviewer's request
 * facts (source IP, time); a grant with an encryption-context constraint is evaluated under that
 * context, so such grants count.
 */
import { ValidationException } from '../errors/index.js';
import type { AccessKeyRecord, RoleRecord, UserRecord } from '../identity/index.js';
import { ownerOf, type KeyRecord } from '../keys/index.js';
import { SOD_ADMIN_ACTIONS, SOD_USE_ACTIONS } from '../policy/index.js';
import type { AccountId, Principal } from '../types/index.js';
import { authorizeAccount, cachedPolicy, decideOnKey } from './common.js';
import type { CallContext, Operation, Services } from './context.js';
import { TRACKED_CRYPTO_OPERATIONS } from './get-key-last-usage.js';

const DAY_MS = 86_400_000;
export const DEFAULT_UNUSED_DAYS = 90;

/** Key management actions asked about for every key. */
const MANAGEMENT_ACTIONS = [
  'DescribeKey', 'GetKeyPolicy', 'PutKeyPolicy', 'EnableKey', 'DisableKey', 'ScheduleKeyDeletion', 'CancelKeyDeletion',
  'EnableKeyRotation', 'DisableKeyRotation', 'RotateKeyOnDemand', 'TagResource', 'UntagResource', 'UpdateKeyDescription',
  'CreateAlias', 'UpdateAlias', 'DeleteAlias', 'CreateGrant', 'ListGrants', 'RevokeGrant',
] as const;

/** The cryptographic actions a key of each usage supports. */
function cryptoActions(k: KeyRecord): string[] {
  switch (k.keyUsage) {
    case 'ENCRYPT_DECRYPT':
      return k.keySpec === 'SYMMETRIC_DEFAULT'
        ? ['Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext']
        : ['Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GetPublicKey'];
    case 'SIGN_VERIFY':
      return ['Sign', 'Verify', 'GetPublicKey'];
    case 'GENERATE_VERIFY_MAC':
      return ['GenerateMac', 'VerifyMac'];
    default:
      return ['DeriveSharedSecret', 'GetPublicKey'];
  }
}

export type PrincipalStatus = 'active' | 'inactive' | 'offboarded' | 'deleted' | 'ended';
export type ReviewFlag = 'sod-conflict' | 'orphaned-access' | 'unused-access' | 'owner-gone';

export interface ReviewAccessInput {
  keyId?: string;
  principalArn?: string;
  unusedDays?: number;
}

export interface ReviewedPrincipal {
  principalArn: string;
  principalType: 'Root' | 'User' | 'Role' | 'AssumedRole';
  status: PrincipalStatus;
  actions: string[];
  /** Each reason with the actions it allows, e.g. "allowed by key policy statement 'Use'": [Decrypt, Encrypt]. */
  via: { reason: string; actions: string[] }[];
  /** Where the key policy or grants name this principal (for orphaned access). */
  namedIn: string[];
  lastUsedDate?: Date;
  lastUsedOperation?: string;
  useCount: number;
  flags: ReviewFlag[];
}

export interface ReviewedKey {
  keyArn: string;
  keyState: string;
  owner: string;
  ownerStatus: PrincipalStatus;
  principals: ReviewedPrincipal[];
  flags: { flag: ReviewFlag; principalArn: string; message: string }[];
}

export interface ReviewAccessOutput {
  accountId: string;
  region: string;
  generatedAt: Date;
  unusedDays: number;
  keys: ReviewedKey[];
}

interface Candidate {
  arn: string;
  type: ReviewedPrincipal['principalType'];
  principal: Principal;
  status: PrincipalStatus;
  /** When it came to exist (for "unused since"), if known. */
  createdAt?: number;
}

const USER_ARN = /^arn:aws:iam::(\d{12}):user\/(?:.*\/)?([^/]+)$/;
const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/;
const SESSION_ARN = /^arn:aws:sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/;
const ROOT_ARN = /^arn:aws:iam::(\d{12}):root$/;

async function userStatus(svc: Services, u: UserRecord | undefined, arn: string): Promise<PrincipalStatus> {
  if (!u || u.arn !== arn) return 'deleted';
  if (u.offboardedAt !== undefined) return 'offboarded';
  const keys: AccessKeyRecord[] = await svc.identity.listAccessKeys(u.accountId, u.userName);
  return keys.some((k) => k.status === 'Active') ? 'active' : 'inactive';
}

/** A principal named by ARN (in a policy, a grant, or the --principal filter), as the evaluator sees it. */
async function candidateFromArn(svc: Services, arn: string): Promise<Candidate | undefined> {
  let m = ROOT_ARN.exec(arn);
  if (m) {
    const acct = m[1]! as AccountId;
    const active = await svc.identity.isActivePrincipal(arn);
    return { arn, type: 'Root', status: active ? 'active' : 'deleted', principal: { accountId: acct, arn, type: 'Root', accessKeyId: '', userId: acct } };
  }
  m = USER_ARN.exec(arn);
  if (m) {
    const acct = m[1]! as AccountId;
    const u = await svc.identity.getEntity<UserRecord>('user', acct, m[2]!);
    return {
      arn, type: 'User', status: await userStatus(svc, u, arn), createdAt: u?.createdAt,
      principal: { accountId: acct, arn, type: 'IAMUser', accessKeyId: '', userId: u?.userId ?? '', userName: m[2]! },
    };
  }
  m = ROLE_ARN.exec(arn);
  if (m) {
    const acct = m[1]! as AccountId;
    const r = await svc.identity.getEntity<RoleRecord>('role', acct, m[2]!);
    const live = r !== undefined && r.arn === arn;
    return {
      arn, type: 'Role', status: live ? 'active' : 'deleted', createdAt: r?.createdAt,
      // Evaluated as a session of the role: the role's policies apply, and policies naming the role match.
      principal: { accountId: acct, arn, type: 'AssumedRole', accessKeyId: '', userId: r?.roleId ?? '', roleName: m[2]!, roleArn: arn, sessionName: '*' },
    };
  }
  m = SESSION_ARN.exec(arn);
  if (m) {
    const acct = m[1]! as AccountId;
    const r = await svc.identity.getEntity<RoleRecord>('role', acct, m[2]!);
    const active = await svc.identity.isActivePrincipal(arn, svc.clock.now());
    return {
      arn, type: 'AssumedRole', status: active ? 'active' : r ? 'ended' : 'deleted',
      principal: { accountId: acct, arn, type: 'AssumedRole', accessKeyId: '', userId: r?.roleId ?? '', roleName: m[2]!, roleArn: r?.arn, sessionName: m[3]! },
    };
  }
  return undefined;
}

/** Who a key policy names (other than the account itself) and who its grants name. */
function namedPrincipals(k: KeyRecord): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (arn: string, where: string) => {
    if (/^\d{12}$/.test(arn) || arn === '*') return;
    (out.get(arn) ?? out.set(arn, new Set()).get(arn)!).add(where);
  };
  for (const s of cachedPolicy(k.policy).statements) {
    if (s.principal && s.principal !== '*') {
      for (const arn of s.principal.AWS ?? []) {
        if (!ROOT_ARN.test(arn)) add(arn, `key policy statement ${s.sid ? `'${s.sid}'` : `#${s.index + 1}`} (${s.effect})`);
      }
    }
  }
  for (const g of k.grants ?? []) {
    add(g.granteePrincipal, `grant ${g.grantId} (grantee)`);
    if (g.retiringPrincipal) add(g.retiringPrincipal, `grant ${g.grantId} (retiring principal)`);
  }
  return out;
}

function callAs(call: CallContext, principal: Principal): CallContext {
  return { ...call, principal, accountId: principal.accountId };
}

/** What the evaluator allows this principal on this key, with each reason. */
async function accessOf(svc: Services, call: CallContext, k: KeyRecord, c: Candidate): Promise<Map<string, string>> {
  const allowed = new Map<string, string>();
  const asThem = callAs(call, c.principal);
  for (const action of [...cryptoActions(k), ...MANAGEMENT_ACTIONS]) {
    const d = await decideOnKey(svc, asThem, k, action, undefined);
    if (d.effect === 'Allow') allowed.set(action, d.reason);
  }
  // A grant constrained to an encryption context allows its operations under that context only.
  for (const g of k.grants ?? []) {
    const ec = g.constraints?.encryptionContextEquals ?? g.constraints?.encryptionContextSubset;
    if (!ec || (g.granteePrincipal !== c.arn && g.granteePrincipal !== c.principal.roleArn)) continue;
    for (const op of g.operations) {
      if (allowed.has(op)) continue;
      const d = await decideOnKey(svc, asThem, k, op, undefined, { encryptionContext: { ...ec } });
      if (d.effect === 'Allow') allowed.set(op, `${d.reason} (with encryption context ${JSON.stringify(ec)})`);
    }
  }
  return allowed;
}

export const reviewAccess: Operation<ReviewAccessInput, ReviewAccessOutput> = {
  name: 'ReviewAccess',
  eventSource: 'keyhold.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'ReviewAccess', audit, '*', 'keyhold');
    const acct = call.accountId;
    const unusedDays = input.unusedDays ?? DEFAULT_UNUSED_DAYS;
    if (!Number.isInteger(unusedDays) || unusedDays < 1 || unusedDays > 36500) {
      throw new ValidationException(`1 validation error detected: Value '${unusedDays}' at 'unusedDays' failed to satisfy constraint: Member must have value between 1 and 36500`);
    }
    let only: Candidate | undefined;
    if (input.principalArn !== undefined) {
      only = await candidateFromArn(svc, input.principalArn);
      if (!only) throw new ValidationException(`PrincipalArn '${input.principalArn}' is not a root, user, role or assumed-role ARN.`);
      audit.detail('principalArn', input.principalArn);
    }

    let keys: KeyRecord[];
    if (input.keyId !== undefined) {
      const k = await svc.keys.resolve(input.keyId, call, { allowAlias: true });
      keys = [k];
    } else {
      keys = [];
      for (const id of await svc.keys.listAccountKeyIds(acct)) {
        const k = await svc.keys.getKey(id);
        if (k && k.region === call.region) keys.push(k);
      }
    }
    keys.sort((a, b) => (a.arn < b.arn ? -1 : 1));
    for (const k of keys) audit.key(k.arn);

    // Candidates: root, every user and role of the account (and whoever a key names, per key below).
    const base: Candidate[] = [];
    const byArn = new Map<string, Candidate>();
    if (only) base.push(only);
    else {
      const root = (await candidateFromArn(svc, `arn:aws:iam::${acct}:root`))!;
      base.push(root);
      for (const u of await svc.identity.listEntities<UserRecord>('user', acct)) base.push((await candidateFromArn(svc, u.arn))!);
      for (const r of await svc.identity.listEntities<RoleRecord>('role', acct)) base.push((await candidateFromArn(svc, r.arn))!);
    }
    for (const c of base) byArn.set(c.arn, c);

    // Last use per principal and key; a role's sessions count for the role.
    const roleArnByName = new Map((await svc.identity.listEntities<RoleRecord>('role', acct)).map((r) => [r.roleName, r.arn]));
    const lastUse = new Map<string, { time: number; operation: string; count: number }>();
    const credit = (principalArn: string, keyArn: string, time: number, operation: string, count: number) => {
      const id = `${principalArn}\u0000${keyArn}`;
      const e = lastUse.get(id);
      if (!e) lastUse.set(id, { time, operation, count });
      else {
        e.count += count;
        if (time > e.time) Object.assign(e, { time, operation });
      }
    };
    const rows = await svc.audit.lastUse({
      accountId: acct, region: call.region, keyArn: input.keyId !== undefined ? keys[0]!.arn : undefined,
      eventNames: TRACKED_CRYPTO_OPERATIONS, limit: 1_000_000,
    });
    for (const r of rows) {
      const t = Date.parse(r.eventTime);
      credit(r.principalArn, r.keyArn, t, r.eventName, r.count);
      const s = SESSION_ARN.exec(r.principalArn);
      const roleArn = s ? roleArnByName.get(s[2]!) : undefined;
      if (roleArn) credit(roleArn, r.keyArn, t, r.eventName, r.count);
    }

    const now = svc.clock.now();
    const out: ReviewedKey[] = [];
    for (const k of keys) {
      const named = namedPrincipals(k);
      const candidates = [...base];
      if (!only) {
        for (const arn of named.keys()) {
          if (byArn.has(arn)) continue;
          const c = await candidateFromArn(svc, arn);
          if (c) {
            byArn.set(arn, c);
            base.push(c);
            candidates.push(c);
          }
        }
      }
      const flags: ReviewedKey['flags'] = [];
      const owner = ownerOf(k);
      const ownerStatus = (await candidateFromArn(svc, owner))?.status ?? 'deleted';
      if (ownerStatus !== 'active') flags.push({ flag: 'owner-gone', principalArn: owner, message: `the key's owner ${owner} is ${ownerStatus}` });
      const principals: ReviewedPrincipal[] = [];
      const crypto = new Set(cryptoActions(k));
      for (const c of candidates) {
        const allowed = await accessOf(svc, call, k, c);
        const namedIn = [...(named.get(c.arn) ?? [])];
        if (allowed.size === 0 && namedIn.length === 0) continue;
        const via = new Map<string, string[]>();
        for (const [action, reason] of allowed) via.set(reason, [...(via.get(reason) ?? []), action]);
        const used = lastUse.get(`${c.arn}\u0000${k.arn}`);
        const p: ReviewedPrincipal = {
          principalArn: c.arn, principalType: c.type, status: c.status, actions: [...allowed.keys()].sort(),
          via: [...via].map(([reason, actions]) => ({ reason, actions: actions.sort() })), namedIn,
          ...(used ? { lastUsedDate: new Date(used.time), lastUsedOperation: used.operation } : {}), useCount: used?.count ?? 0, flags: [],
        };
        const mark = (flag: ReviewFlag, message: string) => {
          p.flags.push(flag);
          flags.push({ flag, principalArn: c.arn, message });
        };
        if (c.type !== 'Root') {
          const admin = SOD_ADMIN_ACTIONS.map((a) => a.slice(4)).filter((a) => allowed.has(a));
          const use = SOD_USE_ACTIONS.map((a) => a.slice(4)).filter((a) => allowed.has(a));
          if (admin.length > 0 && use.length > 0) {
            mark('sod-conflict', `${c.arn} can both administer the key (${admin.join(', ')}) and decrypt with it (${use.join(', ')})`);
          }
        }
        if (c.status !== 'active' && namedIn.length > 0) {
          mark('orphaned-access', `${c.arn} is ${c.status} but still named in ${namedIn.join(', ')}`);
        }
        const canUse = p.actions.filter((a) => crypto.has(a));
        if (c.type !== 'Root' && c.status === 'active' && canUse.length > 0) {
          const since = used?.time ?? Math.max(k.createdAt, c.createdAt ?? k.createdAt);
          if (now - since > unusedDays * DAY_MS) {
            const last = used ? `last used ${new Date(used.time).toISOString()}` : 'never used';
            mark('unused-access', `${c.arn} can use the key (${canUse.join(', ')}) but has not for more than ${unusedDays} days (${last})`);
          }
        }
        principals.push(p);
      }
      principals.sort((a, b) => (a.principalArn < b.principalArn ? -1 : 1));
      out.push({ keyArn: k.arn, keyState: k.state, owner, ownerStatus, principals, flags });
    }
    audit.detail('keysReviewed', out.length);
    audit.detail('flags', out.reduce((n, k) => n + k.flags.length, 0));
    return { accountId: acct, region: call.region, generatedAt: new Date(now), unusedDays, keys: out };
  },
};
