import {
  AccessDeniedException, DryRunOperationException, InvalidAliasNameException, InvalidMarkerException,
  NotAuthorizedException, TagException,
} from '../errors/index.js';
import { assertUsable, type KeyRecord, type StorageWriter } from '../keys/index.js';
import {
  authorize, MANAGED_POLICIES, parsePolicy, type ConditionContext, type Decision, type IdentityPolicy, type PolicyDocument,
} from '../policy/index.js';
import type { Principal, Tag } from '../types/index.js';
import type { AuditDraft, CallContext, Services } from './context.js';

const policyCache = new Map<string, PolicyDocument>();

/** Parsed policies by text: key policies (requirePrincipal) and identity policies apart. */
export function cachedPolicy(text: string, kind: 'key' | 'identity' = 'key'): PolicyDocument {
  const cacheKey = kind === 'key' ? text : 'identity\u0000' + text;
  let doc = policyCache.get(cacheKey);
  if (!doc) {
    doc = parsePolicy(text, { requirePrincipal: kind === 'key' });
    if (policyCache.size > 1000) policyCache.clear();
    policyCache.set(cacheKey, doc);
  }
  return doc;
}

/** The caller's identity policies, parsed, with where each comes from. Root has none. */
export async function identityPoliciesOf(svc: Services, principal: Principal): Promise<IdentityPolicy[]> {
  if (principal.type === 'Root') return [];
  const out: IdentityPolicy[] = [];
  for (const p of await svc.identity.policiesFor(principal)) {
    // Inline, AWS-managed, or customer-managed (its default version).
    const text = p.document ?? (p.managedArn ? (MANAGED_POLICIES.get(p.managedArn)?.document ?? (await svc.identity.managedPolicyDocument(p.managedArn))) : undefined);
    if (text === undefined) continue;
    out.push({ source: p.source, document: cachedPolicy(text, 'identity') });
  }
  return out;
}

export interface RequestFacts {
  /** The alias the caller named the key by (kms:RequestAlias). */
  requestAlias?: string;
  /** kms:GrantOperations of a CreateGrant. */
  grantOperations?: string[];
  /** Set when evaluating for someone other than the caller (offboarding, access review). */
  encryptionContext?: Record<string, string>;
}

let isoSecond = NaN;
let isoPrefix = '';

/**
 * `new Date(ms).toISOString()`, with the part up to the whole second computed once per second:
 * toISOString costs about two microseconds, and every request asks for the current time.
 */
export function isoTime(ms: number): string {
  const sec = Math.floor(ms / 1000);
  if (sec !== isoSecond || !Number.isInteger(ms)) {
    const full = new Date(ms).toISOString();
    if (Number.isInteger(ms)) {
      isoSecond = sec;
      isoPrefix = full.slice(0, -4); // '...THH:mm:ss.'
    }
    return full;
  }
  const milli = ms - sec * 1000;
  return isoPrefix + (milli < 10 ? '00' : milli < 100 ? '0' : '') + milli + 'Z';
}

/** The request's condition keys (aws:* and kms:*). */
export async function conditionContext(
  svc: Services, call: CallContext, audit: AuditDraft | undefined, key: KeyRecord | undefined, facts: RequestFacts = {},
): Promise<ConditionContext> {
  const p = call.principal;
  const now = svc.clock.now();
  const ctx: Record<string, string | string[]> = {
    'aws:principalarn': p.type === 'AssumedRole' && p.roleArn ? p.roleArn : p.arn,
    'aws:principalaccount': p.accountId,
    'aws:principaltype': p.type === 'Root' ? 'Account' : p.type === 'IAMUser' ? 'User' : 'AssumedRole',
    'aws:userid': p.userId,
    'aws:sourceip': call.sourceIp,
    'aws:currenttime': isoTime(now),
    'aws:epochtime': String(Math.floor(now / 1000)),
    'aws:securetransport': call.secureTransport ? 'true' : 'false',
    'kms:calleraccount': p.accountId,
  };
  if (p.userName) ctx['aws:username'] = p.userName;
  if (p.type !== 'Root') {
    for (const [k, v] of Object.entries(await svc.identity.principalTags(p))) ctx[`aws:principaltag/${k.toLowerCase()}`] = v;
  }
  if (key) {
    ctx['kms:keyspec'] = key.keySpec;
    ctx['kms:keyorigin'] = key.origin;
    ctx['kms:keyusage'] = key.keyUsage;
  }
  const ec = facts.encryptionContext ?? audit?.encryptionContext;
  if (ec) {
    for (const [k, v] of Object.entries(ec)) ctx[`kms:encryptioncontext:${k.toLowerCase()}`] = v;
    ctx['kms:encryptioncontextkeys'] = Object.keys(ec);
  }
  if (facts.requestAlias) ctx['kms:requestalias'] = facts.requestAlias;
  if (facts.grantOperations) ctx['kms:grantoperations'] = facts.grantOperations;
  return ctx;
}

/** The authorization decision for the caller on a key, without side effects (offboarding and reviews use it too). */
export async function decideOnKey(
  svc: Services, call: CallContext, key: KeyRecord, action: string, audit: AuditDraft | undefined, facts: RequestFacts = {},
): Promise<Decision> {
  const p = call.principal;
  return authorize({
    principal: { arn: p.arn, accountId: p.accountId, roleArn: p.roleArn, isRoot: p.type === 'Root' },
    action: `kms:${action}`,
    resource: key.arn,
    context: await conditionContext(svc, call, audit, key, facts),
    keyPolicy: cachedPolicy(key.policy),
    identityPolicies: await identityPoliciesOf(svc, p),
    grants: key.grants,
    encryptionContext: facts.encryptionContext ?? audit?.encryptionContext,
  });
}

/** A key tagged `KeyholdDecoy=true` is a honey key: nothing legitimate uses it, so any touch raises an alert. */
export const DECOY_TAG = 'KeyholdDecoy';

/**
 * Asks the key policy, the caller's identity policies and the key's grants whether the caller may
 * perform `action` on `key`; records the decision and its reason in the audit draft; throws
 * AccessDeniedException unless allowed. Evaluated on every request (never cached across changes).
 */
export async function authorizeKey(
  svc: Services, call: CallContext, key: KeyRecord, action: string, audit: AuditDraft, facts: RequestFacts = {},
): Promise<void> {
  if (key.tags.some((t) => t.tagKey === DECOY_TAG && t.tagValue.toLowerCase() === 'true')) audit.detail('decoyKey', key.arn);
  const decision = await decideOnKey(svc, call, key, action, audit, facts);
  audit.decision = decision;
  if (decision.effect !== 'Allow') {
    const because =
      decision.effect === 'Deny'
        ? `with an explicit deny in ${decision.reason.includes('key policy') ? 'a resource-based policy' : 'an identity-based policy'}`
        : `because no resource-based policy allows the kms:${action} action`;
    throw new AccessDeniedException(
      `User: ${call.principal.arn} is not authorized to perform: kms:${action} on resource: ${key.arn} ${because}`,
    );
  }
}

/** Operations that name no key (CreateKey, ListKeys, GenerateRandom, IAM, STS): the caller's identity policies decide; root may do all. */
export async function authorizeAccount(
  svc: Services, call: CallContext, action: string, audit: AuditDraft, resource = '*', service = 'kms',
): Promise<void> {
  const p = call.principal;
  const full = `${service}:${action}`;
  const decision = authorize({
    principal: { arn: p.arn, accountId: p.accountId, roleArn: p.roleArn, isRoot: p.type === 'Root' },
    action: full,
    resource,
    context: await conditionContext(svc, call, audit, undefined),
    identityPolicies: await identityPoliciesOf(svc, p),
  });
  audit.decision = decision;
  if (decision.effect !== 'Allow') {
    const because = decision.effect === 'Deny' ? 'with an explicit deny in an identity-based policy' : `because no identity-based policy allows the ${full} action`;
    throw new AccessDeniedException(`User: ${p.arn} is not authorized to perform: ${full} on resource: ${resource} ${because}`);
  }
}

/** Resolve, record, authorize, check state: the start of every cryptographic operation. */
export async function usableKeyFor(
  svc: Services, call: CallContext, keyIdInput: string, action: string, audit: AuditDraft,
): Promise<KeyRecord> {
  const key = await svc.keys.resolve(keyIdInput, call, { allowAlias: true });
  audit.key(key.arn);
  const requestAlias = keyIdInput.startsWith('alias/') ? keyIdInput : /^arn:aws:kms:[^:]*:\d{12}:(alias\/.+)$/.exec(keyIdInput)?.[1];
  await authorizeKey(svc, call, key, action, audit, requestAlias ? { requestAlias } : {});
  assertUsable(key);
  return key;
}

export function throwIfDryRun(dryRun: boolean | undefined): void {
  if (dryRun) throw new DryRunOperationException('The request would have succeeded, but the DryRun option is set.');
}

/** Read-modify-write of one key inside a transaction; `mutate` may throw to abort. */
export async function updateKey(
  svc: Services, keyId: string, mutate: (k: KeyRecord, tx: StorageWriter) => Promise<void> | void,
): Promise<KeyRecord> {
  return svc.keys.storage.transaction(async (tx) => {
    const current = await svc.keys.getKey(keyId, tx);
    if (!current) throw new Error(`key ${keyId} vanished during update`);
    const next: KeyRecord = structuredClone(current);
    await mutate(next, tx);
    await svc.keys.putKey(tx, next, current);
    return next;
  });
}

// ---- pagination: opaque markers ----

export function encodeMarker(lastKey: string): string {
  return Buffer.from(`m1:${lastKey}`, 'utf8').toString('base64url');
}

export function decodeMarker(marker: string | undefined): string | undefined {
  if (marker === undefined) return undefined;
  const text = Buffer.from(marker, 'base64url').toString('utf8');
  if (!text.startsWith('m1:') || text.length < 4 || encodeMarker(text.slice(3)) !== marker) {
    throw new InvalidMarkerException('The marker that specifies where pagination should next begin is not valid.');
  }
  return text.slice(3);
}

/** Fetches limit+1 to learn whether more follow. */
export function page<T>(rows: T[], limit: number, keyOf: (t: T) => string): { items: T[]; nextMarker?: string; truncated: boolean } {
  if (rows.length <= limit) return { items: rows, truncated: false };
  const items = rows.slice(0, limit);
  return { items, nextMarker: encodeMarker(keyOf(items[items.length - 1]!)), truncated: true };
}

// ---- tags ----

export const MAX_TAGS_PER_KEY = 50;

export function validateTags(tags: readonly Tag[]): void {
  const seen = new Set<string>();
  for (const t of tags) {
    if (t.tagKey.toLowerCase().startsWith('aws:')) throw new TagException('Tags beginning with aws: are reserved');
    if (seen.has(t.tagKey)) throw new TagException('Duplicate tag keys');
    seen.add(t.tagKey);
  }
}

export function mergeTags(existing: readonly Tag[], add: readonly Tag[]): Tag[] {
  const map = new Map(existing.map((t) => [t.tagKey, t.tagValue]));
  for (const t of add) map.set(t.tagKey, t.tagValue);
  if (map.size > MAX_TAGS_PER_KEY) throw new TagException('Too many tags');
  return [...map].map(([tagKey, tagValue]) => ({ tagKey, tagValue }));
}

// ---- aliases ----

export function validateAliasName(name: string): void {
  if (!name.startsWith('alias/') || name.length === 'alias/'.length) {
    throw new InvalidAliasNameException(`Alias must start with the prefix "alias/" followed by a name: '${name}'.`);
  }
  if (name.startsWith('alias/aws/')) {
    throw new NotAuthorizedException('The alias/aws/ prefix is reserved for AWS managed keys.');
  }
  if (name.slice('alias/'.length).includes(':')) {
    throw new InvalidAliasNameException(`${name} contains invalid characters for an alias`);
  }
}
