import { createHash } from 'node:crypto';
import { assertNotPendingDeletion } from '../keys/index.js';
import { parsePolicy, policyWidening, type PolicyDocument } from '../policy/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';
import { assertNoLockout } from './create-key.js';
import { assertSodForKeyPolicy } from './sod.js';
import { assertPolicyName } from './get-key-policy.js';

export interface PutKeyPolicyInput {
  keyId: string;
  policyName?: string;
  policy: string;
  bypassPolicyLockoutSafetyCheck?: boolean;
}

const digest = (s: string) => createHash('sha256').update(s).digest('hex');

export const putKeyPolicy: Operation<PutKeyPolicyInput, Record<string, never>> = {
  name: 'PutKeyPolicy',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'PutKeyPolicy', audit);
    assertPolicyName(input.policyName);
    const doc = parsePolicy(input.policy, { requirePrincipal: true });
    await assertSodForKeyPolicy(svc, call.accountId, key.arn, doc, key.grants ?? []);
    if (!input.bypassPolicyLockoutSafetyCheck) assertNoLockout(input.policy, call.principal, key.arn);
    let before = '';
    await updateKey(svc, key.keyId, (k) => {
      assertNotPendingDeletion(k);
      before = k.policy;
      k.policy = input.policy; // replaced atomically: a failed call leaves the old policy in force
    });
    audit.detail('policySha256Before', digest(before));
    // What the new policy allows that the old did not: the key-policy-widened alert reads this.
    let previous: PolicyDocument | undefined;
    try {
      previous = before ? parsePolicy(before, { requirePrincipal: true }) : undefined;
    } catch {
      previous = undefined;
    }
    const widening = policyWidening(previous, doc);
    if (widening) audit.detail('policyWidening', widening);
    audit.detail('policySha256After', digest(input.policy));
    if (input.bypassPolicyLockoutSafetyCheck) audit.detail('bypassPolicyLockoutSafetyCheck', true);
    return {};
  },
};
