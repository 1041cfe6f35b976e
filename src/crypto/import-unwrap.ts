import { constants, privateDecrypt, type KeyObject } from 'node:crypto';
import { AuthenticationFailedError } from './errors.js';
import { aesKeyUnwrapPad } from './keywrap.js';
import { SecretBytes } from './secret-bytes.js';

/**
 * The wrapping algorithms Keyhold accepts for imported key material, described once (STYLE.md §3).
 * RSAES_OAEP_*: the material itself is RSA-OAEP encrypted under the wrapping public key.
 * RSA_AES_KEY_WRAP_*: an ephemeral 256-bit AES key is RSA-OAEP encrypted (first modulus-length bytes),
 * followed by the material wrapped under it with AES key wrap with padding (RFC 5649), as AWS documents
 * for `openssl enc -id-aes256-wrap-pad`. OAEP's MGF1 hash equals its digest in every case (as AWS).
 * RSAES_PKCS1_V1_5 is deliberately absent: it is the padding-oracle scheme (Bleichenbacher).
 */
export const IMPORT_WRAPPING_ALGORITHMS = {
  RSAES_OAEP_SHA_1: { oaepHash: 'sha1', aesKeyWrap: false },
  RSAES_OAEP_SHA_256: { oaepHash: 'sha256', aesKeyWrap: false },
  RSA_AES_KEY_WRAP_SHA_1: { oaepHash: 'sha1', aesKeyWrap: true },
  RSA_AES_KEY_WRAP_SHA_256: { oaepHash: 'sha256', aesKeyWrap: true },
} as const;
export type ImportWrappingAlgorithm = keyof typeof IMPORT_WRAPPING_ALGORITHMS;

/** RSA wrapping key sizes, in bits, by AWS WrappingKeySpec. */
export const IMPORT_WRAPPING_KEY_BITS = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 } as const;
export type ImportWrappingKeySpec = keyof typeof IMPORT_WRAPPING_KEY_BITS;

/** Length of the AES key in RSA_AES_KEY_WRAP_*. */
const EPHEMERAL_AES_KEY_BYTES = 32;

/**
 * RSAES-OAEP decryption with an empty label and MGF1 over the same hash. Any failure (length,
 * padding, label, integer range) is the one AuthenticationFailedError, whatever OpenSSL reported.
 */
export function rsaOaepDecrypt(privateKey: KeyObject, oaepHash: 'sha1' | 'sha256', ciphertext: Buffer): Buffer {
  const modulusBytes = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (modulusBytes === 0 || ciphertext.length !== modulusBytes) throw new AuthenticationFailedError();
  try {
    return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, ciphertext);
  } catch {
    throw new AuthenticationFailedError();
  }
}

/**
 * Unwraps imported key material of exactly `expectedLength` bytes. Every failure (wrong size, bad
 * OAEP padding or hash, bad RFC 5649 integrity check, wrong material length) throws the same
 * AuthenticationFailedError, so the caller cannot tell them apart (no padding oracle).
 */
export function unwrapImportedKeyMaterial(
  privateKey: KeyObject, algorithm: ImportWrappingAlgorithm, wrapped: Buffer, expectedLength: number,
): SecretBytes {
  const spec = IMPORT_WRAPPING_ALGORITHMS[algorithm];
  if (!spec) throw new AuthenticationFailedError();
  const modulusBytes = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  let material: Buffer | undefined;
  let aesKey: Buffer | undefined;
  try {
    if (!spec.aesKeyWrap) {
      material = rsaOaepDecrypt(privateKey, spec.oaepHash, wrapped);
    } else {
      if (wrapped.length <= modulusBytes) throw new AuthenticationFailedError();
      aesKey = rsaOaepDecrypt(privateKey, spec.oaepHash, wrapped.subarray(0, modulusBytes));
      if (aesKey.length !== EPHEMERAL_AES_KEY_BYTES) throw new AuthenticationFailedError();
      material = aesKeyUnwrapPad(aesKey, wrapped.subarray(modulusBytes));
    }
    if (material.length !== expectedLength) throw new AuthenticationFailedError();
    return SecretBytes.from(material);
  } catch {
    throw new AuthenticationFailedError();
  } finally {
    material?.fill(0);
    aesKey?.fill(0);
  }
}
