/**
 * Version retirement (KeyholdService.SetMinimumDecryptionVersion) and per-version use counts
 * (KeyholdService.ListKeyVersions), black box: real server processes over HTTPS, KMS calls through
 * the AWS SDK, Keyhold's own calls through the SigV4 client the `keyhold` commands use.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KMS } from '@aws-sdk/client-kms';
import { callKeyhold } from '../../src/cli/keyhold-client.js';
import type { ClientSettings } from '../../src/cli/client.js';
import type { KeyVersionRow as VersionRow, KeyVersionsPage as Versions, SetMinimumDecryptionVersionResult } from '../../src/cli/keys-versions.js';
import { cliEnv, runCli, startServer, type TestServer } from '../helpers/server.js';
import { readAuditEvents } from '../helpers/audit.js';

function settingsFor(s: TestServer): ClientSettings {
  return { endpoint: s.url, region: 'us-east-1', credentials: s.credentials, caBundle: s.caFile };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown>, type: string, message?: RegExp): Promise<Error> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { type?: string };
    assert.equal(err.type ?? err.name, type, `expected ${type}, got ${err.name}: ${err.message}`);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${type}, but the call succeeded`);
}

describe('key versions: retirement and use counts (black box)', () => {
  let server: TestServer;
  let kms: KMS;
  let settings: ClientSettings;

  before(async () => {
    server = await startServer({ args: ['--usage-flush-seconds', '1'] });
    kms = server.kms();
    settings = settingsFor(server);
  });
  after(async () => {
    kms?.destroy();
    await server?.stop();
    server?.cleanup();
  });

  it('lists every version with creation time and counts that increase with use', async () => {
    const key = (await kms.createKey({})).KeyMetadata!;
    const pt = Buffer.from('count me');
    const v1 = [];
    for (let i = 0; i < 3; i++) v1.push((await kms.encrypt({ KeyId: key.KeyId!, Plaintext: pt })).CiphertextBlob!);
    await kms.generateDataKey({ KeyId: key.KeyId!, KeySpec: 'AES_256' });
    await kms.decrypt({ CiphertextBlob: v1[0]! });
    await kms.rotateKeyOnDemand({ KeyId: key.KeyId! });
    const v2 = (await kms.encrypt({ KeyId: key.KeyId!, Plaintext: pt })).CiphertextBlob!;
    await kms.decrypt({ CiphertextBlob: v2 });
    await kms.decrypt({ CiphertextBlob: v1[1]! });
    // ReEncrypt: one decrypt under v1, one encrypt under v2.
    await kms.reEncrypt({ CiphertextBlob: v1[2]!, DestinationKeyId: key.KeyId! });

    const r = await callKeyhold<Versions>(settings, 'ListKeyVersions', { KeyId: key.KeyId });
    assert.equal(r.KeyId, key.Arn);
    assert.equal(r.CurrentVersion, 2);
    assert.equal(r.MinimumDecryptionVersion, 1);
    assert.equal(r.Versions.length, 2);
    const [a, b] = r.Versions as [VersionRow, VersionRow];
    assert.deepEqual(
      [a.Version, a.EncryptCount, a.DecryptCount, a.Current, a.Retired, a.RotationType],
      [1, 4, 3, false, false, undefined],
    );
    assert.deepEqual([b.Version, b.EncryptCount, b.DecryptCount, b.Current, b.Retired, b.RotationType], [2, 2, 1, true, false, 'ON_DEMAND']);
    const now = Date.now() / 1000;
    for (const v of r.Versions) {
      assert.ok(Math.abs(v.CreationDate - now) < 60, `creation date ${v.CreationDate}`);
      assert.ok(v.LastUsedDate !== undefined && Math.abs(v.LastUsedDate - now) < 60, `last used ${v.LastUsedDate}`);
    }
    assert.ok(b.CreationDate >= a.CreationDate);

    // More use after a flush: the stored totals add up, nothing is overwritten.
    await sleep(1500);
    await kms.decrypt({ CiphertextBlob: v2 });
    await kms.encrypt({ KeyId: key.KeyId!, Plaintext: pt });
    await sleep(1500);
    const again = await callKeyhold<Versions>(settings, 'ListKeyVersions', { KeyId: key.Arn });
    assert.deepEqual(again.Versions.map((v) => [v.EncryptCount, v.DecryptCount]), [[4, 3], [3, 2]]);

    // A key never used lists its one version with zero counts and no last use.
    const idle = (await kms.createKey({})).KeyMetadata!;
    const ir = await callKeyhold<Versions>(settings, 'ListKeyVersions', { KeyId: idle.KeyId });
    assert.deepEqual(ir.Versions.map((v) => [v.Version, v.EncryptCount, v.DecryptCount, v.LastUsedDate]), [[1, 0, 0, undefined]]);

    // Pagination
    const p1 = await callKeyhold<Versions>(settings, 'ListKeyVersions', { KeyId: key.KeyId, Limit: 1 });
    assert.equal(p1.Versions.length, 1);
    assert.equal(p1.Truncated, true);
    const p2 = await callKeyhold<Versions>(settings, 'ListKeyVersions', { KeyId: key.KeyId, Limit: 1, Marker: p1.NextMarker });
    assert.deepEqual(p2.Versions.map((v) => v.Version), [2]);
    assert.equal(p2.Truncated, false);
    await rejectsWith(callKeyhold(settings, 'ListKeyVersions', { KeyId: key.KeyId, Marker: 'bogus' }), 'InvalidMarkerException');
    await rejectsWith(callKeyhold(settings, 'ListKeyVersions', {}), 'ValidationException');
  });

  it('a retired version no longer decrypts, ReEncrypt from it fails, newer versions work, and the retirement is audited', async () => {
    const key = (await kms.createKey({})).KeyMetadata!;
    const pt = Buffer.from('old data');
    const old = (await kms.encrypt({ KeyId: key.KeyId!, Plaintext: pt, EncryptionContext: { app: 'x' } })).CiphertextBlob!;
    await kms.rotateKeyOnDemand({ KeyId: key.KeyId! });
    await kms.rotateKeyOnDemand({ KeyId: key.KeyId! });
    // Re-encrypt the data first, as an operator would, then retire versions 1 and 2.
    const moved = (await kms.reEncrypt({ CiphertextBlob: old, SourceEncryptionContext: { app: 'x' }, DestinationKeyId: key.KeyId!, DestinationEncryptionContext: { app: 'x' } })).CiphertextBlob!;

    // The newest version can never be retired; 0 is not a version.
    await rejectsWith(callKeyhold(settings, 'SetMinimumDecryptionVersion', { KeyId: key.KeyId, MinimumDecryptionVersion: 4 }), 'ValidationException', /newest version, 3/);
    await rejectsWith(callKeyhold(settings, 'SetMinimumDecryptionVersion', { KeyId: key.KeyId, MinimumDecryptionVersion: 0 }), 'ValidationException');
    await rejectsWith(callKeyhold(settings, 'SetMinimumDecryptionVersion', { KeyId: 'alias/nope', MinimumDecryptionVersion: 1 }), 'NotFoundException');
    await rejectsWith(
      callKeyhold(settings, 'SetMinimumDecryptionVersion', { KeyId: '00000000-0000-4000-8000-000000000000', MinimumDecryptionVersion: 1 }),
      'NotFoundException',
    );
    // Nothing was lost to the refusals: the old blob still decrypts.
    assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: old, EncryptionContext: { app: 'x' } })).Plaintext!), pt);

    const set = await callKeyhold<SetMinimumDecryptionVersionResult>(
      settings, 'SetMinimumDecryptionVersion', { KeyId: key.Arn, MinimumDecryptionVersion: 3 },
    );
    assert.deepEqual(set, { KeyId: key.Arn, MinimumDecryptionVersion: 3, PreviousMinimumDecryptionVersion: 1 });

    const err = await rejectsWith(kms.decrypt({ CiphertextBlob: old, EncryptionContext: { app: 'x' } }), 'KeyVersionRetiredException');
    assert.match(err.message, new RegExp(`Version 1 of key ${key.Arn} is retired`));
    assert.match(err.message, /minimum decryption version is 3/);
    assert.equal((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 400);
    await rejectsWith(kms.reEncrypt({ CiphertextBlob: old, SourceEncryptionContext: { app: 'x' }, DestinationKeyId: key.KeyId! }), 'KeyVersionRetiredException', /Version 1 of key/);
    // The re-encrypted copy and new data decrypt.
    assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: moved, EncryptionContext: { app: 'x' } })).Plaintext!), pt);
    const fresh = (await kms.encrypt({ KeyId: key.KeyId!, Plaintext: pt })).CiphertextBlob!;
    assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: fresh })).Plaintext!), pt);

    const listed = await callKeyhold<Versions>(settings, 'ListKeyVersions', { KeyId: key.KeyId });
    assert.equal(listed.MinimumDecryptionVersion, 3);
    assert.deepEqual(listed.Versions.map((v) => [v.Version, v.Retired]), [[1, true], [2, true], [3, false]]);

    // Lowering the minimum restores the old version (its material was kept).
    await callKeyhold(settings, 'SetMinimumDecryptionVersion', { KeyId: key.KeyId, MinimumDecryptionVersion: 1 });
    assert.deepEqual(Buffer.from((await kms.decrypt({ CiphertextBlob: old, EncryptionContext: { app: 'x' } })).Plaintext!), pt);

    await sleep(300); // the audit writer commits in groups
    const events = readAuditEvents(server.dataDir);
    const sets = events.filter((e) => e.eventName === 'SetMinimumDecryptionVersion' && !e.errorCode);
    assert.equal(sets.length, 2);
    assert.equal(sets[0]!.resources[0]!.arn, key.Arn);
    assert.deepEqual(sets[0]!.details, { minimumDecryptionVersion: 3, previousMinimumDecryptionVersion: 1, retiredVersions: [1, 2] });
    assert.equal(sets[0]!.decision?.effect, 'Allow');
    const refused = events.filter((e) => e.eventName === 'Decrypt' && e.errorCode === 'KeyVersionRetiredException');
    assert.equal(refused.length, 1);
    assert.deepEqual(refused[0]!.resources, [{ arn: key.Arn, keyVersion: 1 }]);
  });

  it('the retirement is authorized by the key policy like any other action', async () => {
    const root = `arn:aws:iam::${server.accountId}:root`;
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'all', Effect: 'Allow', Principal: { AWS: root }, Action: 'kms:*', Resource: '*' },
        { Sid: 'noRetire', Effect: 'Deny', Principal: { AWS: root }, Action: 'kms:SetMinimumDecryptionVersion', Resource: '*' },
      ],
    });
    const key = (await kms.createKey({ Policy: policy })).KeyMetadata!;
    await kms.rotateKeyOnDemand({ KeyId: key.KeyId! });
    await rejectsWith(
      callKeyhold(settings, 'SetMinimumDecryptionVersion', { KeyId: key.KeyId, MinimumDecryptionVersion: 2 }),
      'AccessDeniedException',
      /kms:SetMinimumDecryptionVersion/,
    );
    const listed = await callKeyhold<Versions>(settings, 'ListKeyVersions', { KeyId: key.KeyId });
    assert.equal(listed.MinimumDecryptionVersion, 1);
    await sleep(300);
    const denied = readAuditEvents(server.dataDir).filter((e) => e.eventName === 'SetMinimumDecryptionVersion' && e.errorCode === 'AccessDeniedException');
    assert.equal(denied.length, 1);
    assert.equal(denied[0]!.decision?.effect, 'Deny');
  });

  it('new keys rotate at the account\'s default period, which UpdateAccountSettings (and keyhold settings) sets', async () => {
    const env = cliEnv(server);
    const before = await callKeyhold<{ DefaultRotationPeriodInDays: number }>(settings, 'GetAccountSettings', {});
    assert.equal(before.DefaultRotationPeriodInDays, 365);
    await rejectsWith(callKeyhold(settings, 'UpdateAccountSettings', { DefaultRotationPeriodInDays: 89 }), 'ValidationException');
    const set = await runCli(['settings', '--default-rotation-period-days', '180', '--json'], env);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), { accountId: server.accountId, defaultRotationPeriodInDays: 180, separationOfDuties: true, auditEncryptionContextHmac: false });
    const bad = await runCli(['settings', '--default-rotation-period-days', '3000'], env);
    assert.equal(bad.code, 2);
    const key = (await kms.createKey({})).KeyMetadata!;
    const status = await kms.getKeyRotationStatus({ KeyId: key.KeyId! });
    assert.equal(status.KeyRotationEnabled, true);
    assert.equal(status.RotationPeriodInDays, 180);
    assert.ok(Math.abs(status.NextRotationDate!.getTime() - (Date.now() + 180 * 86400_000)) < 5 * 60_000);
    // EnableKeyRotation without a period keeps AWS's default of 365.
    await kms.enableKeyRotation({ KeyId: key.KeyId! });
    assert.equal((await kms.getKeyRotationStatus({ KeyId: key.KeyId! })).RotationPeriodInDays, 365);
    const shown = await runCli(['settings'], env);
    assert.match(shown.stdout, /new keys rotate every 180 days/);
    await callKeyhold(settings, 'UpdateAccountSettings', { DefaultRotationPeriodInDays: 365 });
    await sleep(300);
    const updates = readAuditEvents(server.dataDir).filter((e) => e.eventName === 'UpdateAccountSettings' && !e.errorCode);
    assert.deepEqual(updates[0]!.details, { previousDefaultRotationPeriodInDays: 365, defaultRotationPeriodInDays: 180 });
  });

  it('keeps the counts across a clean restart (flushed at shutdown)', async () => {
    const s = await startServer({ args: ['--usage-flush-seconds', '3600'] });
    try {
      const c = s.kms();
      const key = (await c.createKey({})).KeyMetadata!;
      const blob = (await c.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') })).CiphertextBlob!;
      await c.decrypt({ CiphertextBlob: blob });
      await c.decrypt({ CiphertextBlob: blob });
      c.destroy();
      assert.equal(await s.stop(), 0);
      const again = await startServer({ dataDir: s.dataDir, credentials: s.credentials, args: ['--usage-flush-seconds', '3600'] });
      try {
        const r = await callKeyhold<Versions>(settingsFor(again), 'ListKeyVersions', { KeyId: key.KeyId });
        assert.deepEqual(r.Versions.map((v) => [v.EncryptCount, v.DecryptCount]), [[1, 2]]);
      } finally {
        await again.stop();
      }
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('adds up the counts of several worker processes (--workers 2)', async () => {
    const s = await startServer({ args: ['--workers', '2', '--usage-flush-seconds', '1'] });
    try {
      const key = (await s.kms().createKey({})).KeyMetadata!;
      // Separate clients (separate connections) so that both workers take requests.
      const clients = Array.from({ length: 8 }, () => s.kms());
      const N = 10;
      await Promise.all(clients.map(async (c) => {
        for (let i = 0; i < N; i++) {
          const b = (await c.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from('w') })).CiphertextBlob!;
          await c.decrypt({ CiphertextBlob: b });
        }
        c.destroy();
      }));
      await sleep(2500); // every worker has flushed at least once since
      const total = clients.length * N;
      const r = await callKeyhold<Versions>(settingsFor(s), 'ListKeyVersions', { KeyId: key.KeyId });
      assert.deepEqual(r.Versions.map((v) => [v.EncryptCount, v.DecryptCount]), [[total, total]]);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});

