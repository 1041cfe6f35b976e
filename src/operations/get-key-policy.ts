import { NotFoundException } from '../errors/index.js';
import { authorizeKey } from './common.js';
import type { Operation } from './context.js';

/** KMS keys have exactly one policy, named `default`. */
export const POLICY_NAME = 'default';

export function assertPolicyName(name: string | undefined): void {
  if (name !== undefined && name !== POLICY_NAME) throw new NotFoundException(`No such policy exists: '${name}'. The only policy name is 'default'.`);
}

export const getKeyPolicy: Operation<{ keyId: string; policyName?: string }, { policy: string; policyName: string }> = {
  name: 'GetKeyPolicy',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'GetKeyPolicy', audit);
    assertPolicyName(input.policyName);
    return { policy: key.policy, policyName: POLICY_NAME };
  },
};
