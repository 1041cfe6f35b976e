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
  customKeyStoreId?: string;
  cloudHsmClusterId?: string;
  keyManager: 'CUSTOMER';
  customerMasterKeySpec: string;
  keySpec: string;
  encryptionAlgorithms?: string[];
  multiRegion: boolean;
  currentKeyMaterialId?: string;
  validTo?: Date;
  expirationModel?: string;
}

/** `view` carries what the record alone does not know: the state shown while a custom key store is disconnected. */
export function keyMetadata(k: KeyRecord, view: { state?: string; cloudHsmClusterId?: string } = {}): KeyMetadata {
  const keyState = view.state ?? k.state;
  return {
    awsAccountId: k.accountId,
    keyId: k.keyId,
    arn: k.arn,
    creationDate: new Date(k.createdAt),
    enabled: keyState === 'Enabled',
    description: k.description,
    keyUsage: k.keyUsage,
    keyState,
    deletionDate: k.deletionDate === undefined ? undefined : new Date(k.deletionDate),
    origin: k.origin,
    customKeyStoreId: k.customKeyStoreId,
    cloudHsmClusterId: view.cloudHsmClusterId,
    keyManager: 'CUSTOMER',
    customerMasterKeySpec: k.keySpec,
    keySpec: k.keySpec,
    encryptionAlgorithms: k.keyUsage === 'ENCRYPT_DECRYPT' ? ['SYMMETRIC_DEFAULT'] : undefined,
    multiRegion: false,
    ...importedView(k),
  };
}

/** EXTERNAL keys: the current material's id and expiry, as AWS shows them (absent while pending import). */
function importedView(k: KeyRecord): Pick<KeyMetadata, 'currentKeyMaterialId' | 'validTo' | 'expirationModel'> {
  if (k.origin !== 'EXTERNAL') return {};
  const m = k.versions.find((v) => v.version === k.currentVersion)?.imported;
  if (!m?.present) return {};
  return {
    currentKeyMaterialId: m.keyMaterialId,
    expirationModel: m.expirationModel,
    ...(m.validTo !== undefined ? { validTo: new Date(m.validTo) } : {}),
  };
}
