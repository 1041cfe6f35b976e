import { randomBytes } from 'node:crypto';
import {
  CloudHsmClusterInUseException, CloudHsmClusterNotActiveException, CustomKeyStoreNameInUseException, LimitExceededException,
  UnsupportedOperationException, ValidationException,
} from '../errors/index.js';
import { MAX_CUSTOM_KEY_STORES, type CustomKeyStoreRecord } from '../keys/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { assertDeclaredHsm, assertTrustAnchor } from './custom-key-store-common.js';

export interface CreateCustomKeyStoreInput {
  customKeyStoreName: string;
  cloudHsmClusterId?: string;
  trustAnchorCertificate?: string;
  keyStorePassword?: string;
  customKeyStoreType?: string;
}

/**
 * An AWS_CLOUDHSM custom key store over a declared HSM. It starts DISCONNECTED, as in AWS; the
 * KeyStorePassword is checked against the HSM's user PIN and not stored (keys/custom-key-stores.ts).
 */
export const createCustomKeyStore: Operation<CreateCustomKeyStoreInput, { customKeyStoreId: string }> = {
  name: 'CreateCustomKeyStore',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'CreateCustomKeyStore', audit);
    const type = input.customKeyStoreType ?? 'AWS_CLOUDHSM';
    if (type !== 'AWS_CLOUDHSM') throw new UnsupportedOperationException(`Custom key stores of type ${type} are not supported by this server; use AWS_CLOUDHSM.`);
    const missing = (['cloudHsmClusterId', 'trustAnchorCertificate', 'keyStorePassword'] as const)
      .filter((f) => input[f] === undefined)
      .map((f) => f.charAt(0).toUpperCase() + f.slice(1));
    if (missing.length) throw new ValidationException(`${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} required for a custom key store of type AWS_CLOUDHSM.`);
    const cluster = input.cloudHsmClusterId!;
    audit.detail('customKeyStoreName', input.customKeyStoreName);
    audit.detail('cloudHsmClusterId', cluster);
    assertDeclaredHsm(svc, cluster);
    assertTrustAnchor(input.trustAnchorCertificate!);
    const scope = { accountId: call.principal.accountId, region: call.region };

    // Reach the token before writing anything: AWS checks that the cluster is active.
    const problem = await svc.hsms.check(cluster, input.keyStorePassword);
    if (problem !== undefined && problem !== 'INVALID_CREDENTIALS') {
      throw new CloudHsmClusterNotActiveException(`The HSM ${cluster} is not reachable (${problem}).`);
    }

    const id = `cks-${randomBytes(9).toString('hex').slice(0, 17)}`;
    await svc.customKeyStores.storage.transaction(async (tx) => {
      const existing = await svc.customKeyStores.list(scope, tx);
      if (existing.some((s) => s.name === input.customKeyStoreName)) {
        throw new CustomKeyStoreNameInUseException(`A custom key store named ${input.customKeyStoreName} already exists in this account and Region.`);
      }
      if (existing.length >= MAX_CUSTOM_KEY_STORES) throw new LimitExceededException(`An account can have at most ${MAX_CUSTOM_KEY_STORES} custom key stores per Region.`);
      if (await svc.customKeyStores.storeForCluster(cluster, tx)) {
        throw new CloudHsmClusterInUseException(`The HSM ${cluster} is already associated with a custom key store.`);
      }
      const record: CustomKeyStoreRecord = {
        customKeyStoreId: id,
        accountId: scope.accountId,
        region: scope.region,
        name: input.customKeyStoreName,
        type: 'AWS_CLOUDHSM',
        cloudHsmClusterId: cluster,
        trustAnchorCertificate: input.trustAnchorCertificate!,
        passwordMatches: problem === undefined,
        connectionState: 'DISCONNECTED',
        createdAt: svc.clock.now(),
      };
      await svc.customKeyStores.put(tx, record);
    });
    audit.detail('customKeyStoreId', id);
    return { customKeyStoreId: id };
  },
};
