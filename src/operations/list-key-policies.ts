import { authorizeKey } from './common.js';
import type { Operation } from './context.js';
import { POLICY_NAME } from './get-key-policy.js';

export const listKeyPolicies: Operation<
  { keyId: string; limit?: number; marker?: string },
  { policyNames: string[]; truncated: boolean; nextMarker?: string }
> = {
  name: 'ListKeyPolicies',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'ListKeyPolicies', audit);
    return { policyNames: [POLICY_NAME], truncated: false };
  },
};
