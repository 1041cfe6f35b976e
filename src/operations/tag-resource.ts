import { assertNotPendingDeletion } from '../keys/index.js';
import type { Tag } from '../types/index.js';
import { authorizeKey, mergeTags, updateKey, validateTags } from './common.js';
import type { Operation } from './context.js';

export const tagResource: Operation<{ keyId: string; tags: Tag[] }, Record<string, never>> = {
  name: 'TagResource',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    validateTags(input.tags);
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'TagResource', audit);
    await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      k.tags = mergeTags(k.tags, input.tags);
    });
    audit.detail('tagKeys', input.tags.map((t) => t.tagKey));
    return {};
  },
};
