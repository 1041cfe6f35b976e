import type { EncryptionContext } from '../types/index.js';
import { throwIfDryRun } from './common.js';
import type { Operation } from './context.js';
import { assertNoRecipient, decryptOpened, keyForBlob } from './crypto-common.js';
import { InvalidKeyUsageException } from '../errors/index.js';

export interface DecryptInput {
  ciphertextBlob: Buffer;
  encryptionContext?: EncryptionContext;
  grantTokens?: string[];
  keyId?: string;
  encryptionAlgorithm?: string;
  recipient?: unknown;
  dryRun?: boolean;
  dryRunModifiers?: string[];
}

export interface DecryptOutput {
  keyId: string;
  plaintext: Buffer;
  encryptionAlgorithm: 'SYMMETRIC_DEFAULT';
  /** Imported (EXTERNAL) keys: the material that decrypted, as AWS returns it. */
  keyMaterialId?: string;
}

export const decrypt: Operation<DecryptInput, DecryptOutput> = {
  name: 'Decrypt',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    audit.encryptionContext = input.encryptionContext;
    assertNoRecipient(input.recipient);
    const opened = await keyForBlob(svc, call, input.ciphertextBlob, input.keyId, 'Decrypt', audit);
    if (input.encryptionAlgorithm !== undefined && input.encryptionAlgorithm !== 'SYMMETRIC_DEFAULT') {
      throw new InvalidKeyUsageException(`Algorithm ${input.encryptionAlgorithm} is incompatible with key spec ${opened.key.keySpec}.`);
    }
    throwIfDryRun(input.dryRun);
    const plaintext = await decryptOpened(svc, opened, input.encryptionContext);
    const keyMaterialId = opened.key.versions.find((v) => v.version === opened.blob.keyVersion)?.imported?.keyMaterialId;
    return { keyId: opened.key.arn, plaintext, encryptionAlgorithm: 'SYMMETRIC_DEFAULT', ...(keyMaterialId ? { keyMaterialId } : {}) };
  },
};
