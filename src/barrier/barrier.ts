import { randomBytes } from 'node:crypto';
import { aesGcmDecrypt, aesGcmEncrypt, AuthenticationFailedError, SecretBytes } from '../crypto/index.js';
import type { Storage, StorageReader, StorageWriter } from '../storage/index.js';
import { SealError, type Seal } from './seal.js';

export type { Storage, StorageReader, StorageWriter };

const ROOT_KEY_PATH = 'sys/root-key';
const ENTRY_VERSION = 0x01;
const AAD_PREFIX = Buffer.from('keyhold/barrier/v1\0');

export class BarrierError extends Error {}

/**
 * Every stored secret is AES-256-GCM under the root key, with the storage path as associated data
 * (a value moved to another record fails to open). Entry: version u8 | iv (12) | ciphertext | tag (16).
 * Random 96-bit IVs are safe here: the number of sealed values is far below the 2^32 invocations
 * NIST SP 800-38D §8.3 allows per key.
 */
export class Barrier {
  private constructor(private readonly rootKey: SecretBytes, readonly sealKind: string) {}

  /**
   * Opens the barrier: unwraps the stored root key with the seal, or on first start generates a
   * root key from the CSPRNG and stores it wrapped. A root key stored under another kind of seal
   * is refused: changing seals is an explicit operation, never a silent fallback.
   */
  static async unseal(storage: Storage, seal: Seal): Promise<Barrier> {
    const stored = await storage.get(ROOT_KEY_PATH);
    if (stored) {
      const record = JSON.parse(stored.toString('utf8')) as { seal: string; wrapped: string };
      if (record.seal !== seal.kind) {
        throw new SealError(`the root key is sealed with the '${record.seal}' seal, but the '${seal.kind}' seal is configured`);
      }
      return new Barrier(await seal.unwrap(Buffer.from(record.wrapped, 'base64')), seal.kind);
    }
    const rootKey = SecretBytes.random(32);
    const wrapped = await seal.wrap(rootKey);
    const record = Buffer.from(JSON.stringify({ seal: seal.kind, wrapped: wrapped.toString('base64') }));
    const created = await storage.putIfAbsent(ROOT_KEY_PATH, record);
    if (!created) {
      // Another process initialised the store first: use its root key.
      rootKey.zeroize();
      return Barrier.unseal(storage, seal);
    }
    return new Barrier(rootKey, seal.kind);
  }

  seal(path: string, plaintext: Buffer): Buffer {
    const iv = randomBytes(12);
    const { ciphertext, tag } = aesGcmEncrypt(this.rootKey.insecureExpose(), iv, plaintext, this.aad(path));
    return Buffer.concat([Buffer.from([ENTRY_VERSION]), iv, ciphertext, tag]);
  }

  open(path: string, sealed: Buffer): Buffer {
    if (sealed.length < 29 || sealed[0] !== ENTRY_VERSION) throw new BarrierError(`sealed value at ${path} is malformed`);
    try {
      return aesGcmDecrypt(
        this.rootKey.insecureExpose(),
        sealed.subarray(1, 13),
        sealed.subarray(13, sealed.length - 16),
        sealed.subarray(sealed.length - 16),
        this.aad(path),
      );
    } catch (e) {
      if (e instanceof AuthenticationFailedError) throw new BarrierError(`sealed value at ${path} does not authenticate`);
      throw e;
    }
  }

  async put(w: StorageWriter, path: string, secret: SecretBytes): Promise<void> {
    await w.put(path, this.seal(path, secret.insecureExpose()));
  }

  async get(r: StorageReader, path: string): Promise<SecretBytes | undefined> {
    const sealed = await r.get(path);
    if (!sealed) return undefined;
    const plain = this.open(path, sealed);
    const secret = SecretBytes.from(plain);
    plain.fill(0);
    return secret;
  }

  private aad(path: string): Buffer {
    return Buffer.concat([AAD_PREFIX, Buffer.from(path, 'utf8')]);
  }
}
