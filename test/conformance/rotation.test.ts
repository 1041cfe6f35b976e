/**
 * Automatic and on-demand key rotation through the AWS SDK against a real HTTPS server: the
 * black-box part against the built server, the job part in-process with an injected clock (no real
 * year passes), as in deletion-job.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KMS } from '@aws-sdk/client-kms';
import { parseServerConfig } from '../../src/config.js';
import { startServer as startInProcess } from '../../src/main.js';
import { rotateDueKeys } from '../../src/operations/index.js';
import { inProcessClient, newCredentials, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { readAuditText } from '../helpers/audit.js';

const DAY = 86400_000;

/** Blob layout v1: byte 0 version, byte 1 key id length L, key id, then the backing-key version as u32 BE. */
function blobKeyVersion(blob: Uint8Array): number {
  const b = Buffer.from(blob);
  assert.equal(b[0], 1);
  const len = b[1]!;
  return b.readUInt32BE(2 + len);
}

function assertNear(actual: Date | undefined, expectedMs: number, slackMs = 5 * 60_000): void {
  assert.ok(actual, 'date missing');
  assert.ok(Math.abs(actual.getTime() - expectedMs) < slackMs, `${actual.toISOString()} is not near ${new Date(expectedMs).toISOString()}`);
}

describe('key rotation (black box)', () => {
  let server: TestServer;
  let kms: KMS;
  before(async () => {
    server = await startServer();
    kms = server.kms();
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('is on by default for a new key, due a year from now', async () => {
    const key = (await kms.createKey({})).KeyMetadata!;
    const status = await kms.getKeyRotationStatus({ KeyId: key.KeyId! });
    assert.equal(status.KeyRotationEnabled, true);
    assert.equal(status.RotationPeriodInDays, 365);
    assert.equal(status.KeyId, key.Arn);
    assertNear(status.NextRotationDate, Date.now() + 365 * DAY);
    assert.equal(status.OnDemandRotationStartDate, undefined);
  });

  it('is off for a key created with the opt-out tag', async () => {
    const key = (await kms.createKey({ Tags: [{ TagKey: 'KeyholdRotation', TagValue: 'disabled' }] })).KeyMetadata!;
    const status = await kms.getKeyRotationStatus({ KeyId: key.Arn! });
    assert.equal(status.KeyRotationEnabled, false);
    assert.equal(status.NextRotationDate, undefined);
  });

  it('validates the period, and disables and re-enables with a new period', async () => {
    const key = (await kms.createKey({})).KeyMetadata!;
    await assert.rejects(kms.enableKeyRotation({ KeyId: key.KeyId!, RotationPeriodInDays: 89 }), { name: 'ValidationException' });
    await assert.rejects(kms.enableKeyRotation({ KeyId: key.KeyId!, RotationPeriodInDays: 2561 }), { name: 'ValidationException' });
    await kms.disableKeyRotation({ KeyId: key.KeyId! });
    let status = await kms.getKeyRotationStatus({ KeyId: key.KeyId! });
    assert.equal(status.KeyRotationEnabled, false);
    assert.equal(status.NextRotationDate, undefined);
    await kms.enableKeyRotation({ KeyId: key.KeyId!, RotationPeriodInDays: 90 });
    status = await kms.getKeyRotationStatus({ KeyId: key.KeyId! });
    assert.equal(status.KeyRotationEnabled, true);
    assert.equal(status.RotationPeriodInDays, 90);
    assertNear(status.NextRotationDate, Date.now() + 90 * DAY);
    await kms.enableKeyRotation({ KeyId: key.KeyId! });
    assert.equal((await kms.getKeyRotationStatus({ KeyId: key.KeyId! })).RotationPeriodInDays, 365);
  });

  it('refuses aliases, disabled keys and keys pending deletion where AWS does', async () => {
    const key = (await kms.createKey({})).KeyMetadata!;
    await kms.createAlias({ AliasName: 'alias/rotating', TargetKeyId: key.KeyId! });
    await assert.rejects(kms.enableKeyRotation({ KeyId: 'alias/rotating' }), { name: 'NotFoundException' });
    await assert.rejects(kms.disableKeyRotation({ KeyId: 'alias/rotating' }), { name: 'NotFoundException' });
    await assert.rejects(kms.rotateKeyOnDemand({ KeyId: 'alias/rotating' }), { name: 'NotFoundException' });
    await kms.disableKey({ KeyId: key.KeyId! });
    await assert.rejects(kms.enableKeyRotation({ KeyId: key.KeyId! }), { name: 'KMSInvalidStateException' });
    await assert.rejects(kms.disableKeyRotation({ KeyId: key.KeyId! }), { name: 'KMSInvalidStateException' });
    await assert.rejects(kms.rotateKeyOnDemand({ KeyId: key.KeyId! }), { name: 'KMSInvalidStateException' });
    await kms.scheduleKeyDeletion({ KeyId: key.KeyId!, PendingWindowInDays: 7 });
    await assert.rejects(kms.getKeyRotationStatus({ KeyId: key.KeyId! }), { name: 'KMSInvalidStateException' });
    await assert.rejects(kms.rotateKeyOnDemand({ KeyId: key.KeyId! }), { name: 'KMSInvalidStateException' });
    await assert.rejects(kms.enableKeyRotation({ KeyId: key.KeyId! }), { name: 'KMSInvalidStateException' });
  });

  it('rotates on demand: old ciphertexts still decrypt, new ones use the newest version, up to 25 rotations', async () => {
    const key = (await kms.createKey({})).KeyMetadata!;
    const plaintext = Buffer.from('rotate me');
    const blobs: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      blobs.push((await kms.encrypt({ KeyId: key.KeyId!, Plaintext: plaintext })).CiphertextBlob!);
      assert.equal(blobKeyVersion(blobs[i]!), i + 1);
      if (i < 3) assert.equal((await kms.rotateKeyOnDemand({ KeyId: key.Arn! })).KeyId, key.Arn);
    }
    for (const b of blobs) {
      const d = await kms.decrypt({ CiphertextBlob: b });
      assert.deepEqual(Buffer.from(d.Plaintext!), plaintext);
      assert.equal(d.KeyId, key.Arn);
    }
    const dk = await kms.generateDataKey({ KeyId: key.KeyId!, KeySpec: 'AES_256' });
    assert.equal(blobKeyVersion(dk.CiphertextBlob!), 4);
    const re = await kms.reEncrypt({ CiphertextBlob: blobs[0]!, DestinationKeyId: key.KeyId! });
    assert.equal(blobKeyVersion(re.CiphertextBlob!), 4);
    assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: re.CiphertextBlob! })).Plaintext!), plaintext);

    const status = await kms.getKeyRotationStatus({ KeyId: key.KeyId! });
    assertNear(status.OnDemandRotationStartDate, Date.now());

    const first = await kms.listKeyRotations({ KeyId: key.KeyId!, Limit: 2 });
    assert.equal(first.Rotations!.length, 2);
    assert.equal(first.Truncated, true);
    assert.ok(first.NextMarker);
    const second = await kms.listKeyRotations({ KeyId: key.KeyId!, Limit: 2, Marker: first.NextMarker! });
    assert.equal(second.Rotations!.length, 1);
    assert.equal(second.Truncated, false);
    assert.equal(second.NextMarker, undefined);
    for (const r of [...first.Rotations!, ...second.Rotations!]) {
      assert.equal(r.RotationType, 'ON_DEMAND');
      assert.equal(r.KeyId, key.KeyId);
      assertNear(r.RotationDate, Date.now());
    }
    await assert.rejects(kms.listKeyRotations({ KeyId: key.KeyId!, Marker: 'not-a-marker' }), { name: 'InvalidMarkerException' });

    for (let i = 3; i < 25; i++) await kms.rotateKeyOnDemand({ KeyId: key.KeyId! });
    await assert.rejects(kms.rotateKeyOnDemand({ KeyId: key.KeyId! }), { name: 'LimitExceededException' });
    const all = await kms.listKeyRotations({ KeyId: key.KeyId! });
    assert.equal(all.Rotations!.length, 25);
    assert.equal(all.Truncated, false);
    const last = await kms.encrypt({ KeyId: key.KeyId!, Plaintext: plaintext });
    assert.equal(blobKeyVersion(last.CiphertextBlob!), 26);
    assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: blobs[0]! })).Plaintext!), plaintext);
  });
});


describe('automatic rotation job', () => {
  it('rotates once at the due date, not before, then a full period later; never when the clock steps back', async () => {
    const base = tempDir();
    const dataDir = join(base, 'data');
    const creds = newCredentials();
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    const env = { KEYHOLD_ROOT_ACCESS_KEY_ID: creds.accessKeyId, KEYHOLD_ROOT_SECRET_ACCESS_KEY: creds.secretAccessKey };
    const config = parseServerConfig(['--port', '0', '--data-dir', dataDir, '--log-level', 'error', '--job-interval-seconds', '3600'], env);
    const s = await startInProcess(config, { clock, announce: () => undefined });
    try {
      const kms = inProcessClient(s.url, dataDir, creds);
      const key = (await kms.createKey({})).KeyMetadata!;
      const optedOut = (await kms.createKey({ Tags: [{ TagKey: 'KeyholdRotation', TagValue: 'disabled' }] })).KeyMetadata!;
      const disabled = (await kms.createKey({})).KeyMetadata!;
      await kms.disableKey({ KeyId: disabled.KeyId! });
      const before = await kms.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') });
      const rotations = async (keyId: string) => (await kms.listKeyRotations({ KeyId: keyId })).Rotations!;

      offset = 364 * DAY;
      await s.jobs.tick();
      assert.equal((await rotations(key.KeyId!)).length, 0, 'rotated early');

      offset = 365 * DAY + 60_000;
      await s.jobs.tick();
      await s.jobs.tick();
      const after = await rotations(key.KeyId!);
      assert.equal(after.length, 1, 'rotated exactly once');
      assert.equal(after[0]!.RotationType, 'AUTOMATIC');
      assertNear(after[0]!.RotationDate, Date.now() + offset);
      const status = await kms.getKeyRotationStatus({ KeyId: key.KeyId! });
      assertNear(status.NextRotationDate, Date.now() + offset + 365 * DAY);
      assert.equal(blobKeyVersion((await kms.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') })).CiphertextBlob!), 2);
      assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: before.CiphertextBlob! })).Plaintext!), Buffer.from('x'));
      assert.equal((await rotations(optedOut.KeyId!)).length, 0, 'opted-out key rotated');
      assert.equal((await rotations(disabled.KeyId!)).length, 0, 'disabled key rotated');
      const audit = readAuditText(dataDir);
      assert.match(audit, new RegExp(`"eventName":"RotateKey".*${key.KeyId}`));

      // The clock steps back to before the first rotation: nothing is due.
      offset = 0;
      await s.jobs.tick();
      assert.equal((await rotations(key.KeyId!)).length, 1, 'rotated after the clock stepped back');

      // Overdue by several periods: one rotation, the next a full period from then.
      offset = 5 * 365 * DAY;
      await s.jobs.tick();
      await s.jobs.tick();
      assert.equal((await rotations(key.KeyId!)).length, 2);
      assertNear((await kms.getKeyRotationStatus({ KeyId: key.KeyId! })).NextRotationDate, Date.now() + offset + 365 * DAY);

      // A disabled key overdue for rotation rotates once it is enabled again.
      await kms.enableKey({ KeyId: disabled.KeyId! });
      await s.jobs.tick();
      const d = await rotations(disabled.KeyId!);
      assert.equal(d.length, 1);
      assert.equal(d[0]!.RotationType, 'AUTOMATIC');
    } finally {
      await s.close();
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('reads a record from before rotation existed as enabled, and rotates a due key once under concurrent runs', async () => {
    const base = tempDir();
    const dataDir = join(base, 'data');
    const creds = newCredentials();
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    const env = { KEYHOLD_ROOT_ACCESS_KEY_ID: creds.accessKeyId, KEYHOLD_ROOT_SECRET_ACCESS_KEY: creds.secretAccessKey };
    const config = parseServerConfig(['--port', '0', '--data-dir', dataDir, '--log-level', 'error', '--job-interval-seconds', '3600'], env);
    const s = await startInProcess(config, { clock, announce: () => undefined });
    try {
      const kms = inProcessClient(s.url, dataDir, creds);
      const key = (await kms.createKey({})).KeyMetadata!;
      const repo = s.services.keys;
      // Strip the rotation field, as a record written before this feature would have none.
      await repo.storage.transaction(async (tx) => {
        const current = (await repo.getKey(key.KeyId!, tx))!;
        const legacy = structuredClone(current);
        delete legacy.rotation;
        await repo.putKey(tx, legacy, current);
      });
      assert.equal((await repo.getKey(key.KeyId!))!.rotation, undefined);
      const status = await kms.getKeyRotationStatus({ KeyId: key.KeyId! });
      assert.equal(status.KeyRotationEnabled, true);
      assert.equal(status.RotationPeriodInDays, 365);
      assert.equal(status.NextRotationDate!.getTime(), key.CreationDate!.getTime() + 365 * DAY);

      // Several runners at once, as several processes sharing a store would be without the lease.
      offset = 365 * DAY + 60_000;
      const results = await Promise.all([rotateDueKeys(s.services), rotateDueKeys(s.services), rotateDueKeys(s.services)]);
      assert.equal(results.flat().filter((arn) => arn === key.Arn).length, 1);
      const rotations = (await kms.listKeyRotations({ KeyId: key.KeyId! })).Rotations!;
      assert.equal(rotations.length, 1);
      assert.equal((await repo.getKey(key.KeyId!))!.rotation!.nextRotationAt! > clock.now(), true);
    } finally {
      await s.close();
      rmSync(base, { recursive: true, force: true });
    }
  });
});
