import { assertNotPendingDeletion } from '../keys/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';

export interface UpdateKeyDescriptionInput {
  keyId: string;
  description: string;
}

export const updateKeyDescription: Operation<UpdateKeyDescriptionInput, Record<string, never>> = {
  name: 'UpdateKeyDescription',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'UpdateKeyDescription', audit);
    await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      k.description = input.description;
    });
    return {};
  },
};
