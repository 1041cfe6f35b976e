import {
  AccessDeniedException, DryRunOperationException, InvalidAliasNameException, InvalidMarkerException,
  NotAuthorizedException, TagException,
} from '../errors/index.js';
import { assertUsable, type KeyRecord, type StorageWriter } from '../keys/index.js';
import { evaluate, parsePolicy, type PolicyDocument } from '../policy/index.js';
import type { Tag } from '../types/index.js';
import type { AuditDraft, CallContext, Services } from './context.js';

const policyCache = new Map<string, PolicyDocument>();

function cachedPolicy(text: string): PolicyDocument {
  let doc = policyCache.get(text);
  if (!doc) {
    doc = parsePolicy(text, { requirePrincipal: true });
    if (policyCache.size > 1000) policyCache.clear();
    policyCache.set(text, doc);
  }
  return doc;
}

/**
 * Asks the key policy whether the caller may perform `action` on `key`; records the decision and
 * its reason in the audit draft; throws AccessDeniedException unless allowed. Evaluated on every
 * request (never cached across policy changes).
 */
/** A key tagged `KeyholdDecoy=true` is a honey key: nothing legitimate uses it, so any touch raises an alert. */
export const DECOY_TAG = 'KeyholdDecoy';

export function authorizeKey(call: CallContext, key: KeyRecord, action: string, audit: AuditDraft): void {
  if (key.tags.some((t) => t.tagKey === DECOY_TAG && t.tagValue.toLowerCase() === 'true')) audit.detail('decoyKey', key.arn);
  const decision = evaluate(cachedPolicy(key.policy), {
    principal: { arn: call.principal.arn, accountId: call.principal.accountId },
    action: `kms:${action}`,
    resource: key.arn,
  });
  audit.decision = decision;
  if (decision.effect !== 'Allow') {
    const because =
      decision.effect === 'Deny'
        ? `with an explicit deny in a resource-based policy`
        : `because no resource-based policy allows the kms:${action} action`;
    throw new AccessDeniedException(
      `User: ${call.principal.arn} is not authorized to perform: kms:${action} on resource: ${key.arn} ${because}`,
    );
  }
}

/** Operations that name no key (CreateKey, ListKeys, GenerateRandom): the caller's own account decides. */
export function authorizeAccount(call: CallContext, action: string, audit: AuditDraft): void {
  if (call.principal.type === 'Root') {
    audit.decision = { effect: 'Allow', reason: `account root may perform kms:${action}` };
    return;
  }
  audit.decision = { effect: 'ImplicitDeny', reason: `no identity policy allows kms:${action}` };
  throw new AccessDeniedException(`User: ${call.principal.arn} is not authorized to perform: kms:${action} on resource: * because no identity-based policy allows the kms:${action} action`);
}

/** Resolve, record, authorize, check state: the start of every cryptographic operation. */
export async function usableKeyFor(
  svc: Services, call: CallContext, keyIdInput: string, action: string, audit: AuditDraft,
): Promise<KeyRecord> {
  const key = await svc.keys.resolve(keyIdInput, call, { allowAlias: true });
  audit.key(key.arn);
  authorizeKey(call, key, action, audit);
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
