import {
  CloudHsmClusterNotActiveException, CloudHsmClusterNotRelatedException, CustomKeyStoreInvalidStateException,
  CustomKeyStoreNameInUseException, UnsupportedOperationException,
} from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { assertDeclaredHsm, storeInScope } from './custom-key-store-common.js';

export interface UpdateCustomKeyStoreInput {
  customKeyStoreId: string;
  newCustomKeyStoreName?: string;
  keyStorePassword?: string;
  cloudHsmClusterId?: string;
  xksProxyUriEndpoint?: string;
  xksProxyUriPath?: string;
}

/**
 * Renames a store (connected or not); tells it a new KeyStorePassword or moves it to another declared
 * HSM while it is DISCONNECTED, as AWS requires. Another HSM must hold the store's keys (a token
 * restored from the same backup); Keyhold cannot verify that lineage, only that the HSM is declared,
 * reachable and not another store's.
 */
export const updateCustomKeyStore: Operation<UpdateCustomKeyStoreInput, Record<string, never>> = {
  name: 'UpdateCustomKeyStore',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'UpdateCustomKeyStore', audit);
    audit.detail('customKeyStoreId', input.customKeyStoreId);
    if (input.xksProxyUriEndpoint !== undefined || input.xksProxyUriPath !== undefined) {
      throw new UnsupportedOperationException('External key store (XKS) settings do not apply to an AWS_CLOUDHSM custom key store.');
    }
    const store = await storeInScope(svc, call, input.customKeyStoreId);
    const scope = { accountId: call.principal.accountId, region: call.region };
    if ((input.keyStorePassword !== undefined || input.cloudHsmClusterId !== undefined) && store.connectionState !== 'DISCONNECTED') {
      throw new CustomKeyStoreInvalidStateException(
        `Custom key store ${store.customKeyStoreId} has ConnectionState ${store.connectionState}; the KeyStorePassword and CloudHsmClusterId can change only while it is DISCONNECTED.`,
      );
    }
    const cluster = input.cloudHsmClusterId ?? store.cloudHsmClusterId;
    if (input.cloudHsmClusterId !== undefined) {
      audit.detail('cloudHsmClusterId', cluster);
      assertDeclaredHsm(svc, cluster);
    }
    let passwordMatches: boolean | undefined;
    if (input.keyStorePassword !== undefined || input.cloudHsmClusterId !== undefined) {
      const problem = await svc.hsms.check(cluster, input.keyStorePassword);
      if (problem !== undefined && problem !== 'INVALID_CREDENTIALS') {
        throw new CloudHsmClusterNotActiveException(`The HSM ${cluster} is not reachable (${problem}).`);
      }
      if (input.keyStorePassword !== undefined) passwordMatches = problem === undefined;
    }
    await svc.customKeyStores.storage.transaction(async (tx) => {
      const current = await svc.customKeyStores.get(store.customKeyStoreId, tx);
      if (!current) return;
      const next = structuredClone(current);
      if (input.newCustomKeyStoreName !== undefined && input.newCustomKeyStoreName !== current.name) {
        const others = await svc.customKeyStores.list(scope, tx);
        if (others.some((s) => s.name === input.newCustomKeyStoreName)) {
          throw new CustomKeyStoreNameInUseException(`A custom key store named ${input.newCustomKeyStoreName} already exists in this account and Region.`);
        }
        next.name = input.newCustomKeyStoreName;
        audit.detail('newCustomKeyStoreName', next.name);
      }
      if (cluster !== current.cloudHsmClusterId) {
        const owner = await svc.customKeyStores.storeForCluster(cluster, tx);
        if (owner && owner !== current.customKeyStoreId) {
          throw new CloudHsmClusterNotRelatedException(`The HSM ${cluster} belongs to another custom key store.`);
        }
        next.cloudHsmClusterId = cluster;
      }
      if (passwordMatches !== undefined) next.passwordMatches = passwordMatches;
      await svc.customKeyStores.put(tx, next, current);
    });
    return {};
  },
};
