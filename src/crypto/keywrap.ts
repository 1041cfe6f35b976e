import { createCipheriv, createDecipheriv } from 'node:crypto';
import { AuthenticationFailedError } from './errors.js';

/** RFC 3394 §2.2.3.1 default initial value. */
const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
/** RFC 5649 §3 alternative initial value (the 32-bit constant; OpenSSL appends the length itself). */
const KWP_AIV = Buffer.from('a65959a6', 'hex');

function wrapCipher(kek: Buffer, padded: boolean): string {
  if (kek.length !== 16 && kek.length !== 24 && kek.length !== 32) {
    throw new RangeError(`AES key-wrap KEK must be 16, 24 or 32 bytes, got ${kek.length}`);
  }
  return `id-aes${kek.length * 8}-wrap${padded ? '-pad' : ''}`;
}

function run(cipher: { update(b: Buffer): Buffer; final(): Buffer }, input: Buffer): Buffer {
  // OpenSSL's wrap modes take the whole input in one update(); final() adds nothing.
  const out = cipher.update(input);
  const rest = cipher.final();
  return rest.length === 0 ? out : Buffer.concat([out, rest]);
}

function unwrap(kek: Buffer, wrapped: Buffer, padded: boolean, minLength: number): Buffer {
  const algorithm = wrapCipher(kek, padded);
  // Checked here, not left to OpenSSL: given an empty input it returns an empty "key" without error.
  if (wrapped.length < minLength || wrapped.length % 8 !== 0) throw new AuthenticationFailedError();
  let out: Buffer | undefined;
  try {
    const decipher = createDecipheriv(algorithm, kek, padded ? KWP_AIV : KW_IV);
    out = decipher.update(wrapped);
    const rest = decipher.final();
    return rest.length === 0 ? out : Buffer.concat([out, rest]);
  } catch {
    out?.fill(0);
    throw new AuthenticationFailedError();
  }
}

/** RFC 5649 AES key wrap with padding: any key of 1 or more bytes; output is 8..15 bytes longer. */
export function aesKeyWrapPad(kek: Buffer, key: Buffer): Buffer {
  const algorithm = wrapCipher(kek, true);
  if (key.length < 1) throw new RangeError('RFC 5649 key wrap needs at least 1 byte to wrap');
  return run(createCipheriv(algorithm, kek, KWP_AIV), key);
}

/** RFC 5649 unwrap. Throws AuthenticationFailedError on any failure (integrity, padding, length). */
export function aesKeyUnwrapPad(kek: Buffer, wrapped: Buffer): Buffer {
  return unwrap(kek, wrapped, true, 16);
}

/** RFC 3394 AES key wrap: the key must be a multiple of 8 bytes, at least 16 (n >= 2, §2.2.1). */
export function aesKeyWrap(kek: Buffer, key: Buffer): Buffer {
  const algorithm = wrapCipher(kek, false);
  if (key.length < 16 || key.length % 8 !== 0) {
    throw new RangeError(`RFC 3394 key wrap needs a multiple of 8 bytes, at least 16; got ${key.length}`);
  }
  return run(createCipheriv(algorithm, kek, KW_IV), key);
}

/** RFC 3394 unwrap. Throws AuthenticationFailedError on any failure (integrity, length). */
export function aesKeyUnwrap(kek: Buffer, wrapped: Buffer): Buffer {
  return unwrap(kek, wrapped, false, 24);
}
