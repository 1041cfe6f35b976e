/** Branded identifiers and AWS enums as literal unions. Nothing here does anything at run time. */

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A key's UUID, e.g. `1234abcd-12ab-34cd-56ef-1234567890ab`. */
export type KeyId = Brand<string, 'KeyId'>;
/** `arn:aws:kms:<region>:<account>:key/<key id>` */
export type KeyArn = Brand<string, 'KeyArn'>;
/** `alias/<name>` */
export type AliasName = Brand<string, 'AliasName'>;
/** Twelve digits. */
export type AccountId = Brand<string, 'AccountId'>;
export type Region = Brand<string, 'Region'>;

export const KEY_STATES = [
  'Creating', 'Enabled', 'Disabled', 'PendingDeletion', 'PendingImport',
  'PendingReplicaDeletion', 'Unavailable', 'Updating',
] as const;
export type KeyState = (typeof KEY_STATES)[number];

export const KEY_USAGES = ['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT'] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

export const KEY_SPECS = [
  'SYMMETRIC_DEFAULT', 'RSA_2048', 'RSA_3072', 'RSA_4096', 'ECC_NIST_P256', 'ECC_NIST_P384',
  'ECC_NIST_P521', 'ECC_SECG_P256K1', 'HMAC_224', 'HMAC_256', 'HMAC_384', 'HMAC_512', 'SM2',
  'ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87', 'ECC_NIST_EDWARDS25519',
] as const;
export type KeySpec = (typeof KEY_SPECS)[number];

export const ORIGINS = ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const;
export type Origin = (typeof ORIGINS)[number];

export const ENCRYPTION_ALGORITHMS = [
  'SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE',
] as const;
export type EncryptionAlgorithm = (typeof ENCRYPTION_ALGORITHMS)[number];

export const DATA_KEY_SPECS = ['AES_256', 'AES_128'] as const;
export type DataKeySpec = (typeof DATA_KEY_SPECS)[number];

export type EncryptionContext = Readonly<Record<string, string>>;

export interface Tag {
  readonly tagKey: string;
  readonly tagValue: string;
}

/** Who is calling, as established by authentication. */
export interface Principal {
  readonly accountId: AccountId;
  /** `arn:aws:iam::<account>:root`, `...:user/<name>`, `arn:aws:sts::<account>:assumed-role/<role>/<session>` */
  readonly arn: string;
  readonly type: 'Root' | 'IAMUser' | 'AssumedRole';
  readonly accessKeyId: string;
  /** AWS `aws:userid`: the account id for root, the user id (AIDA...) for users. */
  readonly userId: string;
  readonly userName?: string;
  /** For an assumed role: the role's name and ARN, the session name, and who started the session. */
  readonly roleName?: string;
  readonly roleArn?: string;
  readonly sessionName?: string;
  readonly sourceArn?: string;
}

export const KEY_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const ACCOUNT_ID_PATTERN = /^\d{12}$/;
