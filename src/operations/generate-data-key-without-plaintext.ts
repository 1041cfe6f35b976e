import type { Operation } from './context.js';
import { generateDataKeyUnder, type GenerateDataKeyInput } from './generate-data-key.js';

export const generateDataKeyWithoutPlaintext: Operation<GenerateDataKeyInput, { ciphertextBlob: Buffer; keyId: string }> = {
  name: 'GenerateDataKeyWithoutPlaintext',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const r = await generateDataKeyUnder(svc, call, input, 'GenerateDataKeyWithoutPlaintext', audit);
    r.plaintext.fill(0);
    return { ciphertextBlob: r.ciphertextBlob, keyId: r.keyArn };
  },
};
