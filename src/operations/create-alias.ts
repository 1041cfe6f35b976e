import { AlreadyExistsException } from '../errors/index.js';
import { aliasArn, assertNotPendingDeletion } from '../keys/index.js';
import { authorizeKey, validateAliasName } from './common.js';
import type { Operation } from './context.js';

export interface AliasInput {
  aliasName: string;
  targetKeyId: string;
}

export const createAlias: Operation<AliasInput, Record<string, never>> = {
  name: 'CreateAlias',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    validateAliasName(input.aliasName);
    const key = await svc.keys.resolve(input.targetKeyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'CreateAlias', audit);
    assertNotPendingDeletion(key);
    const now = svc.clock.now();
    const created = await svc.keys.storage.transaction(async (tx) => {
      // Re-check inside the transaction: the key may have been scheduled for deletion meanwhile.
      const current = await svc.keys.getKey(key.keyId, tx);
      if (!current) throw new AlreadyExistsException('The key no longer exists.');
      assertNotPendingDeletion(current);
      return svc.keys.createAlias(tx, {
        aliasName: input.aliasName, accountId: key.accountId, region: key.region, targetKeyId: key.keyId, createdAt: now, updatedAt: now,
      });
    });
    if (!created) {
      throw new AlreadyExistsException(`An alias with the name ${aliasArn(call.region, call.principal.accountId, input.aliasName)} already exists`);
    }
    audit.detail('aliasName', input.aliasName);
    return {};
  },
};
