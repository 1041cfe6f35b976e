import { CustomKeyStoreInvalidStateException } from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { storeInScope } from './custom-key-store-common.js';

/**
 * Connects the store: the HSM's token is opened and logged in (each server process opens its own
 * session on first use). As in AWS the call succeeds once the attempt is made; a failed attempt
 * leaves the store FAILED with a ConnectionErrorCode that DescribeCustomKeyStores shows, and a
 * FAILED store must be disconnected before it is connected again.
 */
export const connectCustomKeyStore: Operation<{ customKeyStoreId: string }, Record<string, never>> = {
  name: 'ConnectCustomKeyStore',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'ConnectCustomKeyStore', audit);
    audit.detail('customKeyStoreId', input.customKeyStoreId);
    const store = await storeInScope(svc, call, input.customKeyStoreId);
    if (store.connectionState === 'CONNECTED') return {};
    if (store.connectionState === 'FAILED' || store.connectionState === 'DISCONNECTING') {
      throw new CustomKeyStoreInvalidStateException(
        `Custom key store ${store.customKeyStoreId} has ConnectionState ${store.connectionState}; disconnect it (DisconnectCustomKeyStore) before connecting it again.`,
      );
    }
    const problem = store.passwordMatches ? await svc.hsms.check(store.cloudHsmClusterId) : 'INVALID_CREDENTIALS';
    await svc.customKeyStores.storage.transaction(async (tx) => {
      const current = await svc.customKeyStores.get(store.customKeyStoreId, tx);
      if (!current) return;
      const next = structuredClone(current);
      next.connectionState = problem === undefined ? 'CONNECTED' : 'FAILED';
      if (problem === undefined) delete next.connectionErrorCode;
      else next.connectionErrorCode = problem;
      await svc.customKeyStores.put(tx, next, current);
    });
    audit.detail('connectionState', problem === undefined ? 'CONNECTED' : 'FAILED');
    if (problem !== undefined) audit.detail('connectionErrorCode', problem);
    return {};
  },
};
