import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { storeInScope } from './custom-key-store-common.js';

/**
 * Disconnects the store: its keys become Unavailable and every cryptographic operation with them
 * fails with KMSInvalidStateException until it is connected again, in every server process (the
 * state is stored). Token sessions stay open for the seal and other stores.
 */
export const disconnectCustomKeyStore: Operation<{ customKeyStoreId: string }, Record<string, never>> = {
  name: 'DisconnectCustomKeyStore',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'DisconnectCustomKeyStore', audit);
    audit.detail('customKeyStoreId', input.customKeyStoreId);
    const store = await storeInScope(svc, call, input.customKeyStoreId);
    await svc.customKeyStores.storage.transaction(async (tx) => {
      const current = await svc.customKeyStores.get(store.customKeyStoreId, tx);
      if (!current) return;
      const next = structuredClone(current);
      next.connectionState = 'DISCONNECTED';
      delete next.connectionErrorCode;
      await svc.customKeyStores.put(tx, next, current);
    });
    return {};
  },
};
