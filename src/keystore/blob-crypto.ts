import { aesGcmDecrypt, aesGcmEncrypt, AuthenticationFailedError, hkdfSha256, randomBytesPooled, SecretBytes } from '../crypto/index.js';
import {
  BLOB_IV_BYTES, BLOB_NONCE_BYTES, canonicalEncryptionContext, encodeBlobHeader, joinBlob, type CiphertextBlob,
} from '../format/index.js';
import { InvalidCiphertextException } from '../errors/index.js';
import type { EncryptionContext } from '../types/index.js';

/*
 * Software encryption of a version-1 ciphertext blob (layout: src/format/ciphertext-blob.ts).
 *
 *   K   = HKDF-SHA256(ikm = backing key, salt = nonce (32 random bytes), info = "keyhold/blob/v1", L = 32)
 *   AAD = header || canonicalEncryptionContext(context)
 *   ciphertext, tag = AES-256-GCM(K, iv (12 random bytes), plaintext, AAD)
 *
 * Why a per-request key: with random 96-bit IVs, NIST SP 800-38D §8.3 limits one GCM key to 2^32
 * invocations, and a busy KMS key would reach that. Deriving K from a fresh 256-bit nonce means each
 * K encrypts one message, so the limit is never approached (a nonce repeat has probability ~2^-256
 * per pair). The backing key itself is never used as a GCM key.
 */

const HKDF_INFO = Buffer.from('keyhold/blob/v1', 'ascii');


const BACKING_KEY_BYTES = 32;
const DERIVED_KEY_BYTES = 32; // AES-256

function deriveKey(backingKey: SecretBytes, nonce: Buffer): Buffer {
  if (backingKey.length !== BACKING_KEY_BYTES) {
    throw new RangeError(`blob v1 backing key must be ${BACKING_KEY_BYTES} bytes, got ${backingKey.length}`);
  }
  // The KeyObject form: the same bytes, without node:crypto wrapping them anew on every call.
  return hkdfSha256(backingKey.insecureKeyObject(), nonce, HKDF_INFO, DERIVED_KEY_BYTES);
}

/**
 * Encrypts `plaintext` into a version-1 blob for (keyId, keyVersion). `fixed` pins nonce and IV and
 * exists only so that frozen test vectors can be reproduced: production callers must omit it.
 * Throws ValidationException for an invalid context and RangeError for invalid arguments.
 */
export function sealBlobV1(
  backingKey: SecretBytes,
  ref: { keyId: string; keyVersion: number },
  plaintext: Buffer,
  context: EncryptionContext | undefined,
  fixed?: { nonce: Buffer; iv: Buffer },
): Buffer {
  const fresh = fixed ? undefined : randomBytesPooled(BLOB_NONCE_BYTES + BLOB_IV_BYTES);
  const nonce = fixed?.nonce ?? fresh!.subarray(0, BLOB_NONCE_BYTES);
  const iv = fixed?.iv ?? fresh!.subarray(BLOB_NONCE_BYTES);
  // The header is encoded (and its fields checked) once: it is both associated data and the blob's start.
  const header = encodeBlobHeader({ version: 1, keyId: ref.keyId, keyVersion: ref.keyVersion, nonce, iv });
  const aad = Buffer.concat([header, canonicalEncryptionContext(context)]);
  const k = deriveKey(backingKey, nonce);
  try {
    const { ciphertext, tag } = aesGcmEncrypt(k, iv, plaintext, aad);
    return joinBlob(header, ciphertext, tag);
  } finally {
    k.fill(0);
  }
}

/**
 * Decrypts a parsed version-1 blob with the backing key it names. Throws `new InvalidCiphertextException()`
 * (no message) when it does not authenticate: wrong key, wrong context, any altered byte.
 * The caller checks that `blob.keyId`/`keyVersion` select `backingKey`.
 */
export function openBlobV1(
  backingKey: SecretBytes, blob: CiphertextBlob, context: EncryptionContext | undefined,
): Buffer {
  // Authenticate the header as it follows from the fields we act on, and refuse a blob object
  // whose `header` says something else.
  let header: Buffer;
  try {
    header = encodeBlobHeader(blob);
  } catch {
    throw new InvalidCiphertextException();
  }
  if (!header.equals(blob.header)) throw new InvalidCiphertextException();
  const aad = Buffer.concat([header, canonicalEncryptionContext(context)]);
  const k = deriveKey(backingKey, blob.nonce);
  try {
    return aesGcmDecrypt(k, blob.iv, blob.ciphertext, blob.tag, aad);
  } catch (e) {
    if (e instanceof AuthenticationFailedError) throw new InvalidCiphertextException();
    throw e;
  } finally {
    k.fill(0);
  }
}
