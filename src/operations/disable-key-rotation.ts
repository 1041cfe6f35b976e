import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';
import type { KeyIdInput } from './enable-key.js';
import { assertRotationConfigurable, setRotation } from './rotation-common.js';

export const disableKeyRotation: Operation<KeyIdInput, Record<string, never>> = {
  name: 'DisableKeyRotation',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'DisableKeyRotation', audit);
    await updateKey(svc, key.keyId, (k) => {
      assertRotationConfigurable(k);
      // The period is kept so a later EnableKeyRotation without one is the only thing that resets it.
      setRotation(k, (r) => {
        r.enabled = false;
        delete r.nextRotationAt;
      });
    });
    return {};
  },
};
