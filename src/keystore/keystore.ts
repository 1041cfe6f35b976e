import type { EncryptionContext } from '../types/index.js';
import type { CiphertextBlob } from '../format/index.js';
import type { StorageWriter } from '../barrier/index.js';

/** Names one backing key: a KMS key's material for one rotation. */
export interface MaterialRef {
  readonly keyId: string;
  readonly keyVersion: number;
}

/**
 * Where key material lives. It offers operations, never "give me the bytes": the software store
 * keeps material sealed in the barrier, an HSM store keeps it inside the token.
 */
export interface KeyStore {
  readonly name: string;
  /** Creates backing-key material for ref. Software stores write it through `w`, inside the caller's transaction. */
  generate(ref: MaterialRef, w: StorageWriter): Promise<void>;
  /** Encrypts under ref and returns a complete ciphertext blob. */
  encrypt(ref: MaterialRef, plaintext: Buffer, context: EncryptionContext | undefined): Promise<Buffer>;
  /** Authenticates and decrypts a parsed blob; any failure is InvalidCiphertextException with no detail. */
  decrypt(ref: MaterialRef, blob: CiphertextBlob, context: EncryptionContext | undefined): Promise<Buffer>;
  /** Destroys the material for ref for good. */
  destroy(ref: MaterialRef, w: StorageWriter): Promise<void>;
}
