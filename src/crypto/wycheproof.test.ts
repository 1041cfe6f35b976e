/**
 * Wycheproof vectors (/work/shared/vectors/wycheproof, i.e. `../shared/vectors/wycheproof` next to
 * the repository). They are required: a missing directory fails the suite, in CI and locally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aesGcmDecrypt, aesGcmEncrypt } from './aead.js';
import { AuthenticationFailedError } from './errors.js';
import { constantTimeEqual, hmacSha256 } from './hash.js';
import { hkdfSha256 } from './hkdf.js';
import { aesKeyUnwrap, aesKeyUnwrapPad, aesKeyWrap, aesKeyWrapPad } from './keywrap.js';
import { loadWycheproof, type WycheproofVector } from '../../test/helpers/repo.js';

interface Vector extends WycheproofVector {
  [field: string]: unknown;
}
interface Group {
  tests: Vector[];
  [field: string]: unknown;
}

const load = (file: string) => loadWycheproof<Group>(file);
const hex = (v: unknown): Buffer => Buffer.from(v as string, 'hex');
const id = (file: string, t: Vector) => `${file} tcId ${t.tcId} (${t.comment || t.flags.join(',')})`;

test('Wycheproof aes_gcm_test.json (96-bit IV, 128-bit tag groups)', (ctx) => {
  let checked = 0;
  for (const g of load('aes_gcm_test.json')) {
    if (g.ivSize !== 96 || g.tagSize !== 128) continue;
    for (const t of g.tests) {
      const [key, iv, aad, msg, ct, tag] = [hex(t.key), hex(t.iv), hex(t.aad), hex(t.msg), hex(t.ct), hex(t.tag)];
      if (t.result === 'valid') {
        const out = aesGcmEncrypt(key, iv, msg, aad);
        assert.deepEqual(out.ciphertext, ct, id('aes_gcm', t));
        assert.deepEqual(out.tag, tag, id('aes_gcm', t));
        assert.deepEqual(aesGcmDecrypt(key, iv, ct, tag, aad), msg, id('aes_gcm', t));
      } else {
        assert.throws(() => aesGcmDecrypt(key, iv, ct, tag, aad), AuthenticationFailedError, id('aes_gcm', t));
      }
      checked++;
    }
  }
  ctx.diagnostic(`${checked} vectors checked`);
  assert.ok(checked > 0, 'no AES-GCM vectors checked');
  assert.ok(checked > 150, `only ${checked} AES-GCM vectors checked`);
});

test('Wycheproof hkdf_sha256_test.json', (ctx) => {
  let checked = 0;
  for (const g of load('hkdf_sha256_test.json')) {
    for (const t of g.tests) {
      const run = () => hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size as number);
      if (t.result === 'valid') assert.equal(run().toString('hex'), t.okm, id('hkdf', t));
      else assert.throws(run, RangeError, id('hkdf', t));
      checked++;
    }
  }
  ctx.diagnostic(`${checked} vectors checked`);
  assert.ok(checked > 0, 'no HKDF vectors checked');
});

/** Shared by RFC 5649 and RFC 3394: valid ones wrap and unwrap exactly, invalid ones never unwrap. */
function keywrapVectors(
  file: string, wrap: (kek: Buffer, key: Buffer) => Buffer, unwrap: (kek: Buffer, w: Buffer) => Buffer,
): number {
  let checked = 0;
  for (const g of load(file)) {
    for (const t of g.tests) {
      const [kek, msg, ct] = [hex(t.key), hex(t.msg), hex(t.ct)];
      if (t.result === 'valid') {
        assert.equal(wrap(kek, msg).toString('hex'), t.ct, id(file, t));
        assert.equal(unwrap(kek, ct).toString('hex'), t.msg, id(file, t));
      } else {
        // 'invalid', and for RFC 3394 'acceptable' (8-byte keys, n = 1): we follow RFC 3394 §2
        // strictly (n >= 2), so those are refused too.
        assert.throws(() => unwrap(kek, ct), AuthenticationFailedError, id(file, t));
        let rewrapped: Buffer | undefined;
        try {
          rewrapped = wrap(kek, msg);
        } catch (e) {
          assert.ok(e instanceof RangeError, id(file, t));
        }
        if (rewrapped) assert.notEqual(rewrapped.toString('hex'), t.ct, id(file, t));
      }
      checked++;
    }
  }
  return checked;
}

test('Wycheproof aes_kwp_test.json (RFC 5649)', (ctx) => {
  const checked = keywrapVectors('aes_kwp_test.json', aesKeyWrapPad, aesKeyUnwrapPad);
  ctx.diagnostic(`${checked} vectors checked`);
  assert.ok(checked > 0, 'no AES-KWP vectors checked');
});

test('Wycheproof aes_wrap_test.json (RFC 3394)', (ctx) => {
  const checked = keywrapVectors('aes_wrap_test.json', aesKeyWrap, aesKeyUnwrap);
  ctx.diagnostic(`${checked} vectors checked`);
  assert.ok(checked > 0, 'no AES-KW vectors checked');
});

test('Wycheproof hmac_sha256_test.json (full-length tags)', (ctx) => {
  let checked = 0;
  for (const g of load('hmac_sha256_test.json')) {
    if (g.tagSize !== 256) continue;
    for (const t of g.tests) {
      const mac = hmacSha256(hex(t.key), hex(t.msg));
      assert.equal(constantTimeEqual(mac, hex(t.tag)), t.result === 'valid', id('hmac', t));
      checked++;
    }
  }
  ctx.diagnostic(`${checked} vectors checked`);
  assert.ok(checked > 0, 'no HMAC-SHA256 vectors checked');
});
