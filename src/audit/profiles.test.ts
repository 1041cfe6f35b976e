import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditDb } from './audit-db.js';
import type { AuditEvent } from './event.js';
import { networkOf, ProfileDetectors } from './profiles.js';

const ARN = 'arn:aws:iam::111122223333:user/alice';
const KEY = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function event(t: number, ip: string, name = 'Encrypt'): string {
  const e: AuditEvent = {
    eventId: randomUUID(), eventTime: new Date(t).toISOString(), eventName: name, eventSource: 'kms.amazonaws.com', awsRegion: 'us-east-1',
    requestId: randomUUID(), sourceIPAddress: ip, userAgent: 'unit', readOnly: false,
    principal: { type: 'IAMUser', arn: ARN, accountId: '111122223333', accessKeyId: 'AKIAUNIT', userName: 'alice', isRoot: false },
    accessKeyId: 'AKIAUNIT', resources: [{ arn: KEY }],
  };
  return JSON.stringify(e);
}

describe('profile detectors', () => {
  it('networkOf: IPv4 /24, IPv6 /64', () => {
    assert.equal(networkOf('10.1.2.3'), '10.1.2.0/24');
    assert.equal(networkOf('2001:db8:0:1::5'), '2001:db8:0:1::/64');
    assert.equal(networkOf('2001:DB8::1'), '2001:db8:0:0::/64');
  });

  it('examines each event once across runs and instances (the watermark), and old events only train', () => {
    const dir = mkdtempSync(join(tmpdir(), 'profiles-'));
    try {
      const db = AuditDb.open(join(dir, 'audit.db'));
      const now = Date.now();
      db.append([event(now - 2 * 86_400_000, '10.0.0.1'), event(now - 2 * 86_400_000, '10.9.9.9')]);
      const p = new ProfileDetectors(db);
      // Old events: learned, not alerted.
      assert.deepEqual(p.run(now, 100, []).alerts, []);
      db.append([event(now, '10.0.0.2'), event(now, '10.0.0.2')]);
      const first = p.run(now, 100, []);
      assert.deepEqual(first.alerts.map((a) => [a.rule, a.severity]), [['new-source-ip', 'low']]);
      // A second instance (a restarted server, another cluster process) does not examine them again.
      assert.deepEqual(new ProfileDetectors(db).run(now, 100, []).alerts, []);
      // Chunked: `more` says there is more to examine.
      db.append([event(now, '192.0.2.1'), event(now, '192.0.2.2'), event(now, '192.0.2.3')]);
      const chunk = p.run(now, 2, []);
      assert.equal(chunk.more, true);
      assert.deepEqual(chunk.alerts.map((a) => a.severity), ['medium', 'low']);
      assert.equal(p.run(now, 2, []).alerts.length, 1);
      // Stored with the alerts table.
      assert.equal(db.listAlerts({ accountId: '111122223333', includeAcknowledged: true, limit: 10 }).length, 4);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
