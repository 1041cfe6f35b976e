import { ValidationException } from '../errors/index.js';

/** Each count and length is a u16, so no key, value or pair count may exceed this. */
const U16_MAX = 0xffff;

/**
 * The canonical byte form of an encryption context, used as GCM associated data.
 *
 *   count u16 | { keyLength u16 | key (UTF-8) | valueLength u16 | value (UTF-8) } * count
 *
 * Big-endian; pairs sorted by the UTF-8 bytes of the key (Buffer.compare), so the same pairs in any
 * order give the same bytes. Every field is length-prefixed, so distinct contexts never collide
 * ({a:'bc'} and {ab:'c'} differ). An absent or empty context is the two bytes 00 00.
 *
 * Strings that are not well-formed UTF-16 (lone surrogates) are refused: UTF-8 encoding would turn
 * them all into U+FFFD, so two different contexts would share one canonical form.
 */
export function canonicalEncryptionContext(ctx: Readonly<Record<string, string>> | undefined): Buffer {
  const pairs: Array<[Buffer, Buffer]> = [];
  for (const [key, value] of Object.entries(ctx ?? {})) {
    pairs.push([utf8(key, 'key'), utf8(value, 'value')]);
  }
  if (pairs.length > U16_MAX) {
    throw new ValidationException(`Encryption context has ${pairs.length} pairs; at most ${U16_MAX} are allowed.`);
  }
  pairs.sort((x, y) => Buffer.compare(x[0], y[0]));

  let size = 2;
  for (const [k, v] of pairs) size += 4 + k.length + v.length;
  const out = Buffer.alloc(size);
  let at = out.writeUInt16BE(pairs.length, 0);
  for (const [k, v] of pairs) {
    at = out.writeUInt16BE(k.length, at);
    at += k.copy(out, at);
    at = out.writeUInt16BE(v.length, at);
    at += v.copy(out, at);
  }
  return out;
}

function utf8(s: unknown, what: string): Buffer {
  if (typeof s !== 'string') throw new ValidationException(`Encryption context ${what} must be a string.`);
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.toString('utf8') !== s) {
    throw new ValidationException(`Encryption context ${what} is not valid Unicode (unpaired surrogate).`);
  }
  if (bytes.length > U16_MAX) {
    throw new ValidationException(
      `Encryption context ${what} is ${bytes.length} bytes in UTF-8; at most ${U16_MAX} are allowed.`,
    );
  }
  return bytes;
}
