import { flagDependentBackups } from './backup-common.js';
import { validationError } from '../errors/index.js';
import { assertNotPendingDeletion } from '../keys/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';

export interface ScheduleKeyDeletionInput {
  keyId: string;
  pendingWindowInDays?: number;
}

export interface ScheduleKeyDeletionOutput {
  keyId: string;
  deletionDate: Date;
  keyState: 'PendingDeletion';
  pendingWindowInDays: number;
}

/** AWS's waiting period: 7 to 30 days, default 30. Deletion is never immediate. */
export const MIN_PENDING_WINDOW_DAYS = 7;
export const MAX_PENDING_WINDOW_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

export const scheduleKeyDeletion: Operation<ScheduleKeyDeletionInput, ScheduleKeyDeletionOutput> = {
  name: 'ScheduleKeyDeletion',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const days = input.pendingWindowInDays ?? MAX_PENDING_WINDOW_DAYS;
    if (days < MIN_PENDING_WINDOW_DAYS) {
      throw validationError([`Value '${days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to ${MIN_PENDING_WINDOW_DAYS}`]);
    }
    if (days > MAX_PENDING_WINDOW_DAYS) {
      throw validationError([`Value '${days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to ${MAX_PENDING_WINDOW_DAYS}`]);
    }
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'ScheduleKeyDeletion', audit);
    const deletionDate = svc.clock.now() + days * DAY_MS;
    const updated = await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      k.state = 'PendingDeletion';
      k.deletionDate = deletionDate;
      k.pendingWindowInDays = days;
    });
    audit.detail('deletionDate', new Date(deletionDate).toISOString());
    await flagDependentBackups(svc, call.accountId, key.arn, (n, v) => audit.detail(n, v));
    return { keyId: updated.arn, deletionDate: new Date(deletionDate), keyState: 'PendingDeletion', pendingWindowInDays: days };
  },
};
