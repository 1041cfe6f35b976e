import { DecodedCache, type Storage, type StorageReader, type StorageWriter } from '../storage/index.js';
import {
  DisabledException, InvalidArnException, KMSInvalidStateException, NotFoundException,
} from '../errors/index.js';
import { KEY_ID_PATTERN } from '../types/index.js';
import { aliasArn, importExpiryDue, keyArn, rotationOf, type AccountSettings, type AliasRecord, type KeyRecord } from './model.js';
import { UsageCounter } from './usage.js';

/** Storage layout, in one place. */
const P = {
  key: (keyId: string) => `key/${keyId}`,
  keyIndexPrefix: (account: string, region: string) => `keyidx/${account}/${region}/`,
  keyIndex: (account: string, region: string, keyId: string) => `keyidx/${account}/${region}/${keyId}`,
  aliasPrefix: (account: string, region: string) => `alias/${account}/${region}/`,
  alias: (account: string, region: string, name: string) => `alias/${account}/${region}/${name}`,
  aliasByKeyPrefix: (keyId: string) => `aliasbykey/${keyId}/`,
  aliasByKey: (keyId: string, name: string) => `aliasbykey/${keyId}/${name}`,
  deletionPrefix: 'deletion/',
  deletion: (at: number, keyId: string) => `deletion/${String(at).padStart(15, '0')}/${keyId}`,
  accountSettings: (account: string) => `settings/account/${account}`,
  rotationPrefix: 'rotation/',
  rotation: (at: number, keyId: string) => `rotation/${String(at).padStart(15, '0')}/${keyId}`,
  importExpiryPrefix: 'import-expiry/',
  importExpiry: (at: number, keyId: string) => `import-expiry/${String(at).padStart(15, '0')}/${keyId}`,
};

/**
 * The due date the rotation index holds for a key: only while rotation is on and the key is Enabled,
 * since only those rotate. A disabled key drops out, so overdue disabled keys cannot crowd the front
 * of the index; re-enabling writes the entry back with its old date, and the job rotates it then.
 */
function rotationDue(k: KeyRecord | undefined): number | undefined {
  if (!k || k.state !== 'Enabled') return undefined;
  const r = rotationOf(k);
  return r.enabled ? r.nextRotationAt : undefined;
}

const enc = (v: unknown) => Buffer.from(JSON.stringify(v));
const dec = <T>(b: Buffer) => JSON.parse(b.toString('utf8')) as T;

export interface Scope {
  readonly accountId: string;
  readonly region: string;
}

const ARN_RE = /^arn:aws:kms:([a-z0-9-]+):(\d{12}):(key\/.+|alias\/.+)$/;

export type KeyRef =
  | { kind: 'key'; accountId: string; region: string; keyId: string }
  | { kind: 'alias'; accountId: string; region: string; aliasName: string };

/**
 * Parses anything AWS accepts as a KeyId (key id, key ARN, alias name, alias ARN) into a
 * reference in the caller's region. Malformed input is NotFoundException "Invalid keyId", as AWS says.
 */
export function parseKeyRef(input: string, scope: Scope): KeyRef {
  if (input.startsWith('arn:')) {
    const m = ARN_RE.exec(input);
    if (!m) throw new InvalidArnException(`Invalid arn ${input}`);
    const [, region, accountId, resource] = m as unknown as [string, string, string, string];
    if (resource.startsWith('alias/')) return { kind: 'alias', accountId, region, aliasName: resource };
    return { kind: 'key', accountId, region, keyId: resource.slice('key/'.length) };
  }
  // `scope` is often a whole CallContext: copy the two fields, not everything it holds.
  if (input.startsWith('alias/')) return { kind: 'alias', accountId: scope.accountId, region: scope.region, aliasName: input };
  return { kind: 'key', accountId: scope.accountId, region: scope.region, keyId: input };
}

export class KeyRepository {
  /** Key records are read on every request; their decoded (frozen) form is reused while unchanged. */
  private readonly decodedKeys = new DecodedCache<KeyRecord>((b) => dec<KeyRecord>(b));

  /**
   * Reads outside a transaction: storage.getCached, so a request costs no storage round trip for its
   * key and alias. Writes through this store show at once; another node's within the storage's
   * staleness bound (Storage.getCached). Every write reads afresh inside its transaction.
   */
  private readonly reader: StorageReader;

  constructor(readonly storage: Storage) {
    this.reader = { get: (k) => storage.getCached(k), list: (p, o) => storage.list(p, o), count: (p) => storage.count(p) };
  }

  // ---- keys ----

  async getKey(keyId: string, r: StorageReader = this.reader): Promise<KeyRecord | undefined> {
    const path = P.key(keyId);
    const b = await r.get(path);
    return b ? this.decodedKeys.get(path, b) : undefined;
  }

  async putKey(w: StorageWriter, k: KeyRecord, previous?: KeyRecord): Promise<void> {
    await w.put(P.key(k.keyId), enc(k));
    await w.put(P.keyIndex(k.accountId, k.region, k.keyId), Buffer.alloc(0));
    if (previous?.deletionDate !== undefined && previous.deletionDate !== k.deletionDate) {
      await w.delete(P.deletion(previous.deletionDate, k.keyId));
    }
    if (k.deletionDate !== undefined) await w.put(P.deletion(k.deletionDate, k.keyId), Buffer.alloc(0));
    // Legacy records have no rotation field but are due (rotationOf), so the index entry is derived
    // the same way for the previous and the new record.
    const before = rotationDue(previous);
    const after = rotationDue(k);
    if (before !== undefined && before !== after) await w.delete(P.rotation(before, k.keyId));
    if (after !== undefined) await w.put(P.rotation(after, k.keyId), Buffer.alloc(0));
    const expiryBefore = importExpiryDue(previous);
    const expiryAfter = importExpiryDue(k);
    if (expiryBefore !== undefined && expiryBefore !== expiryAfter) await w.delete(P.importExpiry(expiryBefore, k.keyId));
    if (expiryAfter !== undefined) await w.put(P.importExpiry(expiryAfter, k.keyId), Buffer.alloc(0));
  }

  /** Removes the key record and every index and alias pointing at it. */
  async deleteKey(w: StorageWriter, k: KeyRecord): Promise<void> {
    for (const a of await w.list(P.aliasByKeyPrefix(k.keyId))) {
      const name = a.key.slice(P.aliasByKeyPrefix(k.keyId).length);
      await w.delete(P.alias(k.accountId, k.region, name));
      await w.delete(a.key);
    }
    if (k.deletionDate !== undefined) await w.delete(P.deletion(k.deletionDate, k.keyId));
    const due = rotationDue(k);
    if (due !== undefined) await w.delete(P.rotation(due, k.keyId));
    const expiry = importExpiryDue(k);
    if (expiry !== undefined) await w.delete(P.importExpiry(expiry, k.keyId));
    await UsageCounter.deleteFor(w, k.keyId);
    await w.delete(P.keyIndex(k.accountId, k.region, k.keyId));
    await w.delete(P.key(k.keyId));
    this.decodedKeys.forget(P.key(k.keyId));
  }

  /** Every key id of an account, in every region (offboarding and access review). */
  async listAccountKeyIds(accountId: string): Promise<string[]> {
    const prefix = `keyidx/${accountId}/`;
    return (await this.storage.list(prefix)).map((r) => r.key.slice(prefix.length).split('/')[1]!);
  }

  async listKeyIds(scope: Scope, after: string | undefined, limit: number): Promise<string[]> {
    const prefix = P.keyIndexPrefix(scope.accountId, scope.region);
    const rows = await this.storage.list(prefix, { after: after ? prefix + after : undefined, limit });
    return rows.map((r) => r.key.slice(prefix.length));
  }

  /** Keys whose deletion date has passed, oldest first. */
  dueForDeletion(nowMs: number, limit: number): Promise<string[]> {
    return this.dueIn(P.deletionPrefix, nowMs, limit);
  }

  /**
   * Keys whose rotation date has passed, oldest first. The index is a hint: the job re-reads each
   * record in its transaction. Records from before the index existed are not in it until next written.
   */
  dueForRotation(nowMs: number, limit: number): Promise<string[]> {
    return this.dueIn(P.rotationPrefix, nowMs, limit);
  }

  /** EXTERNAL keys with imported material whose ValidTo has passed, oldest first (a hint, as above). */
  dueForImportExpiry(nowMs: number, limit: number): Promise<string[]> {
    return this.dueIn(P.importExpiryPrefix, nowMs, limit);
  }

  /** Reads a `<prefix><15-digit time>/<keyId>` index up to nowMs; the index is ordered by time. */
  private async dueIn(prefix: string, nowMs: number, limit: number): Promise<string[]> {
    const due: string[] = [];
    for (const r of await this.storage.list(prefix, { limit })) {
      const [at, keyId] = r.key.slice(prefix.length).split('/') as [string, string];
      if (Number(at) > nowMs) break;
      due.push(keyId);
    }
    return due;
  }

  /**
   * Resolves a KeyId as given by a caller. `allowAlias: false` for the operations where AWS takes
   * only key ids and key ARNs (PutKeyPolicy, EnableKey, ...).
   */
  async resolve(input: string, scope: Scope, opts: { allowAlias: boolean }, r: StorageReader = this.reader): Promise<KeyRecord> {
    const ref = parseKeyRef(input, scope);
    let keyId: string;
    let accountId = ref.accountId;
    let region = ref.region;
    if (ref.kind === 'alias') {
      if (!opts.allowAlias) throw new NotFoundException(`Invalid keyId '${input}'`);
      const alias = await this.getAlias({ accountId, region }, ref.aliasName, r);
      if (!alias) throw new NotFoundException(`Alias ${aliasArn(region, accountId, ref.aliasName)} is not found.`);
      keyId = alias.targetKeyId;
    } else {
      if (!KEY_ID_PATTERN.test(ref.keyId)) throw new NotFoundException(`Invalid keyId '${input}'`);
      keyId = ref.keyId;
    }
    const k = await this.getKey(keyId, r);
    // Keys live per account and region: another region's key, or a key id from nowhere, gives the
    // same answer, so nothing can be enumerated across accounts or regions.
    if (!k || k.region !== scope.region || k.region !== region || k.accountId !== accountId) {
      throw new NotFoundException(`Key '${keyArn(region, accountId, keyId)}' does not exist`);
    }
    return k;
  }

  // ---- account settings ----

  async getAccountSettings(accountId: string, r: StorageReader = this.reader): Promise<AccountSettings> {
    const b = await r.get(P.accountSettings(accountId));
    return b ? dec<AccountSettings>(b) : {};
  }

  async putAccountSettings(w: StorageWriter, accountId: string, s: AccountSettings): Promise<void> {
    await w.put(P.accountSettings(accountId), enc(s));
  }

  // ---- aliases ----

  async getAlias(scope: Scope, aliasName: string, r: StorageReader = this.reader): Promise<AliasRecord | undefined> {
    const b = await r.get(P.alias(scope.accountId, scope.region, aliasName));
    return b ? dec<AliasRecord>(b) : undefined;
  }

  /** Returns false when the alias already exists. */
  async createAlias(w: StorageWriter, a: AliasRecord): Promise<boolean> {
    const ok = await w.putIfAbsent(P.alias(a.accountId, a.region, a.aliasName), enc(a));
    if (ok) await w.put(P.aliasByKey(a.targetKeyId, a.aliasName), Buffer.alloc(0));
    return ok;
  }

  async updateAlias(w: StorageWriter, a: AliasRecord, previousTarget: string): Promise<void> {
    await w.put(P.alias(a.accountId, a.region, a.aliasName), enc(a));
    await w.delete(P.aliasByKey(previousTarget, a.aliasName));
    await w.put(P.aliasByKey(a.targetKeyId, a.aliasName), Buffer.alloc(0));
  }

  async deleteAlias(w: StorageWriter, a: AliasRecord): Promise<void> {
    await w.delete(P.alias(a.accountId, a.region, a.aliasName));
    await w.delete(P.aliasByKey(a.targetKeyId, a.aliasName));
  }

  async listAliases(scope: Scope, after: string | undefined, limit: number): Promise<AliasRecord[]> {
    const prefix = P.aliasPrefix(scope.accountId, scope.region);
    const rows = await this.storage.list(prefix, { after: after ? prefix + after : undefined, limit });
    return rows.map((r) => dec<AliasRecord>(r.value));
  }

  async aliasNamesForKey(keyId: string): Promise<string[]> {
    const prefix = P.aliasByKeyPrefix(keyId);
    return (await this.storage.list(prefix)).map((r) => r.key.slice(prefix.length));
  }
}

/** The key-state check, written once (STYLE.md §1): may this key encrypt or decrypt now? */
export function assertUsable(k: KeyRecord): void {
  switch (k.state) {
    case 'Enabled':
      return;
    case 'Disabled':
      throw new DisabledException(`${k.arn} is disabled.`);
    case 'PendingDeletion':
      throw new KMSInvalidStateException(`${k.arn} is pending deletion.`);
    case 'PendingImport':
      throw new KMSInvalidStateException(`${k.arn} is pending import.`);
    default:
      throw new KMSInvalidStateException(`${k.arn} is ${k.state.toLowerCase()}.`);
  }
}

export function assertNotPendingDeletion(k: KeyRecord): void {
  if (k.state === 'PendingDeletion') throw new KMSInvalidStateException(`${k.arn} is pending deletion.`);
}
