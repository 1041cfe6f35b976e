import { assertNotPendingDeletion, rotationOf } from '../keys/index.js';
import { authorizeKey } from './common.js';
import type { Operation } from './context.js';
import type { KeyIdInput } from './enable-key.js';

export interface GetKeyRotationStatusOutput {
  keyRotationEnabled: boolean;
  keyId: string;
  rotationPeriodInDays?: number;
  nextRotationDate?: Date;
  onDemandRotationStartDate?: Date;
}

export const getKeyRotationStatus: Operation<KeyIdInput, GetKeyRotationStatusOutput> = {
  name: 'GetKeyRotationStatus',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'GetKeyRotationStatus', audit);
    assertNotPendingDeletion(key);
    const r = rotationOf(key);
    const lastOnDemand = key.versions.filter((v) => v.rotationType === 'ON_DEMAND').at(-1);
    // As AWS does, the period and next date are reported only while automatic rotation is on.
    return {
      keyRotationEnabled: r.enabled,
      keyId: key.arn,
      rotationPeriodInDays: r.enabled ? r.periodDays : undefined,
      nextRotationDate: r.enabled && r.nextRotationAt !== undefined ? new Date(r.nextRotationAt) : undefined,
      onDemandRotationStartDate: lastOnDemand ? new Date(lastOnDemand.createdAt) : undefined,
    };
  },
};
