import { NotFoundException, ValidationException } from '../errors/index.js';
import { aliasArn, assertNotPendingDeletion } from '../keys/index.js';
import { authorizeKey, validateAliasName } from './common.js';
import type { Operation } from './context.js';
import type { AliasInput } from './create-alias.js';

export const updateAlias: Operation<AliasInput, Record<string, never>> = {
  name: 'UpdateAlias',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    validateAliasName(input.aliasName);
    const target = await svc.keys.resolve(input.targetKeyId, call, { allowAlias: false });
    audit.key(target.arn);
    await authorizeKey(svc, call, target, 'UpdateAlias', audit);
    assertNotPendingDeletion(target);
    await svc.keys.storage.transaction(async (tx) => {
      const alias = await svc.keys.getAlias(call, input.aliasName, tx);
      if (!alias) throw new NotFoundException(`Alias ${aliasArn(call.region, call.principal.accountId, input.aliasName)} is not found.`);
      const previous = await svc.keys.getKey(alias.targetKeyId, tx);
      if (previous) {
        audit.key(previous.arn);
        await authorizeKey(svc, call, previous, 'UpdateAlias', audit);
        if (previous.keyUsage !== target.keyUsage || previous.keySpec !== target.keySpec) {
          throw new ValidationException('The new target key must have the same key usage and key spec as the current one.');
        }
      }
      const previousTarget = alias.targetKeyId;
      alias.targetKeyId = target.keyId;
      alias.updatedAt = svc.clock.now();
      await svc.keys.updateAlias(tx, alias, previousTarget);
    });
    audit.detail('aliasName', input.aliasName);
    return {};
  },
};
