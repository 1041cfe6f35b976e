/**
 * Conformance: HSM-backed keys and the HSM seal under `--workers 2`. Each worker process loads the
 * PKCS#11 module and logs in to the SoftHSM2 token itself; keys made by one worker are used by the
 * other; connecting or disconnecting the custom key store through one worker holds for both.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rejects } from '../helpers/assert.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { skipWithoutSoftHsm, softHsm, type SoftHsm } from '../helpers/softhsm.js';

const skip = skipWithoutSoftHsm();
const NAME = 'cluster-softhsmworkers';

describe('HSM key store with --workers 2', { skip }, () => {
  let hsm: SoftHsm;
  let s: TestServer;
  let pin: string;
  before(async () => {
    hsm = softHsm();
    const t = hsm.initToken('workers', 'workers-pin');
    pin = t.pin;
    s = await startServer({
      args: ['--workers', '2', '--hsm', `${NAME}=${hsm.module},token-label=workers,pin-file=${t.pinFile}`, '--seal', `hsm:${NAME}`],
      env: hsm.env,
    });
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
    hsm?.cleanup();
  });

  it('keys made by one worker work on the other; the store state is shared', async (t) => {
    t.after(() => { if (process.env.DEBUG_HSM) console.log(s.stderr); });
    const workers = readFileSync(`/proc/${s.proc.pid}/task/${s.proc.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    assert.equal(workers.length, 2, s.stderr);
    const clients = Array.from({ length: 6 }, () => s.kms());
    const id = (await clients[0]!.createCustomKeyStore({
      CustomKeyStoreName: 'workers', CloudHsmClusterId: NAME, TrustAnchorCertificate: readFileSync(s.caFile!, 'utf8'), KeyStorePassword: pin,
    })).CustomKeyStoreId!;
    await clients[1]!.connectCustomKeyStore({ CustomKeyStoreId: id });
    const keys: string[] = [];
    for (let i = 0; i < 4; i++) keys.push((await clients[i]!.createKey({ CustomKeyStoreId: id, Origin: 'AWS_CLOUDHSM' })).KeyMetadata!.KeyId!);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < keys.length; i++) {
        const enc = await clients[(i + round) % 6]!.encrypt({ KeyId: keys[i]!, Plaintext: Buffer.from(`r${round} k${i}`), EncryptionContext: { i: String(i) } });
        const dec = await clients[(i + round + 1) % 6]!.decrypt({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { i: String(i) } });
        assert.equal(Buffer.from(dec.Plaintext!).toString(), `r${round} k${i}`);
        const dk = await clients[(i + round + 2) % 6]!.generateDataKey({ KeyId: keys[i]!, KeySpec: 'AES_256' });
        const back = await clients[(i + round + 3) % 6]!.decrypt({ CiphertextBlob: dk.CiphertextBlob });
        assert.deepEqual(Buffer.from(back.Plaintext!), Buffer.from(dk.Plaintext!));
      }
    }
    // Concurrent load from all clients at once.
    const all = await Promise.all(Array.from({ length: 60 }, async (_, n) => {
      const c = clients[n % 6]!;
      const enc = await c.encrypt({ KeyId: keys[n % 4]!, Plaintext: Buffer.from(`p${n}`) });
      const dec = await clients[(n + 1) % 6]!.decrypt({ CiphertextBlob: enc.CiphertextBlob });
      return Buffer.from(dec.Plaintext!).toString() === `p${n}`;
    }));
    assert.ok(all.every(Boolean));

    await clients[2]!.disconnectCustomKeyStore({ CustomKeyStoreId: id });
    for (const c of clients) await rejects(c.encrypt({ KeyId: keys[0]!, Plaintext: Buffer.from('x') }), 'KMSInvalidStateException');
    await clients[3]!.connectCustomKeyStore({ CustomKeyStoreId: id });
    for (const c of clients) await c.encrypt({ KeyId: keys[0]!, Plaintext: Buffer.from('x') });
  });
});
