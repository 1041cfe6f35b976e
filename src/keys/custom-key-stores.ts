import type { Storage, StorageReader, StorageWriter } from '../storage/index.js';
import type { Scope } from './repository.js';

/*
 * AWS_CLOUDHSM custom key stores. A store names one declared HSM (its CloudHsmClusterId is the
 * `--hsm NAME`); keys created in it keep their material in that HSM's token.
 *
 * The connection state is stored, not held per process: every server process (--workers, or
 * several nodes on one database) sees the same CONNECTED/DISCONNECTED/FAILED, and a restart keeps
 * it. Each process opens its own session to the token on first use.
 *
 * The KeyStorePassword is not stored. AWS keeps the kmsuser password to log in; Keyhold logs in with
 * the PIN in the HSM's pin-file, so it only records whether the password given matched that PIN,
 * and ConnectCustomKeyStore fails with INVALID_CREDENTIALS when it did not.
 */

export type ConnectionState = 'CONNECTED' | 'CONNECTING' | 'FAILED' | 'DISCONNECTED' | 'DISCONNECTING';

export interface CustomKeyStoreRecord {
  readonly customKeyStoreId: string;
  readonly accountId: string;
  readonly region: string;
  name: string;
  readonly type: 'AWS_CLOUDHSM';
  cloudHsmClusterId: string;
  trustAnchorCertificate: string;
  /** Whether the last KeyStorePassword given (Create or Update) was the HSM's user PIN. */
  passwordMatches: boolean;
  connectionState: ConnectionState;
  connectionErrorCode?: string;
  readonly createdAt: number;
}

/** AWS: at most 10 custom key stores per account and Region (not adjustable). */
export const MAX_CUSTOM_KEY_STORES = 10;

const P = {
  store: (id: string) => `cks/${id}`,
  indexPrefix: (account: string, region: string) => `cksidx/${account}/${region}/`,
  index: (account: string, region: string, id: string) => `cksidx/${account}/${region}/${id}`,
  /** One store per HSM, server-wide (AWS: CloudHsmClusterInUseException). */
  cluster: (cluster: string) => `ckscluster/${cluster}`,
  keysPrefix: (id: string) => `ckskeys/${id}/`,
  key: (id: string, keyId: string) => `ckskeys/${id}/${keyId}`,
};

const enc = (v: unknown) => Buffer.from(JSON.stringify(v));
const dec = <T>(b: Buffer) => JSON.parse(b.toString('utf8')) as T;

export class CustomKeyStoreRepository {
  constructor(readonly storage: Storage) {}

  async get(id: string, r: StorageReader = this.storage): Promise<CustomKeyStoreRecord | undefined> {
    const b = await r.get(P.store(id));
    return b ? dec<CustomKeyStoreRecord>(b) : undefined;
  }

  /** The store as the caller may see it: in the caller's account and region, or undefined. */
  async getInScope(id: string, scope: Scope, r: StorageReader = this.storage): Promise<CustomKeyStoreRecord | undefined> {
    const s = await this.get(id, r);
    return s && s.accountId === scope.accountId && s.region === scope.region ? s : undefined;
  }

  async list(scope: Scope, r: StorageReader = this.storage): Promise<CustomKeyStoreRecord[]> {
    const prefix = P.indexPrefix(scope.accountId, scope.region);
    const out: CustomKeyStoreRecord[] = [];
    for (const row of await r.list(prefix)) {
      const s = await this.get(row.key.slice(prefix.length), r);
      if (s) out.push(s);
    }
    return out.sort((a, b) => a.customKeyStoreId.localeCompare(b.customKeyStoreId));
  }

  /** The store id using an HSM, server-wide. */
  async storeForCluster(cluster: string, r: StorageReader = this.storage): Promise<string | undefined> {
    const b = await r.get(P.cluster(cluster));
    return b ? b.toString('utf8') : undefined;
  }

  async put(w: StorageWriter, s: CustomKeyStoreRecord, previous?: CustomKeyStoreRecord): Promise<void> {
    await w.put(P.store(s.customKeyStoreId), enc(s));
    await w.put(P.index(s.accountId, s.region, s.customKeyStoreId), Buffer.alloc(0));
    if (previous && previous.cloudHsmClusterId !== s.cloudHsmClusterId) await w.delete(P.cluster(previous.cloudHsmClusterId));
    await w.put(P.cluster(s.cloudHsmClusterId), Buffer.from(s.customKeyStoreId));
  }

  async delete(w: StorageWriter, s: CustomKeyStoreRecord): Promise<void> {
    await w.delete(P.store(s.customKeyStoreId));
    await w.delete(P.index(s.accountId, s.region, s.customKeyStoreId));
    await w.delete(P.cluster(s.cloudHsmClusterId));
  }

  /** Records that a KMS key lives in the store (DeleteCustomKeyStore refuses while any do). */
  async addKey(w: StorageWriter, id: string, keyId: string): Promise<void> {
    await w.put(P.key(id, keyId), Buffer.alloc(0));
  }

  async removeKey(w: StorageWriter, id: string, keyId: string): Promise<void> {
    await w.delete(P.key(id, keyId));
  }

  async keyCount(id: string, r: StorageReader = this.storage): Promise<number> {
    return (await r.list(P.keysPrefix(id), { limit: 1 })).length;
  }
}
