import { assertNotPendingDeletion } from '../keys/index.js';
import { KMSInvalidStateException } from '../errors/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';

export interface KeyIdInput {
  keyId: string;
}

export const enableKey: Operation<KeyIdInput, Record<string, never>> = {
  name: 'EnableKey',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'EnableKey', audit);
    await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      if (k.state === 'PendingImport') throw new KMSInvalidStateException(`${k.arn} is pending import.`);
      k.state = 'Enabled';
    });
    return {};
  },
};
