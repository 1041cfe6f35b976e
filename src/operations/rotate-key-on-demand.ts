import { KMSInvalidStateException, LimitExceededException, UnsupportedOperationException } from '../errors/index.js';
import { assertNotPendingDeletion, rotationOf, type KeyRecord } from '../keys/index.js';
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
      if (k.origin === 'EXTERNAL') {
        version = rotateToImported(k, now);
      } else {
        version = await addVersion(svc, k, tx, 'ON_DEMAND', now);
      }
      setRotation(k, (r) => {
        r.onDemandCount += 1;
      });
    });
    audit.key(key.arn, version);
    audit.detail('rotationType', 'ON_DEMAND');
    return { keyId: key.arn };
  },
};

/**
 * An EXTERNAL key rotates to the material imported with ImportType NEW_KEY_MATERIAL; without such
 * material there is nothing to rotate to (Keyhold never generates material for an imported key).
 */
function rotateToImported(k: KeyRecord, now: number): number {
  const pending = k.pendingRotationVersion;
  const v = pending === undefined ? undefined : k.versions.find((x) => x.version === pending);
  if (!v?.imported?.present) {
    throw new UnsupportedOperationException(`${k.arn} has imported key material and no new key material to rotate to: import it with ImportType NEW_KEY_MATERIAL first.`);
  }
  k.versions = k.versions.map((x) => (x.version === v.version ? { ...x, rotationType: 'ON_DEMAND' as const, createdAt: now } : x));
  k.currentVersion = v.version;
  delete k.pendingRotationVersion;
  return v.version;
}
