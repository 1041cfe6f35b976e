import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { InvalidCiphertextException } from '../errors/index.js';
import {
  decodeBlob, decodeBlobView, encodeBlob, encodeBlobHeader, joinBlob, MAX_BLOB_BYTES, MIN_BLOB_BYTES, type BlobFields,
} from './ciphertext-blob.js';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';

function fields(over: Partial<BlobFields> = {}): BlobFields {
  return {
    version: 1, keyId: KEY_ID, keyVersion: 3, nonce: randomBytes(32), iv: randomBytes(12),
    ciphertext: randomBytes(20), tag: randomBytes(16), ...over,
  };
}

/** The one failure decodeBlob may report: InvalidCiphertextException with an empty message. */
function isInvalid(e: unknown): boolean {
  return e instanceof InvalidCiphertextException && e.message === '' && e.type === 'InvalidCiphertextException';
}

test('encode then decode gives back every field, and the header is everything before the ciphertext', () => {
  const f = fields();
  const blob = encodeBlob(f);
  assert.equal(blob.length, 2 + KEY_ID.length + 4 + 32 + 12 + 20 + 16);
  assert.equal(blob[0], 0x01);
  assert.equal(blob[1], KEY_ID.length);
  const d = decodeBlob(blob);
  assert.equal(d.version, 1);
  assert.equal(d.keyId, KEY_ID);
  assert.equal(d.keyVersion, 3);
  assert.deepEqual(d.nonce, f.nonce);
  assert.deepEqual(d.iv, f.iv);
  assert.deepEqual(d.ciphertext, f.ciphertext);
  assert.deepEqual(d.tag, f.tag);
  assert.deepEqual(d.header, encodeBlobHeader(f));
  assert.deepEqual(Buffer.concat([d.header, d.ciphertext, d.tag]), blob);
});

test('decoded fields are copies: changing the input afterwards changes nothing', () => {
  const blob = encodeBlob(fields());
  const d = decodeBlob(blob);
  const before = Buffer.concat([d.header, d.ciphertext, d.tag]);
  blob.fill(0xff);
  assert.deepEqual(Buffer.concat([d.header, d.ciphertext, d.tag]), before);
});

test('edge sizes: empty ciphertext, 1-byte and 255-byte key ids, key version 2^32-1', () => {
  for (const f of [
    fields({ ciphertext: Buffer.alloc(0) }),
    fields({ keyId: 'k', ciphertext: Buffer.alloc(0) }),
    fields({ keyId: 'x'.repeat(255), keyVersion: 0xffffffff }),
  ]) {
    const d = decodeBlob(encodeBlob(f));
    assert.equal(d.keyId, f.keyId);
    assert.equal(d.keyVersion, f.keyVersion);
    assert.deepEqual(d.ciphertext, f.ciphertext);
  }
  assert.equal(encodeBlob(fields({ keyId: 'k', ciphertext: Buffer.alloc(0) })).length, MIN_BLOB_BYTES);
});

test('every truncation of a blob (length 0..len-1) that breaks the layout throws InvalidCiphertextException', () => {
  const blob = encodeBlob(fields({ ciphertext: Buffer.alloc(0) })); // nothing to spare: every cut breaks it
  for (let n = 0; n < blob.length; n++) {
    assert.throws(() => decodeBlob(blob.subarray(0, n)), isInvalid, `length ${n}`);
  }
});

test('wrong version, zero-length or overlong key id, non-ASCII key id, key version 0 all look the same', () => {
  const good = encodeBlob(fields());
  const bad: Array<[string, Buffer]> = [];
  const edit = (name: string, f: (b: Buffer) => void) => { const b = Buffer.from(good); f(b); bad.push([name, b]); };
  for (const v of [0x00, 0x02, 0x80, 0xff]) edit(`version ${v}`, (b) => { b[0] = v; });
  edit('key id length 0', (b) => { b[1] = 0; });
  edit('key id length past the end', (b) => { b[1] = 255; });
  edit('non-ASCII key id', (b) => { b[2] = 0xc3; });
  edit('control character in key id', (b) => { b[5] = 0x0a; });
  edit('space in key id', (b) => { b[5] = 0x20; });
  edit('key version 0', (b) => { b.writeUInt32BE(0, 2 + KEY_ID.length); });
  bad.push(['empty', Buffer.alloc(0)]);
  const header = decodeBlob(good).header;
  bad.push(['one byte over MAX_BLOB_BYTES', Buffer.concat([header, Buffer.alloc(MAX_BLOB_BYTES + 1 - header.length)])]);
  bad.push(['not a buffer', 'AQ==' as unknown as Buffer]);
  for (const [name, b] of bad) assert.throws(() => decodeBlob(b), isInvalid, name);
});

test('the largest blob (MAX_BLOB_BYTES) decodes; encodeBlob refuses anything larger', () => {
  const headerLength = 2 + KEY_ID.length + 4 + 32 + 12;
  const fit = fields({ ciphertext: Buffer.alloc(MAX_BLOB_BYTES - headerLength - 16) });
  assert.equal(encodeBlob(fit).length, MAX_BLOB_BYTES);
  assert.equal(decodeBlob(encodeBlob(fit)).ciphertext.length, fit.ciphertext.length);
  assert.throws(() => encodeBlob(fields({ ciphertext: Buffer.alloc(MAX_BLOB_BYTES - headerLength - 15) })), RangeError);
});

test('encodeBlob refuses invalid fields with RangeError (a caller bug, not bad input)', () => {
  const cases: Array<Partial<BlobFields>> = [
    { keyId: '' }, { keyId: 'x'.repeat(256) }, { keyId: 'clé' }, { keyId: 'a b' }, { keyId: '\u0100' },
    { keyVersion: 0 }, { keyVersion: 2 ** 32 }, { keyVersion: 1.5 }, { keyVersion: -1 },
    { nonce: Buffer.alloc(31) }, { iv: Buffer.alloc(16) }, { tag: Buffer.alloc(12) },
    { version: 2 as 1 },
  ];
  for (const c of cases) assert.throws(() => encodeBlob(fields(c)), RangeError, JSON.stringify(c));
});

test('decodeBlobView parses as decodeBlob does, into views of the given bytes; decodeBlob copies', () => {
  const f = fields();
  const blob = encodeBlob(f);
  const view = decodeBlobView(blob);
  const copy = decodeBlob(blob);
  assert.deepEqual({ ...view }, { ...copy });
  blob[blob.length - 1]! ^= 1;
  assert.notDeepEqual(view.tag, copy.tag, 'the view sees the change, the copy does not');
  assert.deepEqual(copy.tag, f.tag);
  for (const bad of [Buffer.alloc(0), blob.subarray(0, MIN_BLOB_BYTES - 1), Buffer.concat([Buffer.from([2]), blob.subarray(1)]), Buffer.alloc(MAX_BLOB_BYTES + 1, 1)]) {
    assert.throws(() => decodeBlobView(bad), isInvalid);
  }
});

test('joinBlob(header, ciphertext, tag) is encodeBlob, with the same size and tag checks', () => {
  const f = fields();
  assert.deepEqual(joinBlob(encodeBlobHeader(f), f.ciphertext, f.tag), encodeBlob(f));
  assert.throws(() => joinBlob(encodeBlobHeader(f), f.ciphertext, Buffer.alloc(15)), RangeError);
  assert.throws(() => joinBlob(encodeBlobHeader(f), Buffer.alloc(MAX_BLOB_BYTES), f.tag), RangeError);
});
