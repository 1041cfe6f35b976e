import { KMSInvalidStateException, LimitExceededException } from '../errors/index.js';
import { assertNotPendingDeletion, rotationOf } from '../keys/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';
import type { KeyIdInput } from './enable-key.js';
import { addVersion, MAX_ON_DEMAND_ROTATIONS, setRotation } from './rotation-common.js';

/** A new backing version now; the automatic schedule is left as it was, as AWS does. */
export const rotateKeyOnDemand: Operation<KeyIdInput, { keyId: string }> = {
  name: 'RotateKeyOnDemand',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'RotateKeyOnDemand', audit);
    const now = svc.clock.now();
    let version = 0;
    // Limit check, material and record in one transaction: two concurrent calls cannot both be the 25th.
    await updateKey(svc, key.keyId, async (k, tx) => {
      assertNotPendingDeletion(k);
      if (k.state !== 'Enabled') throw new KMSInvalidStateException(`${k.arn} is ${k.state === 'Disabled' ? 'disabled' : k.state.toLowerCase()}.`);
      if (rotationOf(k).onDemandCount >= MAX_ON_DEMAND_ROTATIONS) {
        throw new LimitExceededException(`${k.arn} has reached the limit of ${MAX_ON_DEMAND_ROTATIONS} on-demand rotations.`);
      }
      version = await addVersion(svc, k, tx, 'ON_DEMAND', now);
      setRotation(k, (r) => {
        r.onDemandCount += 1;
      });
    });
    audit.key(key.arn, version);
    audit.detail('rotationType', 'ON_DEMAND');
    return { keyId: key.arn };
  },
};
