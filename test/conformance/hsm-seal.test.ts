/**
 * Conformance: `--seal hsm:NAME` wraps the root key under a non-extractable key in a real SoftHSM2
 * token. The server unseals itself at start when the token is there, and refuses to start when it
 * is not (or the PIN is wrong, or another seal is configured).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { startServer, tempDir } from '../helpers/server.js';
import { skipWithoutSoftHsm, softHsm, type SoftHsm } from '../helpers/softhsm.js';

const skip = skipWithoutSoftHsm();
const NAME = 'cluster-sealsoftwaretest';

const SEAL_KEY_FLAGS = [
  'CKA_TOKEN', 'CKA_PRIVATE', 'CKA_SENSITIVE', 'CKA_EXTRACTABLE', 'CKA_MODIFIABLE', 'CKA_COPYABLE',
  'CKA_ENCRYPT', 'CKA_DECRYPT', 'CKA_WRAP', 'CKA_UNWRAP', 'CKA_SIGN', 'CKA_VERIFY', 'CKA_DERIVE',
] as const;

/**
 * Runs PKCS#11 calls against one SoftHSM token store in a child process (SoftHSM reads
 * SOFTHSM2_CONF once per process, and the server under test has its own): with `create`, first makes
 * a 'keyhold-seal' key from the template HsmSeal used before 950e5ab (CKA_SIGN, CKA_VERIFY and
 * CKA_COPYABLE left to the token's defaults; the rest as today). Then reads back the boolean
 * attributes of every 'keyhold-seal' key and tries C_CopyObject on it.
 */
function sealKeysIn(hsm: SoftHsm, label: string, pin: string, create = false): { flags: Record<string, number>; copy: string }[] {
  const script = `
    const P = require(${JSON.stringify(createRequire(import.meta.url).resolve('pkcs11js'))});
    const p = new P.PKCS11();
    p.load(${JSON.stringify(hsm.module)});
    p.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
    const slot = p.C_GetSlotList(true).find((x) => p.C_GetTokenInfo(x).label.trim() === ${JSON.stringify(label)});
    const s = p.C_OpenSession(slot, P.CKF_RW_SESSION | P.CKF_SERIAL_SESSION);
    p.C_Login(s, P.CKU_USER, ${JSON.stringify(pin)});
    if (${create}) p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true }, { type: P.CKA_SENSITIVE, value: true },
      { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_MODIFIABLE, value: false }, { type: P.CKA_ENCRYPT, value: true },
      { type: P.CKA_DECRYPT, value: true }, { type: P.CKA_WRAP, value: false }, { type: P.CKA_UNWRAP, value: false },
      { type: P.CKA_DERIVE, value: false }, { type: P.CKA_LABEL, value: 'keyhold-seal' }, { type: P.CKA_ID, value: Buffer.from('keyhold-seal') }]);
    p.C_FindObjectsInit(s, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_LABEL, value: 'keyhold-seal' }]);
    const found = p.C_FindObjects(s, 10);
    p.C_FindObjectsFinal(s);
    const names = ${JSON.stringify(SEAL_KEY_FLAGS)};
    const out = found.map((h) => {
      const values = p.C_GetAttributeValue(s, h, names.map((n) => ({ type: P[n] })));
      let copy;
      try {
        p.C_DestroyObject(s, p.C_CopyObject(s, h, []));
        copy = 'copied';
      } catch (e) {
        copy = 'refused';
      }
      return { flags: Object.fromEntries(names.map((n, i) => [n, values[i].value[0]])), copy };
    });
    p.C_Logout(s);
    p.C_CloseSession(s);
    p.C_Finalize();
    process.stdout.write(JSON.stringify(out));
  `;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...hsm.env } }).toString()) as { flags: Record<string, number>; copy: string }[];
}

describe('HSM seal (SoftHSM2)', { skip }, () => {
  let hsm: SoftHsm;
  let pinFile: string;
  let other: SoftHsm;
  before(() => {
    hsm = softHsm();
    ({ pinFile } = hsm.initToken('seal-token'));
    other = softHsm();
    other.initToken('seal-token'); // same label, different token: it has no seal key
  });
  after(() => {
    hsm?.cleanup();
    other?.cleanup();
  });

  const hsmArgs = (label = 'seal-token', pf = pinFile) => ['--hsm', `${NAME}=${hsm.module},token-label=${label},pin-file=${pf}`, '--seal', `hsm:${NAME}`];

  it('unseals at start from the token; a restart reads old ciphertexts; without the token, or with the wrong PIN or seal, it does not start', async () => {
    const base = tempDir();
    const dataDir = join(base, 'data');
    try {
      const s1 = await startServer({ dataDir, args: hsmArgs(), env: hsm.env });
      const kms = s1.kms();
      const key = (await kms.createKey({ Description: 'under the hsm seal' })).KeyMetadata!;
      const ct = await kms.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from('sealed by hardware') });
      assert.equal(await s1.stop(), 0);
      assert.equal(existsSync(join(dataDir, 'seal.key')), false, 'no key file is written for the HSM seal');

      const s2 = await startServer({ dataDir, args: hsmArgs(), env: hsm.env });
      const pt = await s2.kms().decrypt({ CiphertextBlob: ct.CiphertextBlob });
      assert.equal(Buffer.from(pt.Plaintext!).toString(), 'sealed by hardware');
      assert.equal(await s2.stop(), 0);

      // The token is not there (another token store): refuse to start.
      await assert.rejects(startServer({ dataDir, args: hsmArgs('no-such-token'), env: hsm.env }), /exited with [1-9].*no token labelled "no-such-token"/s);
      // A token with the same label but without the seal key (another HSM): refuse.
      await assert.rejects(startServer({ dataDir, args: hsmArgs(), env: other.env }), /exited with [1-9].*has no 'keyhold-seal' key/s);
      // Wrong PIN: refuse.
      const wrongPin = join(base, 'wrong.pin');
      writeFileSync(wrongPin, '0000000\n');
      await assert.rejects(startServer({ dataDir, args: hsmArgs('seal-token', wrongPin), env: hsm.env }), /exited with [1-9].*PIN .* is incorrect/s);
      // The file seal on an HSM-sealed store: refuse, no silent fallback.
      await assert.rejects(startServer({ dataDir, env: hsm.env }), /exited with [1-9].*sealed with the 'hsm' seal/s);

      // And it still starts with the right token afterwards (nothing was changed by the failures).
      const s3 = await startServer({ dataDir, args: hsmArgs(), env: hsm.env });
      assert.equal(Buffer.from((await s3.kms().decrypt({ CiphertextBlob: ct.CiphertextBlob })).Plaintext!).toString(), 'sealed by hardware');
      assert.equal(await s3.stop(), 0);
    } finally {
      const { rmSync } = await import('node:fs');
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('HSMs and the seal can be declared in a --config file; command-line flags win', async () => {
    const base = tempDir();
    const dataDir = join(base, 'data');
    const cfg = join(base, 'keyhold.json');
    writeFileSync(cfg, JSON.stringify({
      hsm: [{ name: NAME, module: hsm.module, tokenLabel: 'seal-token', pinFile }],
      seal: `hsm:${NAME}`,
      'log-level': 'warn',
    }));
    try {
      const s1 = await startServer({ dataDir, args: ['--config', cfg], env: hsm.env });
      const ct = await s1.kms().encrypt({ KeyId: (await s1.kms().createKey({})).KeyMetadata!.KeyId!, Plaintext: Buffer.from('cfg') });
      assert.equal(await s1.stop(), 0);
      assert.equal(existsSync(join(dataDir, 'seal.key')), false);
      // The same declaration as a string, through the environment.
      const s2 = await startServer({ dataDir, env: { ...hsm.env, KEYHOLD_CONFIG: cfg } });
      assert.equal(Buffer.from((await s2.kms().decrypt({ CiphertextBlob: ct.CiphertextBlob })).Plaintext!).toString(), 'cfg');
      assert.equal(await s2.stop(), 0);
      // --seal file on the command line wins over the file's hsm seal, and is refused for this data dir.
      await assert.rejects(startServer({ dataDir, args: ['--config', cfg, '--seal', 'file'], env: hsm.env }), /exited with [1-9].*sealed with the 'hsm' seal/s);
      writeFileSync(cfg, JSON.stringify({ hsm: [{ name: NAME }] }));
      await assert.rejects(startServer({ dataDir, args: ['--config', cfg], env: hsm.env }), /exited with 2.*needs string name, module, tokenLabel and pinFile/s);
      writeFileSync(cfg, JSON.stringify({ 'no-such-flag': 1 }));
      await assert.rejects(startServer({ dataDir, args: ['--config', cfg], env: hsm.env }), /exited with [1-9].*no-such-flag/s);
    } finally {
      const { rmSync } = await import('node:fs');
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('the seal key the server makes only encrypts and decrypts: not SIGN, VERIFY, WRAP, UNWRAP or DERIVE; not extractable, modifiable or copyable', async () => {
    const token = softHsm();
    const base = tempDir();
    try {
      const { label, pin, pinFile: pf } = token.initToken('fresh-seal');
      const s = await startServer({ dataDir: join(base, 'data'), args: ['--hsm', `${NAME}=${token.module},token-label=${label},pin-file=${pf}`, '--seal', `hsm:${NAME}`], env: token.env });
      assert.equal(await s.stop(), 0);
      const keys = sealKeysIn(token, label, pin);
      assert.equal(keys.length, 1, 'one keyhold-seal key');
      assert.deepEqual(keys[0]!.flags, {
        CKA_TOKEN: 1, CKA_PRIVATE: 1, CKA_SENSITIVE: 1, CKA_EXTRACTABLE: 0, CKA_MODIFIABLE: 0, CKA_COPYABLE: 0,
        CKA_ENCRYPT: 1, CKA_DECRYPT: 1, CKA_WRAP: 0, CKA_UNWRAP: 0, CKA_SIGN: 0, CKA_VERIFY: 0, CKA_DERIVE: 0,
      });
      assert.equal(keys[0]!.copy, 'refused', 'C_CopyObject of the seal key is refused');
    } finally {
      token.cleanup();
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('a seal key made by the older template keeps its attributes (SIGN, VERIFY capable, copyable) and still seals and unseals', async () => {
    const token = softHsm();
    const base = tempDir();
    const dataDir = join(base, 'data');
    try {
      const { label, pin, pinFile: pf } = token.initToken('old-seal');
      const before = sealKeysIn(token, label, pin, true);
      assert.equal(before.length, 1);
      // SoftHSM's defaults for what the old template left out: this is what such tokens hold.
      assert.deepEqual(before[0]!.flags, {
        CKA_TOKEN: 1, CKA_PRIVATE: 1, CKA_SENSITIVE: 1, CKA_EXTRACTABLE: 0, CKA_MODIFIABLE: 0, CKA_COPYABLE: 1,
        CKA_ENCRYPT: 1, CKA_DECRYPT: 1, CKA_WRAP: 0, CKA_UNWRAP: 0, CKA_SIGN: 1, CKA_VERIFY: 1, CKA_DERIVE: 0,
      });
      assert.equal(before[0]!.copy, 'copied', 'such a key can be copied');
      const args = ['--hsm', `${NAME}=${token.module},token-label=${label},pin-file=${pf}`, '--seal', `hsm:${NAME}`];
      const s1 = await startServer({ dataDir, args, env: token.env });
      const kms = s1.kms();
      const ct = await kms.encrypt({ KeyId: (await kms.createKey({})).KeyMetadata!.KeyId!, Plaintext: Buffer.from('old seal key') });
      assert.equal(await s1.stop(), 0);
      const s2 = await startServer({ dataDir, args, env: token.env });
      assert.equal(Buffer.from((await s2.kms().decrypt({ CiphertextBlob: ct.CiphertextBlob })).Plaintext!).toString(), 'old seal key');
      assert.equal(await s2.stop(), 0);
      const after = sealKeysIn(token, label, pin);
      assert.equal(after.length, 1, 'the existing key was used, no second one made');
      assert.deepEqual(after[0]!.flags, before[0]!.flags, 'its attributes are unchanged');
    } finally {
      token.cleanup();
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('--seal hsm:NAME must name a declared HSM, and --hsm checks its declaration', async () => {
    await assert.rejects(startServer({ args: ['--seal', `hsm:${NAME}`] }), /exited with 2.*names no HSM declared/s);
    await assert.rejects(startServer({ args: ['--hsm', `short=${hsm.module},token-label=x,pin-file=${pinFile}`] }), /exited with 2.*must look like one/s);
    await assert.rejects(startServer({ args: ['--hsm', `${NAME}=${hsm.module},token-label=x`] }), /exited with 2.*all required/s);
  });
});
