import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constantTimeEqual, hmacSha256, sha256, sha256Hex } from './hash.js';

test('sha256 of "abc" (FIPS 180-2 example)', () => {
  const expected = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
  assert.equal(sha256Hex('abc'), expected);
  assert.equal(sha256(Buffer.from('abc')).toString('hex'), expected);
});

test('hmacSha256 gives 32 bytes and depends on the key', () => {
  const a = hmacSha256(Buffer.from('k1'), 'msg');
  assert.equal(a.length, 32);
  assert.equal(a.equals(hmacSha256(Buffer.from('k2'), 'msg')), false);
  assert.equal(a.equals(hmacSha256(Buffer.from('k1'), Buffer.from('msg'))), true);
});

test('constantTimeEqual: equal, different, and different lengths (false, no throw)', () => {
  assert.equal(constantTimeEqual(Buffer.from('abcd'), Buffer.from('abcd')), true);
  assert.equal(constantTimeEqual(Buffer.from('abcd'), Buffer.from('abce')), false);
  assert.equal(constantTimeEqual(Buffer.from('abcd'), Buffer.from('abc')), false);
  assert.equal(constantTimeEqual(Buffer.alloc(0), Buffer.alloc(0)), true);
});
