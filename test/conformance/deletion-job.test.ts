/**
 * Scheduled deletion is carried out by the persistent job, driven by the stored deletion date and an
 * injected clock (no real week passes), including a deletion that came due while the server was down.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseServerConfig } from '../../src/config.js';
import { startServer as startInProcess } from '../../src/main.js';
import { inProcessClient, newCredentials, tempDir } from '../helpers/server.js';
import { readAuditText } from '../helpers/audit.js';

const DAY = 86400_000;


describe('scheduled key deletion job', () => {
  it('deletes a key, its aliases and its material once the waiting period has passed, not before, and survives a restart', async () => {
    const base = tempDir();
    const dataDir = join(base, 'data');
    const creds = newCredentials();
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    const env = { KEYHOLD_ROOT_ACCESS_KEY_ID: creds.accessKeyId, KEYHOLD_ROOT_SECRET_ACCESS_KEY: creds.secretAccessKey };
    const config = parseServerConfig(['--port', '0', '--data-dir', dataDir, '--log-level', 'error', '--job-interval-seconds', '3600'], env);
    const quiet = () => undefined;
    let s = await startInProcess(config, { clock, announce: quiet });
    try {
      let kms = inProcessClient(s.url, dataDir, creds);
      const doomed = (await kms.createKey({})).KeyMetadata!;
      const kept = (await kms.createKey({})).KeyMetadata!;
      await kms.createAlias({ AliasName: 'alias/doomed', TargetKeyId: doomed.KeyId! });
      const later = (await kms.createKey({})).KeyMetadata!;
      await kms.scheduleKeyDeletion({ KeyId: doomed.KeyId!, PendingWindowInDays: 7 });
      await kms.scheduleKeyDeletion({ KeyId: later.KeyId!, PendingWindowInDays: 30 });
      await kms.scheduleKeyDeletion({ KeyId: kept.KeyId!, PendingWindowInDays: 7 });
      await kms.cancelKeyDeletion({ KeyId: kept.KeyId! });

      offset = 6 * DAY;
      await s.jobs.tick();
      kms = inProcessClient(s.url, dataDir, creds);
      assert.equal((await kms.describeKey({ KeyId: doomed.KeyId! })).KeyMetadata!.KeyState, 'PendingDeletion', 'deleted early');

      offset = 7 * DAY + 60_000;
      await s.jobs.tick();
      kms = inProcessClient(s.url, dataDir, creds);
      await assert.rejects(kms.describeKey({ KeyId: doomed.KeyId! }), { name: 'NotFoundException' });
      await assert.rejects(kms.describeKey({ KeyId: 'alias/doomed' }), { name: 'NotFoundException' });
      assert.equal((await kms.describeKey({ KeyId: kept.KeyId! })).KeyMetadata!.KeyState, 'Disabled');
      assert.equal((await kms.describeKey({ KeyId: later.KeyId! })).KeyMetadata!.KeyState, 'PendingDeletion');
      const ids = (await kms.listKeys({})).Keys!.map((k) => k.KeyId);
      assert.ok(!ids.includes(doomed.KeyId));
      const audit = readAuditText(dataDir);
      assert.match(audit, new RegExp(`"eventName":"DeleteKey".*${doomed.KeyId}`));

      // Down over the due date: the first tick after start deletes the other key.
      await s.close();
      offset = 31 * DAY;
      s = await startInProcess(config, { clock, announce: quiet });
      await s.jobs.tick();
      kms = inProcessClient(s.url, dataDir, creds);
      await assert.rejects(kms.describeKey({ KeyId: later.KeyId! }), { name: 'NotFoundException' });
      assert.equal((await kms.describeKey({ KeyId: kept.KeyId! })).KeyMetadata!.KeyState, 'Disabled');
    } finally {
      await s.close();
      rmSync(base, { recursive: true, force: true });
    }
  });
});
