import { ValidationException } from '../errors/index.js';
import type { DataKeySpec, EncryptionContext } from '../types/index.js';
import { throwIfDryRun, usableKeyFor } from './common.js';
import type { AuditDraft, CallContext, Operation, Services } from './context.js';
import { assertNoRecipient, assertSymmetricAlgorithm, generateDataKeyIn } from './crypto-common.js';

export interface GenerateDataKeyInput {
  keyId: string;
  encryptionContext?: EncryptionContext;
  numberOfBytes?: number;
  keySpec?: DataKeySpec;
  grantTokens?: string[];
  recipient?: unknown;
  dryRun?: boolean;
}

export interface GenerateDataKeyOutput {
  ciphertextBlob: Buffer;
  plaintext: Buffer;
  keyId: string;
}

function dataKeyLength(input: { numberOfBytes?: number; keySpec?: DataKeySpec }): number {
  if (input.numberOfBytes !== undefined && input.keySpec !== undefined) {
    throw new ValidationException('Please specify either number of bytes or key spec, not both.');
  }
  if (input.keySpec !== undefined) return input.keySpec === 'AES_128' ? 16 : 32;
  if (input.numberOfBytes !== undefined) return input.numberOfBytes;
  throw new ValidationException('Please specify either number of bytes or key spec.');
}

/** Shared by GenerateDataKey and GenerateDataKeyWithoutPlaintext: a fresh random key from the key's store, encrypted under the KMS key. */
export async function generateDataKeyUnder(
  svc: Services, call: CallContext, input: GenerateDataKeyInput, action: string, audit: AuditDraft,
): Promise<{ plaintext: Buffer; ciphertextBlob: Buffer; keyArn: string }> {
  audit.encryptionContext = input.encryptionContext;
  const length = dataKeyLength(input);
  const key = await usableKeyFor(svc, call, input.keyId, action, audit);
  assertSymmetricAlgorithm(key, undefined, action);
  throwIfDryRun(input.dryRun);
  const { plaintext, ciphertextBlob } = await generateDataKeyIn(svc, key, length, input.encryptionContext, audit);
  return { plaintext, ciphertextBlob, keyArn: key.arn };
}

export const generateDataKey: Operation<GenerateDataKeyInput, GenerateDataKeyOutput> = {
  name: 'GenerateDataKey',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    assertNoRecipient(input.recipient);
    const r = await generateDataKeyUnder(svc, call, input, 'GenerateDataKey', audit);
    return { ciphertextBlob: r.ciphertextBlob, plaintext: r.plaintext, keyId: r.keyArn };
  },
};
