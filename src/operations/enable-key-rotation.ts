import { validationError } from '../errors/index.js';
import { DAY_MS, DEFAULT_ROTATION_PERIOD_DAYS } from '../keys/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';
import { assertRotationConfigurable, MAX_ROTATION_PERIOD_DAYS, MIN_ROTATION_PERIOD_DAYS, setRotation } from './rotation-common.js';

export interface EnableKeyRotationInput {
  keyId: string;
  rotationPeriodInDays?: number;
}

export const enableKeyRotation: Operation<EnableKeyRotationInput, Record<string, never>> = {
  name: 'EnableKeyRotation',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const days = input.rotationPeriodInDays ?? DEFAULT_ROTATION_PERIOD_DAYS;
    // The wire schema checks this too; repeated here for callers that do not come through it.
    if (!Number.isInteger(days) || days < MIN_ROTATION_PERIOD_DAYS) {
      throw validationError([`Value '${days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to ${MIN_ROTATION_PERIOD_DAYS}`]);
    }
    if (days > MAX_ROTATION_PERIOD_DAYS) {
      throw validationError([`Value '${days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to ${MAX_ROTATION_PERIOD_DAYS}`]);
    }
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'EnableKeyRotation', audit);
    const next = svc.clock.now() + days * DAY_MS;
    await updateKey(svc, key.keyId, (k) => {
      assertRotationConfigurable(k);
      setRotation(k, (r) => {
        r.enabled = true;
        r.periodDays = days;
        r.nextRotationAt = next;
      });
    });
    audit.detail('rotationPeriodInDays', days);
    audit.detail('nextRotationDate', new Date(next).toISOString());
    return {};
  },
};
