import { TagException } from '../errors/index.js';
import { assertNotPendingDeletion } from '../keys/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';

export const untagResource: Operation<{ keyId: string; tagKeys: string[] }, Record<string, never>> = {
  name: 'UntagResource',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    if (input.tagKeys.some((t) => t.toLowerCase().startsWith('aws:'))) throw new TagException('Tags beginning with aws: are reserved');
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'UntagResource', audit);
    const remove = new Set(input.tagKeys);
    await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      k.tags = k.tags.filter((t) => !remove.has(t.tagKey));
    });
    audit.detail('tagKeys', input.tagKeys);
    return {};
  },
};
