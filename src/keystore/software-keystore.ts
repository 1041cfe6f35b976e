import type { EncryptionContext } from '../types/index.js';
import type { CiphertextBlob } from '../format/index.js';
import { randomBytesPooled, SecretBytes } from '../crypto/index.js';
import type { Barrier, StorageReader, StorageWriter } from '../barrier/index.js';
import { KeyUnavailableException } from '../errors/index.js';
import type { KeyStore, MaterialRef } from './keystore.js';
import { openBlobV1, sealBlobV1 } from './blob-crypto.js';

const materialPath = (ref: MaterialRef) => `material/${ref.keyId}/${ref.keyVersion}`;

/**
 * Backing keys from the CSPRNG, stored sealed in the barrier. Opened material is cached in memory
 * (material for a (key, version) never changes) and zeroized when destroyed.
 */
export class SoftwareKeyStore implements KeyStore {
  readonly name = 'software';
  private readonly cache = new Map<string, SecretBytes>();

  constructor(private readonly barrier: Barrier, private readonly reader: StorageReader) {}

  async generate(ref: MaterialRef, w: StorageWriter): Promise<void> {
    const material = SecretBytes.random(32);
    try {
      await this.barrier.put(w, materialPath(ref), material);
    } finally {
      material.zeroize();
    }
  }

  async importMaterial(ref: MaterialRef, material: SecretBytes, w: StorageWriter): Promise<void> {
    const path = materialPath(ref);
    await this.barrier.put(w, path, material);
    this.cache.get(path)?.zeroize();
    this.cache.delete(path);
  }

  async encrypt(ref: MaterialRef, plaintext: Buffer, context: EncryptionContext | undefined): Promise<Buffer> {
    return sealBlobV1(await this.material(ref), ref, plaintext, context);
  }

  async generateDataKey(ref: MaterialRef, length: number, context: EncryptionContext | undefined): Promise<{ plaintext: Buffer; blob: Buffer }> {
    const plaintext = randomBytesPooled(length);
    return { plaintext, blob: await this.encrypt(ref, plaintext, context) };
  }

  async decrypt(ref: MaterialRef, blob: CiphertextBlob, context: EncryptionContext | undefined): Promise<Buffer> {
    return openBlobV1(await this.material(ref), blob, context);
  }

  async destroy(ref: MaterialRef, w: StorageWriter): Promise<void> {
    const path = materialPath(ref);
    await w.delete(path);
    this.cache.get(path)?.zeroize();
    this.cache.delete(path);
  }

  private async material(ref: MaterialRef): Promise<SecretBytes> {
    const path = materialPath(ref);
    const cached = this.cache.get(path);
    if (cached) return cached;
    const material = await this.barrier.get(this.reader, path);
    // The key record names a version whose material is gone: never invent a replacement.
    if (!material) throw new KeyUnavailableException('The key material for this KMS key is not available.');
    this.cache.set(path, material);
    return material;
  }
}
