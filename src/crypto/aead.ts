import { createCipheriv, createDecipheriv, type CipherGCMTypes } from 'node:crypto';
import { AuthenticationFailedError } from './errors.js';

/** 128-bit tags only: shorter GCM tags weaken authentication (NIST SP 800-38D §5.2.1.2, Appendix C). */
export const GCM_TAG_BYTES = 16;
/** 96-bit IVs only: the length NIST SP 800-38D §5.2.1.1 recommends; other lengths are hashed into J0. */
export const GCM_IV_BYTES = 12;

function gcmCipher(key: Buffer): CipherGCMTypes {
  switch (key.length) {
    case 16: return 'aes-128-gcm';
    case 24: return 'aes-192-gcm';
    case 32: return 'aes-256-gcm';
    default: throw new RangeError(`AES-GCM key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
}

/**
 * AES-GCM encryption (AES-128/192/256 chosen by the key length), 12-byte IV, 16-byte tag.
 * The caller must never reuse an (key, iv) pair.
 */
export function aesGcmEncrypt(
  key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer,
): { ciphertext: Buffer; tag: Buffer } {
  const algorithm = gcmCipher(key);
  if (iv.length !== GCM_IV_BYTES) throw new RangeError(`AES-GCM IV must be ${GCM_IV_BYTES} bytes, got ${iv.length}`);
  const cipher = createCipheriv(algorithm, key, iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const rest = cipher.final(); // empty for GCM; joined only if OpenSSL ever holds bytes back
  return { ciphertext: rest.length === 0 ? body : Buffer.concat([body, rest]), tag: cipher.getAuthTag() };
}

/**
 * AES-GCM decryption. Throws AuthenticationFailedError, with no detail, for anything wrong with
 * the IV, ciphertext, tag or AAD. A key of the wrong length is a programming error (RangeError).
 */
export function aesGcmDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  const algorithm = gcmCipher(key);
  if (iv.length !== GCM_IV_BYTES || tag.length !== GCM_TAG_BYTES) throw new AuthenticationFailedError();
  let unverified: Buffer | undefined;
  try {
    const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAuthTag(tag);
    decipher.setAAD(aad);
    unverified = decipher.update(ciphertext);
    const rest = decipher.final(); // checks the tag
    return rest.length === 0 ? unverified : Buffer.concat([unverified, rest]);
  } catch {
    // update() released plaintext before the tag was checked: do not leave it lying around.
    unverified?.fill(0);
    throw new AuthenticationFailedError();
  }
}
