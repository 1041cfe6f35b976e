import { KMSInvalidStateException } from '../errors/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';
import type { KeyIdInput } from './enable-key.js';

export const cancelKeyDeletion: Operation<KeyIdInput, { keyId: string }> = {
  name: 'CancelKeyDeletion',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'CancelKeyDeletion', audit);
    await updateKey(svc, key.keyId, (k) => {
      if (k.state !== 'PendingDeletion') throw new KMSInvalidStateException(`${k.arn} is not pending deletion.`);
      // AWS returns a cancelled key to Disabled, never straight to Enabled.
      // An imported key whose current material is gone goes back to PendingImport.
      const current = k.versions.find((v) => v.version === k.currentVersion);
      k.state = k.origin === 'EXTERNAL' && !current?.imported?.present ? 'PendingImport' : 'Disabled';
      delete k.deletionDate;
      delete k.pendingWindowInDays;
    });
    return { keyId: key.arn };
  },
};
