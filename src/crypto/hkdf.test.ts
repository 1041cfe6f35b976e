import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSha256, HKDF_SHA256_MAX_LENGTH } from './hkdf.js';

test('hkdfSha256 returns a Buffer of the asked length, different for different salts or info', () => {
  const ikm = Buffer.alloc(32, 7);
  const a = hkdfSha256(ikm, Buffer.from('salt1'), Buffer.from('info'), 32);
  assert.ok(Buffer.isBuffer(a));
  assert.equal(a.length, 32);
  assert.equal(a.equals(hkdfSha256(ikm, Buffer.from('salt2'), Buffer.from('info'), 32)), false);
  assert.equal(a.equals(hkdfSha256(ikm, Buffer.from('salt1'), Buffer.from('info2'), 32)), false);
  assert.equal(hkdfSha256(ikm, Buffer.alloc(0), Buffer.alloc(0), HKDF_SHA256_MAX_LENGTH).length, 8160);
});

test('hkdfSha256 refuses output lengths outside 1..255*32', () => {
  for (const n of [0, -1, 8161, 1.5, Number.NaN]) {
    assert.throws(() => hkdfSha256(Buffer.alloc(32), Buffer.alloc(0), Buffer.alloc(0), n), RangeError);
  }
});
