import type { EncryptionContext } from '../types/index.js';
import type { CiphertextBlob } from '../format/index.js';
import type { StorageWriter } from '../barrier/index.js';
import { KeyUnavailableException, KmsError, UnsupportedOperationException } from '../errors/index.js';
import type { SecretBytes } from '../crypto/index.js';
import type { KeyStore, MaterialRef } from './keystore.js';

/**
 * Sends each call to the store that holds the key's material: the software store for ordinary
 * keys, the named HSM's store for keys in a custom key store (`ref.hsm`). A ref that names an HSM
 * is served by that HSM or fails; it never falls back to software.
 */
export class RoutingKeyStore implements KeyStore {
  readonly name = 'routing';

  constructor(private readonly software: KeyStore, private readonly hsm: (name: string) => KeyStore) {}

  private pick(ref: MaterialRef): KeyStore {
    if (ref.hsm === undefined) return this.software;
    try {
      return this.hsm(ref.hsm);
    } catch (e) {
      if (e instanceof KmsError) throw e;
      throw new KeyUnavailableException('The HSM that holds this KMS key\'s material is not available. You can retry the request.');
    }
  }

  async generate(ref: MaterialRef, w: StorageWriter): Promise<void> {
    return this.pick(ref).generate(ref, w);
  }

  async encrypt(ref: MaterialRef, plaintext: Buffer, context: EncryptionContext | undefined): Promise<Buffer> {
    return this.pick(ref).encrypt(ref, plaintext, context);
  }

  async generateDataKey(ref: MaterialRef, length: number, context: EncryptionContext | undefined): Promise<{ plaintext: Buffer; blob: Buffer }> {
    return this.pick(ref).generateDataKey(ref, length, context);
  }

  async decrypt(ref: MaterialRef, blob: CiphertextBlob, context: EncryptionContext | undefined): Promise<Buffer> {
    return this.pick(ref).decrypt(ref, blob, context);
  }

  async importMaterial(ref: MaterialRef, material: SecretBytes, w: StorageWriter): Promise<void> {
    const store = this.pick(ref);
    if (!store.importMaterial) throw new UnsupportedOperationException(`Key store ${store.name} cannot hold imported key material.`);
    return store.importMaterial(ref, material, w);
  }

  async destroy(ref: MaterialRef, w: StorageWriter): Promise<void> {
    return this.pick(ref).destroy(ref, w);
  }
}
