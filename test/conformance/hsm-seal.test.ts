/**
 * Conformance: `--seal hsm:NAME` wraps the root key under a non-extractable key in a real SoftHSM2
 * token. The server unseals itself at start when the token is there, and refuses to start when it
 * is not (or the PIN is wrong, or another seal is configured).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, tempDir } from '../helpers/server.js';
import { skipWithoutSoftHsm, softHsm, type SoftHsm } from '../helpers/softhsm.js';

const skip = skipWithoutSoftHsm();
const NAME = 'cluster-sealsoftwaretest';

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

  it('--seal hsm:NAME must name a declared HSM, and --hsm checks its declaration', async () => {
    await assert.rejects(startServer({ args: ['--seal', `hsm:${NAME}`] }), /exited with 2.*names no HSM declared/s);
    await assert.rejects(startServer({ args: ['--hsm', `short=${hsm.module},token-label=x,pin-file=${pinFile}`] }), /exited with 2.*must look like one/s);
    await assert.rejects(startServer({ args: ['--hsm', `${NAME}=${hsm.module},token-label=x`] }), /exited with 2.*all required/s);
  });
});
