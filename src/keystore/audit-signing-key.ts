import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { Barrier, StorageReader, StorageWriter } from '../barrier/index.js';

/** Where the audit log's Ed25519 signing key lives, sealed by the barrier like every stored secret. */
const SIGNING_KEY_PATH = 'sys/audit/signing-key';

/**
 * The Ed25519 key that signs the audit log's digests. The private key is generated here from the
 * CSPRNG, stored only sealed under the root key (barrier), and never leaves this object; callers
 * get `sign` and the public key.
 */
export class AuditSigningKey {
  private constructor(private readonly privateKey: KeyObject, readonly publicKeyPem: string) {}

  /** Loads the key, creating it on first use (the first process to store it wins). */
  static async loadOrCreate(barrier: Barrier, storage: StorageWriter): Promise<AuditSigningKey> {
    const existing = await AuditSigningKey.load(barrier, storage);
    if (existing) return existing;
    const { privateKey } = generateKeyPairSync('ed25519');
    const der = privateKey.export({ type: 'pkcs8', format: 'der' });
    const created = await storage.putIfAbsent(SIGNING_KEY_PATH, barrier.seal(SIGNING_KEY_PATH, der));
    der.fill(0);
    if (!created) return (await AuditSigningKey.load(barrier, storage))!;
    return AuditSigningKey.fromPrivate(privateKey);
  }

  static async load(barrier: Barrier, storage: StorageReader): Promise<AuditSigningKey | undefined> {
    const sealed = await storage.get(SIGNING_KEY_PATH);
    if (!sealed) return undefined;
    const der = barrier.open(SIGNING_KEY_PATH, sealed);
    try {
      return AuditSigningKey.fromPrivate(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
    } finally {
      der.fill(0);
    }
  }

  private static fromPrivate(privateKey: KeyObject): AuditSigningKey {
    const pem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
    return new AuditSigningKey(privateKey, pem);
  }

  sign(data: Buffer): Buffer {
    return sign(null, data, this.privateKey);
  }

  toJSON(): string {
    return '[AuditSigningKey]';
  }
}
