import type { Operation } from './context.js';
import { authorizeKey } from './common.js';
import { keyMetadata, type KeyMetadata } from './key-metadata.js';
import { keyStoreView } from './custom-key-store-common.js';

export interface DescribeKeyInput {
  keyId: string;
  grantTokens?: string[];
}

export const describeKey: Operation<DescribeKeyInput, { keyMetadata: KeyMetadata }> = {
  name: 'DescribeKey',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: true });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'DescribeKey', audit);
    return { keyMetadata: keyMetadata(key, await keyStoreView(svc, key)) };
  },
};
