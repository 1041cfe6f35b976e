/**
 * Wycheproof RSA-OAEP (SHA-256, MGF1-SHA-256; 2048, 3072 and 4096-bit keys) through the BYOK import
 * unwrap path: unwrapImportedKeyMaterial is exactly what ImportKeyMaterial calls with the token's
 * private key. Valid vectors (empty label) must unwrap to their message, also as the RSA part of
 * RSA_AES_KEY_WRAP_SHA_256; every invalid one (bad padding, wrong label, bad ciphertext) must fail
 * with one and the same error. The vectors are required: a missing directory fails, in CI and locally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createPrivateKey, randomBytes } from 'node:crypto';
import { AuthenticationFailedError } from './errors.js';
import { rsaOaepDecrypt, unwrapImportedKeyMaterial } from './import-unwrap.js';
import { loadWycheproof, type WycheproofVector } from '../../test/helpers/repo.js';

interface Vector extends WycheproofVector { msg: string; ct: string; label: string }
interface Group { privateKeyPkcs8: string; sha: string; mgfSha: string; tests: Vector[] }

const hex = (v: string): Buffer => Buffer.from(v, 'hex');

function kwp(kek: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([c.update(data), c.final()]);
}

for (const bits of [2048, 3072, 4096]) {
  const file = `rsa_oaep_${bits}_sha256_mgf1sha256_test.json`;
  test(`Wycheproof ${file} through the import unwrap path`, () => {
    const messages = new Set<string>();
    const counts = { valid: 0, invalid: 0, aesWrap: 0 };
    const rejected = (f: () => unknown, what: string) => {
      assert.throws(f, (e: Error) => {
        assert.ok(e instanceof AuthenticationFailedError, `${what}: ${e.name} ${e.message}`);
        messages.add(e.message);
        return true;
      }, what);
    };
    for (const g of loadWycheproof<Group>(file)) {
      assert.equal(g.sha, 'SHA-256');
      assert.equal(g.mgfSha, 'SHA-256');
      const key = createPrivateKey({ key: hex(g.privateKeyPkcs8), format: 'der', type: 'pkcs8' });
      for (const t of g.tests) {
        const what = `${file} tcId ${t.tcId} (${t.comment || t.flags.join(',')})`;
        const ct = hex(t.ct);
        const msg = hex(t.msg);
        // The import path uses the empty label, as AWS does: a vector with a label cannot be unwrapped there.
        if (t.result === 'valid' && t.label === '') {
          assert.deepEqual(rsaOaepDecrypt(key, 'sha256', ct), msg, what);
          const out = unwrapImportedKeyMaterial(key, 'RSAES_OAEP_SHA_256', ct, msg.length);
          assert.deepEqual(Buffer.from(out.insecureExpose()), msg, what);
          // The wrong length for a KMS key is the same uniform failure.
          if (msg.length !== 32) rejected(() => unwrapImportedKeyMaterial(key, 'RSAES_OAEP_SHA_256', ct, 32), what + ' as 32-byte material');
          // Wrong OAEP hash: the same failure.
          rejected(() => unwrapImportedKeyMaterial(key, 'RSAES_OAEP_SHA_1', ct, msg.length), what + ' with SHA-1');
          if (msg.length === 32) {
            // As the RSA part of RSA_AES_KEY_WRAP_SHA_256: the message is the ephemeral AES key.
            const material = randomBytes(32);
            const got = unwrapImportedKeyMaterial(key, 'RSA_AES_KEY_WRAP_SHA_256', Buffer.concat([ct, kwp(msg, material)]), 32);
            assert.deepEqual(Buffer.from(got.insecureExpose()), material, what + ' (AES key wrap)');
            counts.aesWrap++;
          }
          counts.valid++;
        } else {
          rejected(() => unwrapImportedKeyMaterial(key, 'RSAES_OAEP_SHA_256', ct, msg.length), what);
          rejected(() => unwrapImportedKeyMaterial(key, 'RSAES_OAEP_SHA_256', ct, 32), what + ' as 32-byte material');
          rejected(() => unwrapImportedKeyMaterial(key, 'RSA_AES_KEY_WRAP_SHA_256', Buffer.concat([ct, kwp(randomBytes(32), randomBytes(32))]), 32), what + ' (AES key wrap)');
          counts.invalid++;
        }
      }
    }
    assert.ok(counts.valid > 5 && counts.invalid > 5, `too few vectors checked: ${JSON.stringify(counts)}`);
    assert.equal(messages.size, 1, `unwrap failures must look alike, got: ${[...messages].join(' | ')}`);
  });
}
