import type { EncryptionContext } from '../types/index.js';
import { throwIfDryRun, usableKeyFor } from './common.js';
import type { Operation } from './context.js';
import { assertSymmetricAlgorithm, encryptUnder } from './crypto-common.js';

export interface EncryptInput {
  keyId: string;
  plaintext: Buffer;
  encryptionContext?: EncryptionContext;
  grantTokens?: string[];
  encryptionAlgorithm?: string;
  dryRun?: boolean;
}

export interface EncryptOutput {
  ciphertextBlob: Buffer;
  keyId: string;
  encryptionAlgorithm: 'SYMMETRIC_DEFAULT';
}

export const encrypt: Operation<EncryptInput, EncryptOutput> = {
  name: 'Encrypt',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    audit.encryptionContext = input.encryptionContext;
    const key = await usableKeyFor(svc, call, input.keyId, 'Encrypt', audit);
    assertSymmetricAlgorithm(key, input.encryptionAlgorithm, 'Encrypt');
    throwIfDryRun(input.dryRun);
    const ciphertextBlob = await encryptUnder(svc, key, input.plaintext, input.encryptionContext, audit);
    return { ciphertextBlob, keyId: key.arn, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
  },
};
