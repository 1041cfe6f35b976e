import type { EncryptionContext } from '../types/index.js';
import type { CiphertextBlob } from '../format/index.js';
import type { StorageWriter } from '../barrier/index.js';
import type { SecretBytes } from '../crypto/index.js';

/** Names one backing key: a KMS key's material for one rotation. */
export interface MaterialRef {
  readonly keyId: string;
  readonly keyVersion: number;
  /**
   * The declared HSM (`--hsm NAME=...`) that holds the material, for keys in a custom key store;
   * absent for software keys. The routing store sends the call there and nowhere else.
   */
  readonly hsm?: string;
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
  /** A data key of `length` bytes from the store's random source, and its blob under ref. */
  generateDataKey(ref: MaterialRef, length: number, context: EncryptionContext | undefined): Promise<{ plaintext: Buffer; blob: Buffer }>;
  /**
   * Stores caller-supplied material (BYOK ImportKeyMaterial) for ref, inside the caller's transaction.
   * Only stores that can hold imported material implement it; an HSM store does not.
   */
  importMaterial?(ref: MaterialRef, material: SecretBytes, w: StorageWriter): Promise<void>;
  /** Destroys the material for ref for good. */
  destroy(ref: MaterialRef, w: StorageWriter): Promise<void>;
}

/** Why an HSM cannot be connected, in AWS's ConnectionErrorCode terms. */
export type HsmConnectionError = 'INVALID_CREDENTIALS' | 'CLUSTER_NOT_FOUND' | 'NETWORK_ERRORS' | 'USER_LOCKED_OUT' | 'INTERNAL_ERROR';

/**
 * The HSMs declared to this server (`--hsm NAME=...`), as custom key store operations see them:
 * names only, and a check that a token is reachable and that a password is its user PIN.
 */
export interface HsmDirectory {
  names(): readonly string[];
  /** Opens (or reuses) the token's login and checks `password`; resolves to undefined when all is well. */
  check(name: string, password?: string): Promise<HsmConnectionError | undefined>;
}

export const NO_HSMS: HsmDirectory = {
  names: () => [],
  check: async () => 'CLUSTER_NOT_FOUND',
};
