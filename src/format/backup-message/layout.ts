/**
 * The AWS Encryption SDK message format, version 2 (framed), as Keyhold writes and reads backups.
 * Byte layouts only: no I/O and no cryptography (the streaming encryptor/decryptor in
 * src/cli/backup/ does the node:crypto work). Reference: aws-encryption-sdk-specification,
 * data-format/message-header.md, message-body.md, message-footer.md and
 * framework/algorithm-suites.md. Integers are big-endian.
 *
 * Header (v2):
 *   version u8 = 0x02 | suiteId u16 | messageId 32 | aadLength u16 | aad (encryption context)
 *   | edkCount u16 | { providerIdLen u16 | providerId | providerInfoLen u16 | providerInfo
 *   | ciphertextLen u16 | ciphertext } * edkCount | contentType u8 = 0x02 (framed)
 *   | frameLength u32 | suiteData 32 (commitment key) | headerAuthTag 16
 *
 * Body (framed): regular frames  seq u32 | iv 12 | content (frameLength) | tag 16
 *                final frame     0xFFFFFFFF | seq u32 | iv 12 | contentLength u32 | content | tag 16
 * Footer (signed suites only): signatureLength u16 | signature (DER ECDSA)
 */

export const MESSAGE_VERSION_2 = 0x02;
export const CONTENT_TYPE_FRAMED = 0x02;
export const MESSAGE_ID_BYTES = 32;
export const COMMITMENT_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const FINAL_FRAME_MARKER = 0xffffffff;
/** The highest sequence number a frame may carry (the marker value itself is reserved). */
export const MAX_SEQUENCE_NUMBER = 0xfffffffe;
/** The encryption-context key under which signed suites carry the public verification key. */
export const PUBLIC_KEY_CONTEXT_KEY = 'aws-crypto-public-key';
/** Provider id of EDKs wrapped by AWS KMS (and so by Keyhold). */
export const KMS_PROVIDER_ID = 'aws-kms';

const FRAME_AAD_REGULAR = Buffer.from('AWSKMSEncryptionClient Frame', 'utf8');
const FRAME_AAD_FINAL = Buffer.from('AWSKMSEncryptionClient Final Frame', 'utf8');

export interface SuiteInfo {
  id: number;
  name: string;
  /** ECDSA curve name for node:crypto, or undefined for unsigned suites. */
  signatureCurve?: 'secp384r1';
  signatureHash?: 'sha384';
}

/**
 * The two committing suites of message format v2. Both: AES-256-GCM, 12-byte IV, 16-byte tag,
 * data key derived by HKDF-SHA512 (salt = message id, info = suiteId || "DERIVEKEY"), commitment key
 * HKDF-SHA512 (salt = message id, info = "COMMITKEY") stored as the suite data.
 */
export const SUITES: Readonly<Record<number, SuiteInfo>> = {
  0x0478: { id: 0x0478, name: 'AES_256_GCM_HKDF_SHA512_COMMIT_KEY' },
  0x0578: { id: 0x0578, name: 'AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384', signatureCurve: 'secp384r1', signatureHash: 'sha384' },
};
export const SUITE_COMMIT_KEY = 0x0478;
export const SUITE_COMMIT_KEY_ECDSA_P384 = 0x0578;

export const DERIVE_KEY_LABEL = Buffer.from('DERIVEKEY', 'ascii');
export const COMMIT_KEY_LABEL = Buffer.from('COMMITKEY', 'ascii');

/** The HKDF info for the data-encryption key: suite id (u16) followed by "DERIVEKEY". */
export function deriveKeyInfo(suiteId: number): Buffer {
  const b = Buffer.alloc(2 + DERIVE_KEY_LABEL.length);
  b.writeUInt16BE(suiteId, 0);
  DERIVE_KEY_LABEL.copy(b, 2);
  return b;
}

export interface EncryptedDataKey {
  providerId: string;
  /** For aws-kms: the key ARN that wrapped the data key (UTF-8; other providers' bytes decoded leniently). */
  providerInfo: string;
  /** The exact provider info bytes (binary for raw keyrings); written instead of providerInfo when set. */
  providerInfoBytes?: Buffer;
  ciphertext: Buffer;
}

export interface MessageHeader {
  suiteId: number;
  messageId: Buffer;
  encryptionContext: Record<string, string>;
  encryptedDataKeys: EncryptedDataKey[];
  frameLength: number;
  commitment: Buffer;
}

export interface ParsedHeader extends MessageHeader {
  /** The serialized header body (version .. suite data), the associated data of the header tag. */
  body: Buffer;
  authTag: Buffer;
  /** Total header bytes including the auth tag. */
  length: number;
}

/** Bad or unsupported message bytes. The message says what is wrong, never anything secret. */
export class BackupFormatError extends Error {
  override name = 'BackupFormatError';
}

/** Thrown by parseHeader when the buffer ends before the header does: read more and retry. */
export class IncompleteHeader extends Error {
  override name = 'IncompleteHeader';
}

/** Header size limit we accept on read: large EC or thousands of EDKs are refused, not buffered. */
export const MAX_HEADER_BYTES = 1 << 20;

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function lenPrefixed(b: Buffer, what: string): Buffer[] {
  if (b.length > 0xffff) throw new RangeError(`${what} is longer than 65535 bytes`);
  return [u16(b.length), b];
}

/** ESDK v2 AAD field: the serialized context, or nothing at all when it is empty. */
export function serializeEncryptionContext(ctx: Readonly<Record<string, string>>): Buffer {
  const pairs = Object.entries(ctx).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const);
  if (pairs.length === 0) return Buffer.alloc(0);
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u16(pairs.length)];
  for (const [k, v] of pairs) parts.push(...lenPrefixed(k, 'encryption context key'), ...lenPrefixed(v, 'encryption context value'));
  return Buffer.concat(parts);
}

/** The header body: everything the header auth tag covers. */
export function encodeHeaderBody(h: MessageHeader): Buffer {
  if (!SUITES[h.suiteId]) throw new RangeError(`unsupported suite ${h.suiteId}`);
  if (h.messageId.length !== MESSAGE_ID_BYTES || h.commitment.length !== COMMITMENT_BYTES) throw new RangeError('bad message id or commitment length');
  if (h.encryptedDataKeys.length < 1 || h.encryptedDataKeys.length > 0xffff) throw new RangeError('need 1..65535 encrypted data keys');
  if (!Number.isInteger(h.frameLength) || h.frameLength < 1 || h.frameLength > 0xffffffff) throw new RangeError('bad frame length');
  const aad = serializeEncryptionContext(h.encryptionContext);
  const parts: Buffer[] = [Buffer.from([MESSAGE_VERSION_2]), u16(h.suiteId), h.messageId, ...lenPrefixed(aad, 'encryption context'), u16(h.encryptedDataKeys.length)];
  for (const edk of h.encryptedDataKeys) {
    parts.push(
      ...lenPrefixed(Buffer.from(edk.providerId, 'utf8'), 'provider id'),
      ...lenPrefixed(edk.providerInfoBytes ?? Buffer.from(edk.providerInfo, 'utf8'), 'provider info'),
      ...lenPrefixed(edk.ciphertext, 'encrypted data key'),
    );
  }
  const tail = Buffer.alloc(5);
  tail.writeUInt8(CONTENT_TYPE_FRAMED, 0);
  tail.writeUInt32BE(h.frameLength, 1);
  parts.push(tail, h.commitment);
  return Buffer.concat(parts);
}

/** A bounds-checked cursor; running off the end means "need more bytes". */
class Cursor {
  at = 0;
  constructor(private readonly buf: Buffer) {}
  take(n: number): Buffer {
    if (this.at + n > this.buf.length) {
      if (this.at + n > MAX_HEADER_BYTES) throw new BackupFormatError(`message header is larger than ${MAX_HEADER_BYTES} bytes`);
      throw new IncompleteHeader();
    }
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  u8(): number { return this.take(1).readUInt8(0); }
  u16(): number { return this.take(2).readUInt16BE(0); }
  u32(): number { return this.take(4).readUInt32BE(0); }
}

function strictUtf8(b: Buffer, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new BackupFormatError(`${what} is not valid UTF-8`);
  }
}

function parseEncryptionContext(aad: Buffer): Record<string, string> {
  const ctx: Record<string, string> = Object.create(null);
  if (aad.length === 0) return ctx;
  const c = new Cursor(aad);
  const bad = (m: string) => new BackupFormatError(`malformed encryption context: ${m}`);
  try {
    const count = c.u16();
    if (count === 0) throw bad('zero pairs with a non-empty field');
    let prev: Buffer | undefined;
    for (let i = 0; i < count; i++) {
      const k = c.take(c.u16());
      const v = c.take(c.u16());
      if (prev && Buffer.compare(prev, k) >= 0) throw bad('keys not sorted or duplicated');
      prev = k;
      ctx[strictUtf8(k, 'encryption context key')] = strictUtf8(v, 'encryption context value');
    }
  } catch (e) {
    if (e instanceof IncompleteHeader) throw bad('length runs past its field');
    throw e;
  }
  if (c.at !== aad.length) throw bad('trailing bytes');
  return ctx;
}

/**
 * Parses a v2 framed header from the start of buf. Throws IncompleteHeader if buf ends first and
 * BackupFormatError for anything this reader does not accept (other versions, unframed, unknown or
 * non-committing suites).
 */
export function parseHeader(buf: Buffer): ParsedHeader {
  const c = new Cursor(buf);
  const version = c.u8();
  if (version !== MESSAGE_VERSION_2) {
    throw new BackupFormatError(version === 0x01
      ? 'message format version 1 (a non-committing suite) is not accepted'
      : `not an AWS Encryption SDK v2 message (first byte 0x${version.toString(16).padStart(2, '0')})`);
  }
  const suiteId = c.u16();
  if (!SUITES[suiteId]) throw new BackupFormatError(`unsupported algorithm suite 0x${suiteId.toString(16).padStart(4, '0')}`);
  const messageId = Buffer.from(c.take(MESSAGE_ID_BYTES));
  const encryptionContext = parseEncryptionContext(c.take(c.u16()));
  const edkCount = c.u16();
  if (edkCount === 0) throw new BackupFormatError('message has no encrypted data keys');
  const encryptedDataKeys: EncryptedDataKey[] = [];
  for (let i = 0; i < edkCount; i++) {
    const providerId = strictUtf8(c.take(c.u16()), 'provider id');
    const providerInfoBytes = Buffer.from(c.take(c.u16()));
    const ciphertext = Buffer.from(c.take(c.u16()));
    encryptedDataKeys.push({ providerId, providerInfo: providerInfoBytes.toString('utf8'), providerInfoBytes, ciphertext });
  }
  const contentType = c.u8();
  if (contentType !== CONTENT_TYPE_FRAMED) throw new BackupFormatError(`content type ${contentType} is not accepted (only framed, 2)`);
  const frameLength = c.u32();
  if (frameLength === 0) throw new BackupFormatError('frame length 0');
  const commitment = Buffer.from(c.take(COMMITMENT_BYTES));
  const bodyEnd = c.at;
  const authTag = Buffer.from(c.take(TAG_BYTES));
  return {
    suiteId, messageId, encryptionContext, encryptedDataKeys, frameLength, commitment,
    body: Buffer.from(buf.subarray(0, bodyEnd)), authTag, length: c.at,
  };
}

/** The 12-byte IV of frame seq: the sequence number, big-endian, left-padded with zeros. */
export function frameIv(seq: number): Buffer {
  const iv = Buffer.alloc(IV_BYTES);
  iv.writeUInt32BE(seq, IV_BYTES - 4);
  return iv;
}

/** Body AAD: messageId | "AWSKMSEncryptionClient [Final ]Frame" | seq u32 | contentLength u64. */
export function frameAad(messageId: Buffer, final: boolean, seq: number, contentLength: number): Buffer {
  const label = final ? FRAME_AAD_FINAL : FRAME_AAD_REGULAR;
  const b = Buffer.alloc(messageId.length + label.length + 12);
  let at = messageId.copy(b, 0);
  at += label.copy(b, at);
  at = b.writeUInt32BE(seq, at);
  b.writeBigUInt64BE(BigInt(contentLength), at);
  return b;
}

/** Regular frame prefix (seq | iv). */
export function regularFramePrefix(seq: number): Buffer {
  const b = Buffer.alloc(4 + IV_BYTES);
  b.writeUInt32BE(seq, 0);
  frameIv(seq).copy(b, 4);
  return b;
}

/** Final frame prefix (marker | seq | iv | contentLength). */
export function finalFramePrefix(seq: number, contentLength: number): Buffer {
  const b = Buffer.alloc(8 + IV_BYTES + 4);
  b.writeUInt32BE(FINAL_FRAME_MARKER, 0);
  b.writeUInt32BE(seq, 4);
  frameIv(seq).copy(b, 8);
  b.writeUInt32BE(contentLength, 8 + IV_BYTES);
  return b;
}
