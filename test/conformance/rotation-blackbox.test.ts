/**
 * Automatic rotation against real server processes whose clock is moved with faketime (libfaketime
 * via LD_PRELOAD; it also moves Node's Date.now, checked in `before`), through the AWS SDK over HTTPS.
 *
 * Why a 90-day rotation period and +100d instead of the default 365 days and +366d: the local-CA
 * leaf certificate lives one year and the server renews it at start when within 30 days of expiry
 * (src/api/tls.ts). At +366d the server would issue a certificate whose notBefore lies a year
 * ahead of this (real-clock) test process, whose TLS verification would then refuse it (expected
 * from the code; not run). At +100d the existing certificate is kept and verification stays on.
 *
 * Signing: the server checks SigV4 dates against its own (fake) clock with a 5-minute allowance, so
 * the client signs with `systemClockOffset` set to the same offset. That option is the SDK's own
 * skew correction value (the one it updates from a server's Date header after a skew error); setting
 * it up front works with maxAttempts 1 and needs no failed first request. Checked by hand: without
 * it every request fails ("InvalidSignatureException: Signature expired"); with maxAttempts 2 and no
 * offset the SDK also recovers, by retrying after reading the skew from the Date header.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { KMS } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { newCredentials, requireTool, startServer, tempDir, type Credentials, type TestServer } from '../helpers/server.js';
import { readAuditText } from '../helpers/audit.js';

const DAY = 86400_000;
const PERIOD_DAYS = 90;

function hasFaketime(): boolean {
  try {
    execFileSync('faketime', ['-f', '+0d', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** libfaketime itself, for the server wrapper below. */
function libfaketime(): string | undefined {
  const dirs = ['/usr/local/lib/faketime', '/usr/lib/faketime'];
  try {
    for (const d of readdirSync('/usr/lib')) dirs.push(join('/usr/lib', d, 'faketime'));
  } catch {
    // no /usr/lib
  }
  return dirs.map((d) => join(d, 'libfaketime.so.1')).find((f) => existsSync(f));
}

/**
 * The server wrapper: `env LD_PRELOAD=libfaketime FAKETIME=+Nd`, which is what `faketime -f +Nd`
 * sets up. Not `faketime` itself: it forks node and waits, so TestServer.stop()'s SIGTERM would stop
 * the wrapper and leave the server running; `env` execs, so the signal reaches node.
 */
function faketime(days: number): string[] {
  return ['env', `LD_PRELOAD=${libfaketime()}`, `FAKETIME=+${days}d`];
}

/** A KMS client for a server whose clock runs `offsetDays` ahead of ours. */
function clientFor(server: TestServer, credentials: Credentials, offsetDays: number): KMS {
  return new KMS({
    endpoint: server.url,
    region: 'us-east-1',
    credentials,
    maxAttempts: 1,
    systemClockOffset: offsetDays * DAY,
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(join(server.dataDir, 'tls', 'ca.pem')) }) }),
  });
}

function blobKeyVersion(blob: Uint8Array): number {
  const b = Buffer.from(blob);
  return b.readUInt32BE(2 + b[1]!);
}

async function waitFor<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function assertNear(actual: Date | undefined, expectedMs: number, slackMs = 5 * 60_000): void {
  assert.ok(actual, 'date missing');
  assert.ok(Math.abs(actual.getTime() - expectedMs) < slackMs, `${actual.toISOString()} is not near ${new Date(expectedMs).toISOString()}`);
}

/** Creates a key with a 90-day period and one ciphertext under a real-clock server, then stops it. */
async function seed(dataDir: string, credentials: Credentials): Promise<{ keyId: string; blob: Uint8Array }> {
  const s = await startServer({ dataDir, credentials });
  try {
    const kms = s.kms();
    const keyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
    await kms.enableKeyRotation({ KeyId: keyId, RotationPeriodInDays: PERIOD_DAYS });
    assertNear((await kms.getKeyRotationStatus({ KeyId: keyId })).NextRotationDate, Date.now() + PERIOD_DAYS * DAY);
    const blob = (await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('before') })).CiphertextBlob!;
    return { keyId, blob };
  } finally {
    await s.stop();
  }
}

describe('automatic rotation under a moved clock (faketime, black box)', () => {
  let available = false;
  const dirs: string[] = [];
  const servers: TestServer[] = [];
  const newDataDir = () => {
    const base = tempDir();
    dirs.push(base);
    return join(base, 'data');
  };
  const start = async (dataDir: string, credentials: Credentials, days: number) => {
    const s = await startServer({ dataDir, credentials, wrapper: faketime(days), args: ['--job-interval-seconds', '1'] });
    servers.push(s);
    return s;
  };
  const stopAll = async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  };

  before(() => {
    available = requireTool('faketime', hasFaketime() && libfaketime() !== undefined);
    if (!available) return;
    // libfaketime must reach Node's clock, or the scenarios below prove nothing.
    const seen = Number(execFileSync(faketime(100)[0]!, [...faketime(100).slice(1), process.execPath, '-e', 'process.stdout.write(String(Date.now()))'], { encoding: 'utf8' }));
    assertNear(new Date(seen), Date.now() + 100 * DAY);
  });

  after(async () => {
    await stopAll();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('rotates an overdue key once at start, and old ciphertexts still decrypt', async (t) => {
    if (!available) return t.skip('faketime is not installed');
    const dataDir = newDataDir();
    const credentials = newCredentials();
    const { keyId, blob } = await seed(dataDir, credentials);
    try {
      const s = await start(dataDir, credentials, 100);
      const kms = clientFor(s, credentials, 100);
      const rotations = await waitFor('the automatic rotation', async () => (await kms.listKeyRotations({ KeyId: keyId })).Rotations!, (r) => r.length > 0);
      assert.equal(rotations.length, 1);
      assert.equal(rotations[0]!.RotationType, 'AUTOMATIC');
      assert.equal(rotations[0]!.KeyId, keyId);
      assertNear(rotations[0]!.RotationDate, Date.now() + 100 * DAY);
      assertNear((await kms.getKeyRotationStatus({ KeyId: keyId })).NextRotationDate, Date.now() + (100 + PERIOD_DAYS) * DAY);
      // Further ticks (interval 1 s) find nothing due.
      await sleep(2500);
      assert.equal((await kms.listKeyRotations({ KeyId: keyId })).Rotations!.length, 1, 'rotated more than once');
      assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: blob })).Plaintext!), Buffer.from('before'));
      assert.equal(blobKeyVersion((await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('after') })).CiphertextBlob!), 2);
    } finally {
      await stopAll();
    }
  });

  it('two processes on one data dir rotate a due key once', async (t) => {
    if (!available) return t.skip('faketime is not installed');
    const dataDir = newDataDir();
    const credentials = newCredentials();
    const { keyId } = await seed(dataDir, credentials);
    try {
      const [a, b] = await Promise.all([start(dataDir, credentials, 100), start(dataDir, credentials, 100)]);
      const ka = clientFor(a!, credentials, 100);
      const kb = clientFor(b!, credentials, 100);
      await waitFor('the automatic rotation', async () => (await ka.listKeyRotations({ KeyId: keyId })).Rotations!, (r) => r.length > 0);
      // Let both runners tick a few more times (interval 1 s) before counting.
      await sleep(3000);
      for (const kms of [ka, kb]) {
        const rotations = (await kms.listKeyRotations({ KeyId: keyId })).Rotations!;
        assert.equal(rotations.length, 1, 'exactly one new version in total');
        assert.equal(rotations[0]!.RotationType, 'AUTOMATIC');
        assert.equal(blobKeyVersion((await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') })).CiphertextBlob!), 2);
      }
      const audit = readAuditText(dataDir)
        .split('\n')
        .filter((l) => l.includes('"eventName":"RotateKey"') && l.includes(keyId));
      assert.equal(audit.length, 1, `one RotateKey audit event, got:\n${audit.join('\n')}`);
    } finally {
      await stopAll();
    }
  });

  it('does not rotate early when the clock steps back behind the last rotation', async (t) => {
    if (!available) return t.skip('faketime is not installed');
    const dataDir = newDataDir();
    const credentials = newCredentials();
    const { keyId, blob } = await seed(dataDir, credentials);
    let next: Date;
    try {
      const s = await start(dataDir, credentials, 100);
      const kms = clientFor(s, credentials, 100);
      await waitFor('the automatic rotation', async () => (await kms.listKeyRotations({ KeyId: keyId })).Rotations!, (r) => r.length > 0);
      next = (await kms.getKeyRotationStatus({ KeyId: keyId })).NextRotationDate!;
      assertNear(next, Date.now() + (100 + PERIOD_DAYS) * DAY);
    } finally {
      await stopAll();
    }
    try {
      // +95d: past the key's first due date (+90d) but before the rotation at +100d.
      const s = await start(dataDir, credentials, 95);
      const kms = clientFor(s, credentials, 95);
      // The first tick runs at start; give it and two more (interval 1 s) the chance to misbehave.
      await sleep(3000);
      const rotations = (await kms.listKeyRotations({ KeyId: keyId })).Rotations!;
      assert.equal(rotations.length, 1, 'rotated again after the clock stepped back');
      const status = await kms.getKeyRotationStatus({ KeyId: keyId });
      assert.equal(status.KeyRotationEnabled, true);
      assert.equal(status.NextRotationDate!.getTime(), next.getTime());
      assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: blob })).Plaintext!), Buffer.from('before'));
    } finally {
      await stopAll();
    }
  });
});
