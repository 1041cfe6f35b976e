import { keyArn } from '../keys/index.js';
import type { Operation } from './context.js';
import { authorizeAccount, decodeMarker, page } from './common.js';

export interface ListKeysInput {
  limit?: number;
  marker?: string;
}

export interface ListKeysOutput {
  keys: { keyId: string; keyArn: string }[];
  nextMarker?: string;
  truncated: boolean;
}

export const listKeys: Operation<ListKeysInput, ListKeysOutput> = {
  name: 'ListKeys',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'ListKeys', audit);
    const limit = input.limit ?? 100;
    const after = decodeMarker(input.marker);
    const ids = await svc.keys.listKeyIds(call, after, limit + 1);
    const p = page(ids, limit, (id) => id);
    return {
      keys: p.items.map((keyId) => ({ keyId, keyArn: keyArn(call.region, call.principal.accountId, keyId) })),
      nextMarker: p.nextMarker,
      truncated: p.truncated,
    };
  },
};
