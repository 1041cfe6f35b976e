import type { EncryptionContext } from '../types/index.js';
import { InvalidKeyUsageException } from '../errors/index.js';
import { throwIfDryRun, usableKeyFor } from './common.js';
import type { Operation } from './context.js';
import { assertSymmetricAlgorithm, decryptOpened, encryptUnder, keyForBlob } from './crypto-common.js';

export interface ReEncryptInput {
  ciphertextBlob: Buffer;
  sourceEncryptionContext?: EncryptionContext;
  sourceKeyId?: string;
  destinationKeyId: string;
  destinationEncryptionContext?: EncryptionContext;
  sourceEncryptionAlgorithm?: string;
  destinationEncryptionAlgorithm?: string;
  grantTokens?: string[];
  dryRun?: boolean;
  dryRunModifiers?: string[];
}

export interface ReEncryptOutput {
  ciphertextBlob: Buffer;
  sourceKeyId: string;
  keyId: string;
  sourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT';
  destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT';
}

/** Moves a ciphertext to another key (or the newest version of the same key) without handing plaintext to anyone. */
export const reEncrypt: Operation<ReEncryptInput, ReEncryptOutput> = {
  name: 'ReEncrypt',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    audit.encryptionContext = input.sourceEncryptionContext;
    if (input.destinationEncryptionContext) audit.detail('destinationEncryptionContext', input.destinationEncryptionContext);
    const opened = await keyForBlob(svc, call, input.ciphertextBlob, input.sourceKeyId, 'ReEncryptFrom', audit);
    if (input.sourceEncryptionAlgorithm !== undefined && input.sourceEncryptionAlgorithm !== 'SYMMETRIC_DEFAULT') {
      throw new InvalidKeyUsageException(`Algorithm ${input.sourceEncryptionAlgorithm} is incompatible with key spec ${opened.key.keySpec}.`);
    }
    const destination = await usableKeyFor(svc, call, input.destinationKeyId, 'ReEncryptTo', audit);
    assertSymmetricAlgorithm(destination, input.destinationEncryptionAlgorithm, 'ReEncrypt');
    throwIfDryRun(input.dryRun);
    const plaintext = await decryptOpened(svc, opened, input.sourceEncryptionContext);
    try {
      const ciphertextBlob = await encryptUnder(svc, destination, plaintext, input.destinationEncryptionContext, audit);
      return {
        ciphertextBlob,
        sourceKeyId: opened.key.arn,
        keyId: destination.arn,
        sourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    } finally {
      plaintext.fill(0);
    }
  },
};
