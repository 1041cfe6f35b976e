import { InvalidCiphertextException } from '../errors/index.js';

/*
 * Ciphertext blob, version 1: what Encrypt returns as CiphertextBlob. All integers big-endian.
 *
 *   offset        size  field
 *   0             1     version       0x01
 *   1             1     keyIdLength   L, 1..255
 *   2             L     keyId         printable ASCII (0x21..0x7e)
 *   2+L           4     keyVersion    u32, >= 1: which backing key of the KMS key
 *   6+L           32    nonce         random; salt of the per-request HKDF (see keystore/blob-crypto.ts)
 *   38+L          12    iv            random AES-GCM IV
 *   50+L          n     ciphertext    n >= 0
 *   50+L+n        16    tag           AES-GCM tag
 *
 * Bytes 0 .. 50+L-1 are the header; it is authenticated as associated data together with the
 * canonical encryption context. A blob is at most MAX_BLOB_BYTES long.
 * Version 1 is frozen: test/vectors/ciphertext-blob-v1.json must keep passing unchanged.
 */

export const BLOB_VERSION_1 = 0x01;
export const BLOB_NONCE_BYTES = 32;
export const BLOB_IV_BYTES = 12;
export const BLOB_TAG_BYTES = 16;
export const BLOB_MAX_KEY_ID_BYTES = 255;
/** AWS KMS caps CiphertextBlob at 6144 bytes (KMS API reference, CiphertextBlob length constraint). */
export const MAX_BLOB_BYTES = 6144;
/** Header with a 1-byte key id, empty ciphertext, tag. */
export const MIN_BLOB_BYTES = 2 + 1 + 4 + BLOB_NONCE_BYTES + BLOB_IV_BYTES + BLOB_TAG_BYTES;

const U32_MAX = 0xffffffff;

export interface CiphertextBlob {
  version: 1;
  keyId: string;
  keyVersion: number;
  nonce: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
  /** version .. iv, exactly as in the blob: the first part of the associated data. */
  header: Buffer;
}

export type BlobFields = Omit<CiphertextBlob, 'header'>;
export type BlobHeaderFields = Omit<CiphertextBlob, 'header' | 'ciphertext' | 'tag'>;

function isKeyIdByte(b: number): boolean {
  return b >= 0x21 && b <= 0x7e;
}

function headerLength(keyIdLength: number): number {
  return 2 + keyIdLength + 4 + BLOB_NONCE_BYTES + BLOB_IV_BYTES;
}

/** The header (version .. iv). Invalid fields are a programming error: RangeError. */
export function encodeBlobHeader(fields: BlobHeaderFields): Buffer {
  const { version, keyId, keyVersion, nonce, iv } = fields;
  if (version !== BLOB_VERSION_1) throw new RangeError('ciphertext blob: only version 1 can be written');
  const id = Buffer.from(keyId, 'latin1');
  if (id.length < 1 || id.length > BLOB_MAX_KEY_ID_BYTES || id.toString('latin1') !== keyId || !id.every(isKeyIdByte)) {
    throw new RangeError('ciphertext blob: key id must be 1..255 printable ASCII characters');
  }
  if (!Number.isSafeInteger(keyVersion) || keyVersion < 1 || keyVersion > U32_MAX) {
    throw new RangeError('ciphertext blob: key version must be an integer in 1..2^32-1');
  }
  if (nonce.length !== BLOB_NONCE_BYTES) throw new RangeError(`ciphertext blob: nonce must be ${BLOB_NONCE_BYTES} bytes`);
  if (iv.length !== BLOB_IV_BYTES) throw new RangeError(`ciphertext blob: iv must be ${BLOB_IV_BYTES} bytes`);

  const out = Buffer.alloc(headerLength(id.length));
  let at = out.writeUInt8(version, 0);
  at = out.writeUInt8(id.length, at);
  at += id.copy(out, at);
  at = out.writeUInt32BE(keyVersion, at);
  at += nonce.copy(out, at);
  iv.copy(out, at);
  return out;
}

/** The whole blob. Throws RangeError for invalid fields or a result over MAX_BLOB_BYTES. */
export function encodeBlob(fields: BlobFields): Buffer {
  return joinBlob(encodeBlobHeader(fields), fields.ciphertext, fields.tag);
}

/**
 * The whole blob from a header that encodeBlobHeader returned (so already checked) and the
 * AES-GCM output: one allocation, one copy of each part. Throws RangeError as encodeBlob does.
 */
export function joinBlob(header: Buffer, ciphertext: Buffer, tag: Buffer): Buffer {
  if (tag.length !== BLOB_TAG_BYTES) throw new RangeError(`ciphertext blob: tag must be ${BLOB_TAG_BYTES} bytes`);
  const size = header.length + ciphertext.length + BLOB_TAG_BYTES;
  if (size > MAX_BLOB_BYTES) throw new RangeError(`ciphertext blob would be ${size} bytes; at most ${MAX_BLOB_BYTES}`);
  const out = Buffer.allocUnsafeSlow(size);
  header.copy(out, 0);
  ciphertext.copy(out, header.length);
  tag.copy(out, header.length + ciphertext.length);
  return out;
}

/**
 * Parses a blob. Every failure (wrong version, truncation, bad lengths, bad key id, key version 0,
 * too long) throws the same `new InvalidCiphertextException()`, with no message, so the answer
 * tells a caller nothing about which check failed. Each read is bounds-checked before it is made.
 * The returned buffers are copies: later changes to `buf` do not affect them.
 */
export function decodeBlob(buf: Buffer): CiphertextBlob {
  if (!(buf instanceof Uint8Array) || buf.length < MIN_BLOB_BYTES || buf.length > MAX_BLOB_BYTES) throw new InvalidCiphertextException();
  return parseBlob(Buffer.from(buf)); // our own copy (length already bounded)
}

/**
 * decodeBlob without the copy: the returned buffers are views into `buf`. Only for a caller that
 * owns `buf` and does not change it while the result is in use (the key-store guard checking a
 * blob it was just handed, Decrypt parsing the bytes it decoded from the request).
 */
export function decodeBlobView(buf: Buffer): CiphertextBlob {
  if (!(buf instanceof Uint8Array) || buf.length < MIN_BLOB_BYTES || buf.length > MAX_BLOB_BYTES) throw new InvalidCiphertextException();
  return parseBlob(Buffer.isBuffer(buf) ? buf : Buffer.from(buf as Uint8Array));
}

function parseBlob(b: Buffer): CiphertextBlob {
  const invalid = () => new InvalidCiphertextException();

  if (b[0] !== BLOB_VERSION_1) throw invalid();
  const idLength = b[1] as number; // index 1 < MIN_BLOB_BYTES <= length
  if (idLength < 1) throw invalid();
  const headerEnd = headerLength(idLength);
  if (headerEnd + BLOB_TAG_BYTES > b.length) throw invalid();

  const id = b.subarray(2, 2 + idLength);
  if (!id.every(isKeyIdByte)) throw invalid();
  let at = 2 + idLength;
  const keyVersion = b.readUInt32BE(at);
  if (keyVersion < 1) throw invalid();
  at += 4;
  const nonce = b.subarray(at, at + BLOB_NONCE_BYTES);
  at += BLOB_NONCE_BYTES;
  const iv = b.subarray(at, at + BLOB_IV_BYTES);
  at += BLOB_IV_BYTES;
  const tagStart = b.length - BLOB_TAG_BYTES;

  return {
    version: 1,
    keyId: id.toString('latin1'),
    keyVersion,
    nonce,
    iv,
    ciphertext: b.subarray(headerEnd, tagStart),
    tag: b.subarray(tagStart),
    header: b.subarray(0, headerEnd),
  };
}
