import type { Tag } from '../types/index.js';
import { authorizeKey, decodeMarker, page } from './common.js';
import type { Operation } from './context.js';

export interface ListResourceTagsOutput {
  tags: Tag[];
  nextMarker?: string;
  truncated: boolean;
}

export const listResourceTags: Operation<{ keyId: string; limit?: number; marker?: string }, ListResourceTagsOutput> = {
  name: 'ListResourceTags',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'ListResourceTags', audit);
    const limit = input.limit ?? 50;
    const after = decodeMarker(input.marker);
    const sorted = [...key.tags].sort((a, b) => (a.tagKey < b.tagKey ? -1 : a.tagKey > b.tagKey ? 1 : 0));
    const rows = sorted.filter((t) => after === undefined || t.tagKey > after);
    const p = page(rows, limit, (t) => t.tagKey);
    return { tags: p.items, nextMarker: p.nextMarker, truncated: p.truncated };
  },
};
