import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { aesGcmDecrypt, aesGcmEncrypt } from './aead.js';
import { AuthenticationFailedError } from './errors.js';

for (const keyBytes of [16, 24, 32]) {
  test(`AES-${keyBytes * 8}-GCM round trip; any altered input fails with AuthenticationFailedError`, () => {
    const key = randomBytes(keyBytes);
    const iv = randomBytes(12);
    const aad = Buffer.from('associated');
    const pt = Buffer.from('attack at dawn');
    const { ciphertext, tag } = aesGcmEncrypt(key, iv, pt, aad);
    assert.equal(tag.length, 16);
    assert.equal(ciphertext.length, pt.length);
    assert.deepEqual(aesGcmDecrypt(key, iv, ciphertext, tag, aad), pt);

    const flip = (b: Buffer, i = 0) => { const c = Buffer.from(b); c[i] = (c[i] as number) ^ 1; return c; };
    const fails = (f: () => unknown) => assert.throws(f, (e: unknown) => e instanceof AuthenticationFailedError && e.message === 'authentication failed');
    fails(() => aesGcmDecrypt(key, iv, flip(ciphertext), tag, aad));
    fails(() => aesGcmDecrypt(key, iv, ciphertext, flip(tag, 15), aad));
    fails(() => aesGcmDecrypt(key, flip(iv), ciphertext, tag, aad));
    fails(() => aesGcmDecrypt(key, iv, ciphertext, tag, flip(aad)));
    fails(() => aesGcmDecrypt(randomBytes(keyBytes), iv, ciphertext, tag, aad));
    fails(() => aesGcmDecrypt(key, iv, ciphertext, tag.subarray(0, 12), aad)); // truncated tag
    fails(() => aesGcmDecrypt(key, iv, ciphertext, Buffer.alloc(0), aad));
    fails(() => aesGcmDecrypt(key, randomBytes(16), ciphertext, tag, aad));
  });
}

test('empty plaintext and empty AAD work', () => {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const { ciphertext, tag } = aesGcmEncrypt(key, iv, Buffer.alloc(0), Buffer.alloc(0));
  assert.equal(ciphertext.length, 0);
  assert.deepEqual(aesGcmDecrypt(key, iv, ciphertext, tag, Buffer.alloc(0)), Buffer.alloc(0));
});

test('wrong key or IV sizes on encrypt are programming errors (RangeError)', () => {
  assert.throws(() => aesGcmEncrypt(randomBytes(31), randomBytes(12), Buffer.alloc(1), Buffer.alloc(0)), RangeError);
  assert.throws(() => aesGcmEncrypt(randomBytes(32), randomBytes(16), Buffer.alloc(1), Buffer.alloc(0)), RangeError);
  assert.throws(() => aesGcmDecrypt(randomBytes(20), randomBytes(12), Buffer.alloc(1), Buffer.alloc(16), Buffer.alloc(0)), RangeError);
});
