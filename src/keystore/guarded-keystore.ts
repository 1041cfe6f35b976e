import type { EncryptionContext } from '../types/index.js';
import { decodeBlobView, MAX_BLOB_BYTES, type CiphertextBlob } from '../format/index.js';
import { InvalidCiphertextException, KMSInternalException, UnsupportedOperationException } from '../errors/index.js';
import type { SecretBytes } from '../crypto/index.js';
import type { StorageWriter } from '../barrier/index.js';
import type { KeyStore, MaterialRef } from './keystore.js';

/**
 * Wraps any KeyStore so that no implementation can skip the invariants (STYLE.md §4): the blob it
 * returns parses, names the key and version it was asked for and fits the 6144-byte limit; it is
 * only asked to decrypt blobs that name the ref it is given.
 */
export class GuardedKeyStore implements KeyStore {
  constructor(private readonly inner: KeyStore) {}

  get name() {
    return this.inner.name;
  }

  generate(ref: MaterialRef, w: StorageWriter): Promise<void> {
    return this.inner.generate(ref, w);
  }

  async encrypt(ref: MaterialRef, plaintext: Buffer, context: EncryptionContext | undefined): Promise<Buffer> {
    const blob = await this.inner.encrypt(ref, plaintext, context);
    this.check(ref, blob);
    return blob;
  }

  private check(ref: MaterialRef, blob: Buffer): void {
    let parsed: CiphertextBlob;
    try {
      parsed = decodeBlobView(blob); // a view: only the key id and version are read
    } catch {
      throw new KMSInternalException(`key store ${this.inner.name} produced a malformed blob`);
    }
    if (blob.length > MAX_BLOB_BYTES || parsed.keyId !== ref.keyId || parsed.keyVersion !== ref.keyVersion) {
      throw new KMSInternalException(`key store ${this.inner.name} produced a blob for the wrong key`);
    }
  }

  async generateDataKey(ref: MaterialRef, length: number, context: EncryptionContext | undefined): Promise<{ plaintext: Buffer; blob: Buffer }> {
    const out = await this.inner.generateDataKey(ref, length, context);
    if (out.plaintext.length !== length) throw new KMSInternalException(`key store ${this.inner.name} produced a data key of the wrong length`);
    this.check(ref, out.blob);
    return out;
  }

  async decrypt(ref: MaterialRef, blob: CiphertextBlob, context: EncryptionContext | undefined): Promise<Buffer> {
    if (blob.keyId !== ref.keyId || blob.keyVersion !== ref.keyVersion) throw new InvalidCiphertextException();
    return this.inner.decrypt(ref, blob, context);
  }

  async importMaterial(ref: MaterialRef, material: SecretBytes, w: StorageWriter): Promise<void> {
    if (!this.inner.importMaterial) throw new UnsupportedOperationException(`Key store ${this.inner.name} cannot hold imported key material.`);
    return this.inner.importMaterial(ref, material, w);
  }

  destroy(ref: MaterialRef, w: StorageWriter): Promise<void> {
    return this.inner.destroy(ref, w);
  }
}
