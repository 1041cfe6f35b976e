import { NotFoundException } from '../errors/index.js';
import { aliasArn } from '../keys/index.js';
import { authorizeKey, validateAliasName } from './common.js';
import type { Operation } from './context.js';

export const deleteAlias: Operation<{ aliasName: string }, Record<string, never>> = {
  name: 'DeleteAlias',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    validateAliasName(input.aliasName);
    await svc.keys.storage.transaction(async (tx) => {
      const alias = await svc.keys.getAlias(call, input.aliasName, tx);
      if (!alias) throw new NotFoundException(`Alias ${aliasArn(call.region, call.principal.accountId, input.aliasName)} is not found.`);
      const key = await svc.keys.getKey(alias.targetKeyId, tx);
      if (key) {
        audit.key(key.arn);
        await authorizeKey(svc, call, key, 'DeleteAlias', audit);
      }
      await svc.keys.deleteAlias(tx, alias);
    });
    audit.detail('aliasName', input.aliasName);
    return {};
  },
};
