import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { SecretBytes } from '../crypto/index.js';
import { decodeBlob, MAX_BLOB_BYTES } from '../format/index.js';
import { InvalidCiphertextException } from '../errors/index.js';
import type { EncryptionContext } from '../types/index.js';
import { openBlobV1, sealBlobV1 } from './blob-crypto.js';
import { readRepoJson } from '../../test/helpers/repo.js';

const REF = { keyId: '1234abcd-12ab-34cd-56ef-1234567890ab', keyVersion: 4 };
const CTX = { tenant: 'acme', purpose: 'backup' };

/** The only failure openBlobV1 may report for a bad blob: InvalidCiphertextException, no message. */
function isInvalid(e: unknown): boolean {
  return e instanceof InvalidCiphertextException && e.message === '';
}

const open = (key: SecretBytes, blob: Buffer, ctx: EncryptionContext | undefined) => openBlobV1(key, decodeBlob(blob), ctx);

test('round trip: what sealBlobV1 writes, openBlobV1 reads back', () => {
  const key = SecretBytes.random(32);
  for (const [pt, ctx] of [
    [Buffer.from('hello'), CTX], [Buffer.alloc(0), undefined], [randomBytes(4096), { a: '' }],
  ] as const) {
    const blob = sealBlobV1(key, REF, pt, ctx);
    const parsed = decodeBlob(blob);
    assert.equal(parsed.keyId, REF.keyId);
    assert.equal(parsed.keyVersion, REF.keyVersion);
    assert.equal(parsed.ciphertext.length, pt.length);
    assert.deepEqual(openBlobV1(key, parsed, ctx), pt);
  }
});

test('each seal draws a fresh nonce and IV', () => {
  const key = SecretBytes.random(32);
  const a = decodeBlob(sealBlobV1(key, REF, Buffer.from('same'), CTX));
  const b = decodeBlob(sealBlobV1(key, REF, Buffer.from('same'), CTX));
  assert.notDeepEqual(a.nonce, b.nonce);
  assert.notDeepEqual(a.iv, b.iv);
  assert.notDeepEqual(a.ciphertext, b.ciphertext);
});

test('the scheme is exactly the documented one (checked with raw node:crypto calls)', () => {
  const backing = randomBytes(32);
  const nonce = randomBytes(32);
  const iv = randomBytes(12);
  const pt = Buffer.from('documented scheme');
  const id = Buffer.from(REF.keyId, 'ascii');
  const version = Buffer.alloc(4);
  version.writeUInt32BE(REF.keyVersion);
  const header = Buffer.concat([Buffer.from([1, id.length]), id, version, nonce, iv]);
  // canonical {purpose: 'backup', tenant: 'acme'}: count 2, pairs sorted by key
  const pair = (k: string, v: string) => {
    const kb = Buffer.from(k), vb = Buffer.from(v), l = Buffer.alloc(4);
    l.writeUInt16BE(kb.length, 0);
    l.writeUInt16BE(vb.length, 2);
    return Buffer.concat([l.subarray(0, 2), kb, l.subarray(2), vb]);
  };
  const ctxBytes = Buffer.concat([Buffer.from([0, 2]), pair('purpose', 'backup'), pair('tenant', 'acme')]);
  const k = Buffer.from(hkdfSync('sha256', backing, nonce, Buffer.from('keyhold/blob/v1'), 32));
  const gcm = createCipheriv('aes-256-gcm', k, iv, { authTagLength: 16 });
  gcm.setAAD(Buffer.concat([header, ctxBytes]));
  const ct = Buffer.concat([gcm.update(pt), gcm.final()]);
  const expected = Buffer.concat([header, ct, gcm.getAuthTag()]);

  assert.deepEqual(sealBlobV1(SecretBytes.from(backing), REF, pt, CTX, { nonce, iv }), expected);
});

test('every truncation (length 0..len-1) throws InvalidCiphertextException', () => {
  const key = SecretBytes.random(32);
  const blob = sealBlobV1(key, REF, Buffer.from('truncate me'), CTX);
  for (let n = 0; n < blob.length; n++) {
    assert.throws(() => open(key, blob.subarray(0, n), CTX), isInvalid, `length ${n}`);
  }
});

test('flipping any single bit of a blob makes it fail with InvalidCiphertextException', () => {
  const key = SecretBytes.random(32);
  const blob = sealBlobV1(key, REF, Buffer.from('flip every bit'), CTX);
  let flips = 0;
  for (let i = 0; i < blob.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const bad = Buffer.from(blob);
      bad[i] = (bad[i] as number) ^ (1 << bit);
      assert.throws(() => open(key, bad, CTX), isInvalid, `byte ${i} bit ${bit}`);
      flips++;
    }
  }
  assert.equal(flips, blob.length * 8);
  assert.deepEqual(open(key, blob, CTX), Buffer.from('flip every bit')); // the original still opens
});

test('the encryption context must match: wrong context fails, reordered context succeeds', () => {
  const key = SecretBytes.random(32);
  const blob = sealBlobV1(key, REF, Buffer.from('ctx'), { a: '1', b: '2', c: '3' });
  assert.deepEqual(open(key, blob, { c: '3', a: '1', b: '2' }), Buffer.from('ctx'));
  const wrongContexts: Array<EncryptionContext | undefined> = [
    undefined, {}, { a: '1', b: '2' }, { a: '1', b: '2', c: '3', d: '4' }, { a: '1', b: '2', c: '4' },
    { a: '1', b: '2', C: '3' }, { a: '1', b: '23', c: '' },
  ];
  for (const wrong of wrongContexts) {
    assert.throws(() => open(key, blob, wrong), isInvalid, JSON.stringify(wrong));
  }
  // No context and the empty context are the same thing (both encode as 00 00).
  const none = sealBlobV1(key, REF, Buffer.from('none'), undefined);
  assert.deepEqual(open(key, none, {}), Buffer.from('none'));
  assert.throws(() => open(key, none, { a: '' }), isInvalid);
});

test('the wrong backing key fails with InvalidCiphertextException', () => {
  const blob = sealBlobV1(SecretBytes.random(32), REF, Buffer.from('x'), CTX);
  assert.throws(() => open(SecretBytes.random(32), blob, CTX), isInvalid);
});

test('a parsed blob whose fields and header disagree is refused', () => {
  const key = SecretBytes.random(32);
  const parsed = decodeBlob(sealBlobV1(key, REF, Buffer.from('x'), CTX));
  assert.throws(() => openBlobV1(key, { ...parsed, keyVersion: 5 }, CTX), isInvalid);
  assert.throws(() => openBlobV1(key, { ...parsed, keyVersion: 0 }, CTX), isInvalid);
  assert.throws(() => openBlobV1(key, { ...parsed, iv: Buffer.alloc(12) }, CTX), isInvalid);
  assert.throws(() => openBlobV1(key, { ...parsed, version: 2 as 1 }, CTX), isInvalid);
});

test('a 4096-byte plaintext (the KMS Encrypt maximum) gives a blob of at most 6144 bytes', () => {
  const key = SecretBytes.random(32);
  for (const keyId of [REF.keyId, 'k'.repeat(255)]) {
    const ref = { keyId, keyVersion: 0xffffffff };
    const pt = randomBytes(4096);
    const blob = sealBlobV1(key, ref, pt, CTX);
    assert.ok(blob.length <= MAX_BLOB_BYTES, `${blob.length} bytes`);
    assert.deepEqual(open(key, blob, CTX), pt);
  }
});

test('invalid arguments to seal are refused before anything is encrypted', () => {
  const key = SecretBytes.random(32);
  assert.throws(() => sealBlobV1(SecretBytes.random(16), REF, Buffer.from('x'), CTX), RangeError);
  assert.throws(() => sealBlobV1(key, { keyId: 'no spaces', keyVersion: 1 }, Buffer.from('x'), CTX), RangeError);
  assert.throws(() => sealBlobV1(key, { ...REF, keyVersion: 0 }, Buffer.from('x'), CTX), RangeError);
  assert.throws(() => sealBlobV1(key, REF, Buffer.from('x'), CTX, { nonce: Buffer.alloc(16), iv: Buffer.alloc(12) }), RangeError);
  assert.throws(() => sealBlobV1(key, REF, Buffer.alloc(MAX_BLOB_BYTES), CTX), RangeError);
});

// --- Frozen vectors -------------------------------------------------------------------------------

interface FrozenVector {
  name: string;
  backingKey: string;
  keyId: string;
  keyVersion: number;
  nonce: string;
  iv: string;
  encryptionContext: Record<string, string> | null;
  plaintext: string;
  blob: string;
}


test('frozen vectors test/vectors/ciphertext-blob-v1.json: seal reproduces each blob byte for byte, open returns the plaintext', (t) => {
  const doc = readRepoJson<{ description: string; vectors: FrozenVector[] }>('test/vectors/ciphertext-blob-v1.json');
  assert.match(doc.description, /must never change/);
  assert.ok(doc.vectors.length > 0);
  for (const v of doc.vectors) {
    const key = SecretBytes.from(Buffer.from(v.backingKey, 'hex'));
    const ctx = v.encryptionContext ?? undefined;
    const fixed = { nonce: Buffer.from(v.nonce, 'hex'), iv: Buffer.from(v.iv, 'hex') };
    const blob = sealBlobV1(key, { keyId: v.keyId, keyVersion: v.keyVersion }, Buffer.from(v.plaintext, 'hex'), ctx, fixed);
    assert.equal(blob.toString('hex'), v.blob, v.name);
    const parsed = decodeBlob(Buffer.from(v.blob, 'hex'));
    assert.equal(parsed.keyId, v.keyId, v.name);
    assert.equal(parsed.keyVersion, v.keyVersion, v.name);
    assert.equal(openBlobV1(key, parsed, ctx).toString('hex'), v.plaintext, v.name);
  }
  t.diagnostic(`${doc.vectors.length} frozen vectors checked`);
});
