import { flagDependentBackups } from './backup-common.js';
import { assertNotPendingDeletion } from '../keys/index.js';
import { KMSInvalidStateException } from '../errors/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';
import type { KeyIdInput } from './enable-key.js';

export const disableKey: Operation<KeyIdInput, Record<string, never>> = {
  name: 'DisableKey',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'DisableKey', audit);
    await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      if (k.state === 'PendingImport') throw new KMSInvalidStateException(`${k.arn} is pending import.`);
      k.state = 'Disabled';
    });
    await flagDependentBackups(svc, call.accountId, key.arn, (n, v) => audit.detail(n, v));
    return {};
  },
};
