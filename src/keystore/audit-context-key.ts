import { randomBytes } from 'node:crypto';
import { hkdfSha256, hmacSha256 } from '../crypto/index.js';
import type { Barrier, StorageWriter } from '../barrier/index.js';

/** Where the key that HMACs encryption-context values in audit events lives, sealed by the barrier. */
const CONTEXT_KEY_PATH = 'sys/audit/context-hmac-key';
const KEY_BYTES = 32;
/** The form an HMACed value takes in audit events (and so in LookupEvents and exports). */
export const CONTEXT_HMAC_PREFIX = 'hmac-sha256:';

/**
 * The key that turns encryption-context values into HMAC-SHA256 in audit events, for accounts
 * that ask for it (UpdateAccountSettings AuditEncryptionContextHmac). Generated from the CSPRNG,
 * stored only sealed under the root key, never logged or returned. Each account gets its own key,
 * derived with HKDF-SHA256 (info = account id), so equal values match within an account and not
 * across accounts.
 */
export class AuditContextKey {
  private readonly perAccount = new Map<string, Buffer>();

  private constructor(private readonly key: Buffer) {}

  /** Loads the key, creating it on first use (the first process to store it wins). */
  static async loadOrCreate(barrier: Barrier, storage: StorageWriter): Promise<AuditContextKey> {
    const sealed = await storage.get(CONTEXT_KEY_PATH);
    if (sealed) return new AuditContextKey(barrier.open(CONTEXT_KEY_PATH, sealed));
    const key = randomBytes(KEY_BYTES);
    const created = await storage.putIfAbsent(CONTEXT_KEY_PATH, barrier.seal(CONTEXT_KEY_PATH, key));
    if (created) return new AuditContextKey(key);
    key.fill(0);
    return new AuditContextKey(barrier.open(CONTEXT_KEY_PATH, (await storage.get(CONTEXT_KEY_PATH))!));
  }

  /** `hmac-sha256:<hex>` of one value under the account's key. */
  hmac(accountId: string, value: string): string {
    let k = this.perAccount.get(accountId);
    if (!k) {
      k = hkdfSha256(this.key, Buffer.alloc(0), Buffer.from(`keyhold audit encryption context/${accountId}`), KEY_BYTES);
      this.perAccount.set(accountId, k);
    }
    return CONTEXT_HMAC_PREFIX + hmacSha256(k, value).toString('hex');
  }

  /** The context with every value HMACed (the keys stay as they are). */
  hmacContext(accountId: string, context: Readonly<Record<string, string>>): Record<string, string> {
    return Object.fromEntries(Object.entries(context).map(([k, v]) => [k, this.hmac(accountId, v)]));
  }

  toJSON(): string {
    return '[AuditContextKey]';
  }
}
