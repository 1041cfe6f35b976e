import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { decodeBlob } from '../../format/index.js';
import { InvalidCiphertextException, KeyUnavailableException } from '../../errors/index.js';
import { SecretBytes } from '../../crypto/index.js';
import { SealError } from '../../barrier/index.js';
import type { StorageWriter } from '../../barrier/index.js';
import { GuardedKeyStore } from '../guarded-keystore.js';
import { RoutingKeyStore } from '../routing-keystore.js';
import type { KeyStore, MaterialRef } from '../keystore.js';
import { skipWithoutSoftHsm, softHsm, type SoftHsm } from '../../../test/helpers/softhsm.js';
import { HsmPool } from './hsm-pool.js';
import { HsmSeal } from './hsm-seal.js';
import { P } from './token.js';

// The PKCS#11 key store against a real SoftHSM2 token in a temp dir (contract: STYLE.md §11).
const skip = skipWithoutSoftHsm();
const NO_WRITES = {} as StorageWriter;
const HSM = 'cluster-softhsmunitaa';

describe('Pkcs11KeyStore on SoftHSM2', { skip }, () => {
  let hsm: SoftHsm;
  let pool: HsmPool;
  let store: KeyStore;
  let token: { label: string; pin: string };
  const failures: unknown[] = [];

  before(() => {
    hsm = softHsm();
    process.env.SOFTHSM2_CONF = hsm.conf; // read by C_Initialize, once per process
    token = hsm.initToken('unit-a');
    hsm.initToken('unit-b', '7654321');
    hsm.initToken('unit-d', '1111111'); // SoftHSM lists only the tokens present at C_Initialize
    pool = new HsmPool([
      { name: HSM, modulePath: hsm.module, tokenLabel: 'unit-a', pin: token.pin },
      { name: 'cluster-softhsmunitbb', modulePath: hsm.module, tokenLabel: 'unit-b', pin: 'wrong-pin' },
      { name: 'cluster-softhsmunitcc', modulePath: hsm.module, tokenLabel: 'no-such-token', pin: '1234567' },
    ], (_n, e) => failures.push(e));
    store = new GuardedKeyStore(new RoutingKeyStore(
      { name: 'software-must-not-be-used' } as unknown as KeyStore,
      (name) => pool.keyStore(name),
    ));
  });
  after(() => {
    pool?.close();
    hsm?.cleanup();
  });

  const newRef = (): MaterialRef => ({ keyId: randomUUID(), keyVersion: 1, hsm: HSM });

  test('generate, encrypt, decrypt: the blob keeps the version-1 layout and binds the context', async () => {
    const ref = newRef();
    await store.generate(ref, NO_WRITES);
    const pt = randomBytes(4096);
    const blob = await store.encrypt(ref, pt, { tenant: 'a' });
    assert.equal(blob.length, 1 + 1 + 36 + 4 + 32 + 12 + 4096 + 16, 'the software blob layout: header, ciphertext, tag');
    const parsed = decodeBlob(blob);
    assert.equal(parsed.keyId, ref.keyId);
    assert.equal(parsed.keyVersion, 1);
    assert.deepEqual(await store.decrypt(ref, parsed, { tenant: 'a' }), pt);
    await assert.rejects(store.decrypt(ref, parsed, { tenant: 'b' }), (e) => e instanceof InvalidCiphertextException && e.message === '');
    await assert.rejects(store.decrypt(ref, parsed, undefined), InvalidCiphertextException);
    for (const i of [0, 10, blob.length - 20, blob.length - 1]) {
      const bad = Buffer.from(blob);
      bad[i]! ^= 0x01;
      let parsedBad;
      try {
        parsedBad = decodeBlob(bad);
      } catch {
        continue;
      }
      if (parsedBad.keyId !== ref.keyId || parsedBad.keyVersion !== ref.keyVersion) continue;
      await assert.rejects(store.decrypt(ref, parsedBad, { tenant: 'a' }), InvalidCiphertextException, `flip at ${i}`);
    }
  });

  test('two encryptions of one plaintext differ (fresh nonce and IV), and another key cannot open them', async () => {
    const a = newRef();
    const b = newRef();
    await store.generate(a, NO_WRITES);
    await store.generate(b, NO_WRITES);
    const pt = Buffer.from('same');
    const x = await store.encrypt(a, pt, undefined);
    const y = await store.encrypt(a, pt, undefined);
    assert.notDeepEqual(x, y);
    // b's material under a's blob header: the guard refuses before the token is asked
    await assert.rejects(store.decrypt(b, decodeBlob(x), undefined), InvalidCiphertextException);
  });

  test('the backing key is a sensitive, non-extractable token object usable only for derivation', async () => {
    const ref = newRef();
    await store.generate(ref, NO_WRITES);
    const p = P();
    const t = pool.token(HSM);
    t.withSession((lib, s) => {
      lib.C_FindObjectsInit(s, [{ type: p.CKA_LABEL, value: `keyhold/${ref.keyId}/1` }]);
      const [h] = lib.C_FindObjects(s, 2);
      lib.C_FindObjectsFinal(s);
      assert.ok(h, 'object found by label');
      const attrs = lib.C_GetAttributeValue(s, h, [
        { type: p.CKA_TOKEN }, { type: p.CKA_SENSITIVE }, { type: p.CKA_EXTRACTABLE }, { type: p.CKA_ENCRYPT }, { type: p.CKA_DERIVE },
      ]).map((a) => (a.value as Buffer)[0]);
      assert.deepEqual(attrs, [1, 1, 0, 0, 1]);
      assert.throws(() => lib.C_GetAttributeValue(s, h, [{ type: p.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
    });
  });

  /** The boolean attributes of the one secret-key object labelled `label` (1 or 0 each). */
  function flagsOf(label: string): Record<string, number> {
    const p = P();
    const names = ['CKA_TOKEN', 'CKA_PRIVATE', 'CKA_SENSITIVE', 'CKA_EXTRACTABLE', 'CKA_MODIFIABLE', 'CKA_ENCRYPT', 'CKA_DECRYPT', 'CKA_DERIVE', 'CKA_WRAP', 'CKA_UNWRAP', 'CKA_SIGN', 'CKA_VERIFY', 'CKA_COPYABLE'] as const;
    return pool.token(HSM).withSession((lib, s) => {
      lib.C_FindObjectsInit(s, [{ type: p.CKA_CLASS, value: p.CKO_SECRET_KEY }, { type: p.CKA_LABEL, value: label }]);
      const found = lib.C_FindObjects(s, 2);
      lib.C_FindObjectsFinal(s);
      assert.equal(found.length, 1, `one object labelled ${label}`);
      assert.throws(() => lib.C_GetAttributeValue(s, found[0]!, [{ type: p.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
      const values = lib.C_GetAttributeValue(s, found[0]!, names.map((n) => ({ type: p[n] })));
      return Object.fromEntries(names.map((n, i) => [n, (values[i]!.value as Buffer)[0]!]));
    });
  }
  const NEVER_LEAVES = { CKA_TOKEN: 1, CKA_PRIVATE: 1, CKA_SENSITIVE: 1, CKA_EXTRACTABLE: 0, CKA_MODIFIABLE: 0, CKA_WRAP: 0, CKA_UNWRAP: 0, CKA_SIGN: 0, CKA_VERIFY: 0, CKA_COPYABLE: 0 };

  test('backing key and seal key templates: private, sensitive, non-extractable, unmodifiable, each with only its own usage', async () => {
    const ref = newRef();
    await store.generate(ref, NO_WRITES);
    assert.deepEqual(flagsOf(`keyhold/${ref.keyId}/1`), { ...NEVER_LEAVES, CKA_ENCRYPT: 0, CKA_DECRYPT: 0, CKA_DERIVE: 1 });
    await new HsmSeal(pool.token(HSM)).wrap(SecretBytes.from(randomBytes(32)));
    assert.deepEqual(flagsOf('keyhold-seal'), { ...NEVER_LEAVES, CKA_ENCRYPT: 1, CKA_DECRYPT: 1, CKA_DERIVE: 0 });
  });

  test('GenerateDataKey draws the data key in the token and encrypts it there', async () => {
    const ref = newRef();
    await store.generate(ref, NO_WRITES);
    const { plaintext, blob } = await store.generateDataKey(ref, 32, { k: 'v' });
    assert.equal(plaintext.length, 32);
    assert.deepEqual(await store.decrypt(ref, decodeBlob(blob), { k: 'v' }), plaintext);
  });

  test('material destroyed in the token: KeyUnavailableException, never a software fallback', async () => {
    const ref = newRef();
    await store.generate(ref, NO_WRITES);
    const blob = decodeBlob(await store.encrypt(ref, Buffer.from('x'), undefined));
    await store.destroy(ref, NO_WRITES);
    await assert.rejects(store.encrypt(ref, Buffer.from('x'), undefined), KeyUnavailableException);
    await assert.rejects(store.decrypt(ref, blob, undefined), KeyUnavailableException);
  });

  test('sessions are reopened after the token closed them', async () => {
    const ref = newRef();
    await store.generate(ref, NO_WRITES);
    const t = pool.token(HSM);
    const slot = t.lib.C_GetSlotList(true).find((s) => t.lib.C_GetTokenInfo(s).label.trim() === 'unit-a')!;
    t.lib.C_CloseAllSessions(slot); // every session, and with them the login, are gone
    const blob = await store.encrypt(ref, Buffer.from('after reopen'), undefined);
    assert.equal((await store.decrypt(ref, decodeBlob(blob), undefined)).toString(), 'after reopen');
  });

  test('concurrent calls on one token (OS locking): 300 round trips in parallel', async () => {
    const ref = newRef();
    await store.generate(ref, NO_WRITES);
    const results = await Promise.all(Array.from({ length: 300 }, async (_, i) => {
      const pt = Buffer.from(`message ${i}`);
      const blob = await store.encrypt(ref, pt, { i: String(i) });
      return (await store.decrypt(ref, decodeBlob(blob), { i: String(i) })).equals(pt);
    }));
    assert.ok(results.every(Boolean));
  });

  test('connection checks name the AWS ConnectionErrorCode', async () => {
    assert.equal(await pool.check(HSM), undefined);
    assert.equal(await pool.check(HSM, token.pin), undefined);
    assert.equal(await pool.check(HSM, 'not-the-pin'), 'INVALID_CREDENTIALS');
    assert.equal(await pool.check('cluster-softhsmunitbb'), 'INVALID_CREDENTIALS', 'wrong PIN in the declaration');
    assert.equal(await pool.check('cluster-softhsmunitcc'), 'NETWORK_ERRORS', 'no such token');
    assert.equal(await pool.check('cluster-undeclaredxx'), 'CLUSTER_NOT_FOUND');
    const ref = { ...newRef(), hsm: 'cluster-softhsmunitcc' };
    await assert.rejects(store.generate(ref, NO_WRITES), KeyUnavailableException);
  });

  test('HsmSeal wraps a root key under a token key and unwraps it; another token cannot', async () => {
    const seal = new HsmSeal(pool.token(HSM));
    const root = SecretBytes.random(32);
    const wrapped = await seal.wrap(root);
    assert.equal(wrapped.length, 1 + 12 + 32 + 16);
    assert.ok(!wrapped.includes(root.insecureExpose()));
    assert.ok((await seal.unwrap(wrapped)).equals(root));
    const tampered = Buffer.from(wrapped);
    tampered[20]! ^= 1;
    await assert.rejects(seal.unwrap(tampered), SealError);
    const other = new HsmPool([{ name: 'cluster-softhsmunitdd', modulePath: hsm.module, tokenLabel: 'unit-d', pin: '1111111' }]);
    try {
      await assert.rejects(new HsmSeal(other.token('cluster-softhsmunitdd')).unwrap(wrapped), SealError);
    } finally {
      other.close();
    }
  });
});
