/** Primitives over node:crypto (OpenSSL). No I/O; the only state is random-pool.ts's buffer of CSPRNG output. */
export { AuthenticationFailedError } from './errors.js';
export { SecretBytes } from './secret-bytes.js';
export { aesGcmEncrypt, aesGcmDecrypt, GCM_IV_BYTES, GCM_TAG_BYTES } from './aead.js';
export { hkdfSha256, HKDF_SHA256_MAX_LENGTH } from './hkdf.js';
export { aesKeyWrapPad, aesKeyUnwrapPad, aesKeyWrap, aesKeyUnwrap } from './keywrap.js';
export { sha256, sha256Hex, hmacSha256, constantTimeEqual } from './hash.js';
export { scryptKey, SCRYPT_MAX_MEMORY, type ScryptParams } from './scrypt.js';
export { randomBytesPooled, RANDOM_POOL_MAX_REQUEST } from './random-pool.js';
export {
  IMPORT_WRAPPING_ALGORITHMS, IMPORT_WRAPPING_KEY_BITS, rsaOaepDecrypt, unwrapImportedKeyMaterial,
  type ImportWrappingAlgorithm, type ImportWrappingKeySpec,
} from './import-unwrap.js';
