import { DAY_MS, rotationOf } from '../keys/index.js';
import type { Services } from './context.js';
import { addVersion, setRotation } from './rotation-common.js';

/**
 * Carries out automatic rotations whose date has passed: one new backing version per due key and
 * the next date a full period from now, in one transaction per key. The record is re-read and
 * re-checked inside that transaction, so two processes sharing a store rotate a key once. A key
 * overdue by several periods rotates once (a missed rotation is not made up with several), and a
 * clock stepped backwards finds nothing due, so nothing rotates early.
 */
export async function rotateDueKeys(svc: Services, batch = 100): Promise<string[]> {
  const now = svc.clock.now();
  const rotated: string[] = [];
  for (const keyId of await svc.keys.dueForRotation(now, batch)) {
    const done = await svc.keys.storage.transaction(async (tx) => {
      const current = await svc.keys.getKey(keyId, tx);
      if (!current || current.state !== 'Enabled') return undefined;
      const r = rotationOf(current);
      if (!r.enabled || r.nextRotationAt === undefined || r.nextRotationAt > now) return undefined;
      const k = structuredClone(current);
      const version = await addVersion(svc, k, tx, 'AUTOMATIC', now);
      setRotation(k, (s) => {
        s.nextRotationAt = now + s.periodDays * DAY_MS;
      });
      await svc.keys.putKey(tx, k, current);
      return { arn: k.arn, version, next: rotationOf(k).nextRotationAt! };
    });
    if (done) {
      rotated.push(done.arn);
      await svc.audit.record({
        eventTime: new Date(now).toISOString(),
        eventName: 'RotateKey',
        eventSource: 'kms.amazonaws.com',
        awsRegion: done.arn.split(':')[3] ?? '',
        requestId: `job-rotation-${keyId}-${done.version}`,
        sourceIPAddress: 'kms.amazonaws.com',
        userAgent: 'keyhold-jobs',
        readOnly: false,
        resources: [{ arn: done.arn, keyVersion: done.version }],
        details: { reason: 'automatic rotation date passed', rotationType: 'AUTOMATIC', nextRotationDate: new Date(done.next).toISOString() },
      });
    }
  }
  return rotated;
}
