import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { aesKeyUnwrap, aesKeyUnwrapPad, aesKeyWrap, aesKeyWrapPad } from './keywrap.js';
import { AuthenticationFailedError } from './errors.js';

for (const kekBytes of [16, 24, 32]) {
  test(`RFC 5649 and RFC 3394 round trips with a ${kekBytes * 8}-bit KEK`, () => {
    const kek = randomBytes(kekBytes);
    for (const n of [1, 7, 8, 9, 20, 32, 33, 512]) {
      const key = randomBytes(n);
      const wrapped = aesKeyWrapPad(kek, key);
      assert.equal(wrapped.length, 8 + Math.ceil(n / 8) * 8);
      assert.deepEqual(aesKeyUnwrapPad(kek, wrapped), key);
    }
    for (const n of [16, 24, 32, 64]) {
      const key = randomBytes(n);
      const wrapped = aesKeyWrap(kek, key);
      assert.equal(wrapped.length, n + 8);
      assert.deepEqual(aesKeyUnwrap(kek, wrapped), key);
    }
  });
}

test('unwrap refuses empty and short inputs (OpenSSL alone would return an empty key)', () => {
  const kek = randomBytes(32);
  for (const n of [0, 8, 15, 17]) {
    assert.throws(() => aesKeyUnwrapPad(kek, Buffer.alloc(n)), AuthenticationFailedError);
  }
  for (const n of [0, 8, 16, 23, 25]) {
    assert.throws(() => aesKeyUnwrap(kek, Buffer.alloc(n)), AuthenticationFailedError);
  }
});

test('wrap refuses inputs its RFC does not allow', () => {
  const kek = randomBytes(16);
  assert.throws(() => aesKeyWrapPad(kek, Buffer.alloc(0)), RangeError);
  for (const n of [0, 8, 15, 17]) assert.throws(() => aesKeyWrap(kek, Buffer.alloc(n)), RangeError);
  assert.throws(() => aesKeyWrap(randomBytes(20), Buffer.alloc(16)), RangeError);
});

test('unwrap with the wrong KEK or an altered byte fails with AuthenticationFailedError', () => {
  const kek = randomBytes(32);
  const key = randomBytes(32);
  for (const [wrap, unwrap] of [[aesKeyWrapPad, aesKeyUnwrapPad], [aesKeyWrap, aesKeyUnwrap]] as const) {
    const wrapped = wrap(kek, key);
    assert.throws(() => unwrap(randomBytes(32), wrapped), AuthenticationFailedError);
    for (let i = 0; i < wrapped.length; i++) {
      const bad = Buffer.from(wrapped);
      bad[i] = (bad[i] as number) ^ 0x80;
      assert.throws(() => unwrap(kek, bad), AuthenticationFailedError);
    }
  }
});
