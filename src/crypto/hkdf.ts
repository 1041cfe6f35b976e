import { hkdfSync, type KeyObject } from 'node:crypto';

/** RFC 5869 §2.3: L <= 255 * HashLen. */
export const HKDF_SHA256_MAX_LENGTH = 255 * 32;

/**
 * HKDF-SHA256 (RFC 5869), extract and expand. An empty salt means HashLen zero bytes (RFC 5869 §2.2).
 * Node limits `info` to 1024 bytes. `ikm` may be a secret KeyObject (SecretBytes.insecureKeyObject),
 * which saves node:crypto wrapping a Buffer into a new one on every call.
 */
export function hkdfSha256(ikm: Buffer | KeyObject, salt: Buffer, info: Buffer, length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 1 || length > HKDF_SHA256_MAX_LENGTH) {
    throw new RangeError(`HKDF-SHA256 output length must be 1..${HKDF_SHA256_MAX_LENGTH}, got ${length}`);
  }
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}
