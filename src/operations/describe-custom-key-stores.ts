import { CustomKeyStoreNotFoundException, ValidationException } from '../errors/index.js';
import { authorizeAccount, decodeMarker, page } from './common.js';
import type { Operation } from './context.js';
import { customKeyStoreEntry, type CustomKeyStoreEntry } from './custom-key-store-common.js';

export interface DescribeCustomKeyStoresInput {
  customKeyStoreId?: string;
  customKeyStoreName?: string;
  limit?: number;
  marker?: string;
}

export interface DescribeCustomKeyStoresOutput {
  customKeyStores: CustomKeyStoreEntry[];
  nextMarker?: string;
  truncated: boolean;
}

export const describeCustomKeyStores: Operation<DescribeCustomKeyStoresInput, DescribeCustomKeyStoresOutput> = {
  name: 'DescribeCustomKeyStores',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'DescribeCustomKeyStores', audit);
    if (input.customKeyStoreId !== undefined && input.customKeyStoreName !== undefined) {
      throw new ValidationException('Specify either CustomKeyStoreId or CustomKeyStoreName, not both.');
    }
    const all = await svc.customKeyStores.list({ accountId: call.principal.accountId, region: call.region });
    let stores = all;
    if (input.customKeyStoreId !== undefined) {
      stores = all.filter((s) => s.customKeyStoreId === input.customKeyStoreId);
      if (!stores.length) throw new CustomKeyStoreNotFoundException(`Custom key store with ID ${input.customKeyStoreId} was not found.`);
    } else if (input.customKeyStoreName !== undefined) {
      stores = all.filter((s) => s.name === input.customKeyStoreName);
      if (!stores.length) throw new CustomKeyStoreNotFoundException(`Custom key store with name ${input.customKeyStoreName} was not found.`);
    }
    const after = decodeMarker(input.marker);
    const limit = input.limit ?? 100;
    const rest = after === undefined ? stores : stores.filter((s) => s.customKeyStoreId > after);
    const p = page(rest.slice(0, limit + 1), limit, (s) => s.customKeyStoreId);
    return { customKeyStores: p.items.map(customKeyStoreEntry), nextMarker: p.nextMarker, truncated: p.truncated };
  },
};
