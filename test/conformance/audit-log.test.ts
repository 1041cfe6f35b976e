/**
 * Conformance: the durable, hash-chained audit log (issue 5, "Record"). Every call, allowed,
 * denied or failed, authentication failures included, is one event in DATA_DIR/audit/audit.db
 * before its answer leaves; several server processes extend one chain; when the log cannot be
 * written the call fails closed (KMSInternalException, no result), /healthz says why, and the
 * server recovers by itself once writing works again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { get } from 'node:https';
import { dirname, join } from 'node:path';
import { eventHash } from '../../src/audit/audit-db.js';
import { rejects } from '../helpers/assert.js';
import { assertOneChain, readAuditEvents } from '../helpers/audit.js';
import { newCredentials, requireTool, startServer, tempDir, type TestServer } from '../helpers/server.js';

function healthz(s: TestServer): Promise<{ status: number; body: { status: string; problems?: string[] } }> {
  return new Promise((resolve, reject) => {
    get(`${s.url}/healthz`, { ca: readFileSync(s.caFile!) }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    }).on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('audit log: record', () => {
  it('records every call before answering, with who, what, which key and version, the decision and the outcome', async () => {
    const s = await startServer();
    try {
      const kms = s.kms();
      const key = (await kms.createKey({ Description: 'audited' })).KeyMetadata!;
      const plaintext = Buffer.from('the audit log never holds this plaintext');
      const ct = await kms.encrypt({ KeyId: key.KeyId!, Plaintext: plaintext, EncryptionContext: { purpose: 'audit-test' } });
      // Read straight after the answer: the event must already be committed.
      let events = readAuditEvents(s.dataDir);
      const enc = events.find((e) => e.eventName === 'Encrypt');
      assert.ok(enc, 'the Encrypt event is in the log when the answer arrives');
      assert.equal(enc.eventSource, 'kms.amazonaws.com');
      assert.equal(enc.awsRegion, 'us-east-1');
      assert.match(enc.eventId, /^[0-9a-f-]{36}$/);
      assert.equal(enc.principal!.arn, `arn:aws:iam::${s.accountId}:root`);
      assert.equal(enc.principal!.isRoot, true);
      assert.equal(enc.accessKeyId, s.credentials.accessKeyId);
      assert.deepEqual(enc.resources, [{ arn: key.Arn, keyVersion: 1 }]);
      assert.deepEqual(enc.encryptionContext, { purpose: 'audit-test' });
      assert.equal(enc.decision!.effect, 'Allow');
      assert.match(enc.tlsVersion!, /^TLSv1\.[23]$/);
      assert.equal(enc.sourceIPAddress, '127.0.0.1');
      assert.match(enc.userAgent, /aws-sdk-js/);
      assert.equal(enc.errorCode, undefined);

      await kms.decrypt({ CiphertextBlob: ct.CiphertextBlob!, EncryptionContext: { purpose: 'audit-test' } });
      await rejects(kms.decrypt({ CiphertextBlob: ct.CiphertextBlob! }), 'InvalidCiphertextException');
      // Authentication failures: unknown access key, and a known key with a wrong secret.
      const stranger = newCredentials();
      await rejects(s.kms({ credentials: stranger }).listKeys({}), 'UnrecognizedClientException');
      await rejects(s.kms({ credentials: { ...s.credentials, secretAccessKey: 'wrong-secret-wrong-secret' } }).listKeys({}), 'InvalidSignatureException');

      events = readAuditEvents(s.dataDir);
      const decrypts = events.filter((e) => e.eventName === 'Decrypt');
      assert.deepEqual(decrypts.map((e) => e.errorCode), [undefined, 'InvalidCiphertextException']);
      const authFailures = events.filter((e) => e.eventName === 'ListKeys');
      assert.deepEqual(authFailures.map((e) => [e.accessKeyId, e.errorCode]), [
        [stranger.accessKeyId, 'UnrecognizedClientException'],
        [s.credentials.accessKeyId, 'InvalidSignatureException'],
      ]);
      // Never plaintext, data keys, secrets or signatures.
      const text = JSON.stringify(events);
      assert.ok(!text.includes(plaintext.toString('base64')) && !text.includes(plaintext.toString()), 'no plaintext in the log');
      assert.ok(!text.includes(s.credentials.secretAccessKey), 'no secret in the log');
      assert.ok(!text.includes(Buffer.from(ct.CiphertextBlob!).toString('base64')), 'no ciphertext in the log');
      assert.equal(assertOneChain(s.dataDir, eventHash), events.length);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('keeps one valid chain when several server processes (--workers 3) write at once', async () => {
    const s = await startServer({ args: ['--workers', '3'] });
    try {
      const clients = Array.from({ length: 12 }, () => s.kms());
      const keyId = (await clients[0]!.createKey({})).KeyMetadata!.KeyId!;
      const perClient = 25;
      await Promise.all(clients.map(async (kms, c) => {
        for (let i = 0; i < perClient; i++) await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from(`${c}/${i}`) });
      }));
      const events = readAuditEvents(s.dataDir);
      assert.equal(events.filter((e) => e.eventName === 'Encrypt').length, clients.length * perClient);
      assert.equal(new Set(events.map((e) => e.eventId)).size, events.length, 'event ids are unique');
      assert.equal(assertOneChain(s.dataDir, eventHash), events.length);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});

describe('audit log: crash', () => {
  it('every event answered before a SIGKILL is in the log after the restart, once', async () => {
    const dataDir = join(tempDir(), 'data');
    const credentials = newCredentials();
    let s = await startServer({ dataDir, credentials });
    try {
      const kms = s.kms();
      const keyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
      const answered = new Set<string>();
      // Calls in flight when the process is killed: those answered must be in the log.
      const load = Promise.all(Array.from({ length: 8 }, async () => {
        for (;;) {
          try {
            const r = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') });
            answered.add(r.$metadata.requestId!);
          } catch {
            return;
          }
        }
      }));
      // Killed while calls keep coming, once a few have been answered (however loaded the machine).
      for (const until = Date.now() + 60_000; answered.size < 20 && Date.now() < until;) await sleep(20);
      await s.stop('SIGKILL');
      await load;
      assert.ok(answered.size > 0);
      s = await startServer({ dataDir, credentials });
      // A query moves in what the dead process left in its journal.
      await s.kms().listKeys({});
      const events = readAuditEvents(dataDir);
      const ids = events.filter((e) => e.eventName === 'Encrypt').map((e) => e.requestId);
      for (const id of answered) assert.ok(ids.includes(id), `answered Encrypt ${id} is in the log`);
      assert.equal(new Set(ids).size, ids.length, 'no event is in the log twice');
      assert.equal(assertOneChain(dataDir, eventHash), events.length);
      assert.deepEqual(readdirSync(join(dataDir, 'audit', 'intake')).filter((n) => !n.startsWith(`${s.proc.pid}-`)), [], "the dead process's journal is deleted");
    } finally {
      await s.stop();
      rmSync(dirname(dataDir), { recursive: true, force: true });
    }
  });
});

describe('audit log: fail closed', () => {
  it('on a full audit disk Encrypt fails with KMSInternalException and returns nothing, /healthz says why, and it recovers by itself', async (t) => {
    const root = tempDir();
    const dataDir = join(root, 'data');
    const auditDir = join(dataDir, 'audit');
    mkdirSync(auditDir, { recursive: true, mode: 0o700 });
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', auditDir], { stdio: 'pipe' });
      mounted = true;
    } catch {
      // not root, or no mount rights
    }
    if (!requireTool('mount -t tmpfs (root)', mounted)) {
      rmSync(root, { recursive: true, force: true });
      t.skip('needs root to mount a small tmpfs for the audit log');
      return;
    }
    let s: TestServer | undefined;
    const filler = join(auditDir, 'filler');
    try {
      s = await startServer({ dataDir });
      const kms = s.kms();
      const keyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
      assert.equal((await healthz(s)).status, 200);
      // Fill the audit filesystem to the last byte.
      const fd = openSync(filler, 'w');
      try {
        const chunk = Buffer.alloc(4096, 1);
        for (;;) writeSync(fd, chunk);
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'ENOSPC');
      } finally {
        closeSync(fd);
      }
      const before = readAuditEvents(dataDir).length;
      let failure: Error | undefined;
      let succeededWhileFull = 0;
      for (let i = 0; i < 3000 && !failure; i++) {
        try {
          const r = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('secret') });
          assert.ok(r.CiphertextBlob);
          succeededWhileFull++;
        } catch (e) {
          failure = e as Error;
        }
      }
      assert.ok(failure, 'an Encrypt fails once the audit log cannot grow');
      assert.equal(failure.name, 'KMSInternalException', String(failure));
      assert.equal((failure as { $response?: unknown; CiphertextBlob?: unknown }).CiphertextBlob, undefined);
      const h = await healthz(s);
      assert.equal(h.status, 503);
      assert.equal(h.body.status, 'unhealthy');
      assert.match(h.body.problems!.join(' '), /audit log/);
      await rejects(kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('secret') }), 'KMSInternalException');

      rmSync(filler);
      let healthy = false;
      for (let i = 0; i < 50 && !healthy; i++) {
        healthy = (await healthz(s)).status === 200;
        if (!healthy) await sleep(100);
      }
      assert.ok(healthy, '/healthz turns healthy again within 5 s without traffic');
      const ok = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('secret') });
      assert.ok(ok.CiphertextBlob);
      // Every Encrypt that got an answer while the disk filled is in the log (those answered just
      // before the disk was full may have waited in the intake journal until it had room), and so is
      // the one after recovery; the refused ones are not.
      const events = readAuditEvents(dataDir);
      assert.equal(events.length, before + succeededWhileFull + 1);
      assert.ok(events.slice(before).every((e) => e.eventName === 'Encrypt' && e.errorCode === undefined));
      assert.equal(assertOneChain(dataDir, eventHash), events.length);
    } finally {
      await s?.stop();
      if (mounted) execFileSync('umount', ['-l', auditDir]);
      rmSync(root, { recursive: true, force: true });
    }
  });
});
