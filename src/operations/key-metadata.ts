import type { KeyRecord } from '../keys/index.js';

/** KeyMetadata as DescribeKey and CreateKey return it (internal names; the API edge renames). */
export interface KeyMetadata {
  awsAccountId: string;
  keyId: string;
  arn: string;
  creationDate: Date;
  enabled: boolean;
  description: string;
  keyUsage: string;
  keyState: string;
  deletionDate?: Date;
  origin: string;
  keyManager: 'CUSTOMER';
  customerMasterKeySpec: string;
  keySpec: string;
  encryptionAlgorithms?: string[];
  multiRegion: boolean;
  currentKeyMaterialId?: string;
}

export function keyMetadata(k: KeyRecord): KeyMetadata {
  return {
    awsAccountId: k.accountId,
    keyId: k.keyId,
    arn: k.arn,
    creationDate: new Date(k.createdAt),
    enabled: k.state === 'Enabled',
    description: k.description,
    keyUsage: k.keyUsage,
    keyState: k.state,
    deletionDate: k.deletionDate === undefined ? undefined : new Date(k.deletionDate),
    origin: k.origin,
    keyManager: 'CUSTOMER',
    customerMasterKeySpec: k.keySpec,
    keySpec: k.keySpec,
    encryptionAlgorithms: k.keyUsage === 'ENCRYPT_DECRYPT' ? ['SYMMETRIC_DEFAULT'] : undefined,
    multiRegion: false,
  };
}
