import { CustomKeyStoreHasCMKsException, CustomKeyStoreInvalidStateException } from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { storeInScope } from './custom-key-store-common.js';

/** Deletes a DISCONNECTED store that holds no KMS keys (keys pending deletion count), as AWS does. */
export const deleteCustomKeyStore: Operation<{ customKeyStoreId: string }, Record<string, never>> = {
  name: 'DeleteCustomKeyStore',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'DeleteCustomKeyStore', audit);
    audit.detail('customKeyStoreId', input.customKeyStoreId);
    const store = await storeInScope(svc, call, input.customKeyStoreId);
    await svc.customKeyStores.storage.transaction(async (tx) => {
      const current = await svc.customKeyStores.get(store.customKeyStoreId, tx);
      if (!current) return;
      if (current.connectionState !== 'DISCONNECTED') {
        throw new CustomKeyStoreInvalidStateException(
          `Custom key store ${current.customKeyStoreId} has ConnectionState ${current.connectionState}; disconnect it before deleting it.`,
        );
      }
      if ((await svc.customKeyStores.keyCount(current.customKeyStoreId, tx)) > 0) {
        throw new CustomKeyStoreHasCMKsException(
          `Custom key store ${current.customKeyStoreId} contains KMS keys. Schedule their deletion and wait until they are deleted before deleting the key store.`,
        );
      }
      await svc.customKeyStores.delete(tx, current);
    });
    return {};
  },
};
