import { randomBytes } from 'node:crypto';
import { UnsupportedOperationException, ValidationException } from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { assertNoRecipient } from './crypto-common.js';

export const generateRandom: Operation<
  { numberOfBytes?: number; customKeyStoreId?: string; recipient?: unknown },
  { plaintext: Buffer }
> = {
  name: 'GenerateRandom',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'GenerateRandom', audit);
    assertNoRecipient(input.recipient);
    if (input.customKeyStoreId !== undefined) throw new UnsupportedOperationException('Custom key stores are not supported by this server yet.');
    if (input.numberOfBytes === undefined) throw new ValidationException('NumberOfBytes is required.');
    return { plaintext: randomBytes(input.numberOfBytes) };
  },
};
