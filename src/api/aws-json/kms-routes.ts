import * as ops from '../../operations/index.js';
import type { Operation } from '../../operations/index.js';
import { DATA_KEY_SPECS, ENCRYPTION_ALGORITHMS, KEY_SPECS, KEY_USAGES, ORIGINS } from '../../types/index.js';
import { any, blob, bool, int, list, map, str, struct, timestamp, type Infer, type Shape } from './schema.js';

// Shapes from the AWS KMS model (botocore kms/2014-11-01), constraints as AWS states them.
const KeyIdType = str({ min: 1, max: 2048 });
const PlaintextType = blob({ min: 1, max: 4096, sensitive: true });
const CiphertextType = blob({ min: 1, max: 6144 });
const EncryptionContextType = map(str());
const GrantTokenList = list(str({ min: 1, max: 8192 }), { min: 0, max: 10 });
const EncryptionAlgorithmSpec = str({ enum: ENCRYPTION_ALGORITHMS });
const AliasNameType = str({ min: 1, max: 256, pattern: /^[a-zA-Z0-9:/_-]+$/ });
const DescriptionType = str({ min: 0, max: 8192 });
const PolicyType = str({ min: 1, max: 131072, pattern: /^[\u0009\u000A\u000D\u0020-\u00FF]+$/ });
const PolicyNameType = str({ min: 1, max: 128, pattern: /^[\w]+$/ });
const LimitType = int({ min: 1, max: 1000 });
const MarkerType = str({ min: 1, max: 1024, pattern: /^[\u0020-\u00FF]*$/ });
const ArnType = str({ min: 20, max: 2048 });
const NumberOfBytesType = int({ min: 1, max: 1024 });
const DataKeySpec = str({ enum: DATA_KEY_SPECS });
const Tag = struct({ TagKey: str({ min: 1, max: 128 }), TagValue: str({ min: 0, max: 256 }) }, ['TagKey', 'TagValue']);
const TagList = list(Tag);
const DryRun = bool();
const DryRunModifierList = list(str({ enum: ['IGNORE_CIPHERTEXT'] }));
const RecipientInfo = any();
const RotationPeriodInDaysType = int({ min: 90, max: 2560 });
const ROTATION_TYPES = ['AUTOMATIC', 'ON_DEMAND'] as const;
// BYOK enums as the AWS model lists them; the operation says which it supports.
const WRAPPING_ALGORITHM_NAMES = ['RSAES_PKCS1_V1_5', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256', 'SM2PKE'] as const;
const WRAPPING_KEY_SPEC_NAMES = ['RSA_2048', 'RSA_3072', 'RSA_4096', 'SM2'] as const;
const EXPIRATION_MODELS = ['KEY_MATERIAL_EXPIRES', 'KEY_MATERIAL_DOES_NOT_EXPIRE'] as const;
const IMPORT_TYPES = ['NEW_KEY_MATERIAL', 'EXISTING_KEY_MATERIAL'] as const;
const BackingKeyIdType = str({ min: 64, max: 64, pattern: /^[a-f0-9]+$/ });

const KeyMetadata = struct({
  AWSAccountId: str(),
  KeyId: str(),
  Arn: str(),
  CreationDate: timestamp(),
  Enabled: bool(),
  Description: str(),
  KeyUsage: str(),
  KeyState: str(),
  DeletionDate: timestamp(),
  ValidTo: timestamp(),
  Origin: str(),
  CustomKeyStoreId: str(),
  CloudHsmClusterId: str(),
  ExpirationModel: str(),
  KeyManager: str(),
  CustomerMasterKeySpec: str(),
  KeySpec: str(),
  EncryptionAlgorithms: list(str()),
  SigningAlgorithms: list(str()),
  MacAlgorithms: list(str()),
  MultiRegion: bool(),
  PendingDeletionWindowInDays: int(),
  CurrentKeyMaterialId: str(),
});
// Custom key store shapes (botocore kms/2014-11-01)
const CustomKeyStoreIdType = str({ min: 1, max: 64 });
const CustomKeyStoreNameType = str({ min: 1, max: 256 });
const CloudHsmClusterIdType = str({ min: 19, max: 24, pattern: /^cluster-[2-7a-zA-Z]{11,16}$/ });
const KeyStorePasswordType = str({ min: 7, max: 32, sensitive: true });
const CustomKeyStoreIdOnly = struct({ CustomKeyStoreId: CustomKeyStoreIdType }, ['CustomKeyStoreId']);
const GrantConstraints = struct({ EncryptionContextSubset: EncryptionContextType, EncryptionContextEquals: EncryptionContextType });
const GrantListEntry = struct({
  KeyId: str(), GrantId: str(), Name: str(), CreationDate: timestamp(), GranteePrincipal: str(), RetiringPrincipal: str(),
  IssuingAccount: str(), Operations: list(str()), Constraints: GrantConstraints,
});
const KeyIdOnly = struct({ KeyId: KeyIdType }, ['KeyId']);
const Empty = struct({});
const Paged = { NextMarker: str(), Truncated: bool() } as const;

export interface Route {
  readonly input: Shape;
  readonly output: Shape;
  readonly op: Operation<any, any>;
}

/**
 * Typed dispatch: the input shape must decode to what the operation takes, and the operation's
 * result must fit the output shape, or this does not compile.
 */
export function route<const I extends Shape, const O extends Shape>(
  input: I, output: O, op: Operation<Infer<I>, Infer<O>>,
): Route {
  return { input, output, op };
}

export const KMS_ROUTES = {
  CreateKey: route(
    struct({
      Policy: PolicyType, Description: DescriptionType, KeyUsage: str({ enum: KEY_USAGES }),
      CustomerMasterKeySpec: str({ enum: KEY_SPECS }), KeySpec: str({ enum: KEY_SPECS }), Origin: str({ enum: ORIGINS }),
      CustomKeyStoreId: str({ min: 1, max: 64 }), BypassPolicyLockoutSafetyCheck: bool(), Tags: TagList, MultiRegion: bool(),
      XksKeyId: str({ min: 1, max: 128 }),
    }),
    struct({ KeyMetadata }),
    ops.createKey,
  ),
  DescribeKey: route(struct({ KeyId: KeyIdType, GrantTokens: GrantTokenList }, ['KeyId']), struct({ KeyMetadata }), ops.describeKey),
  ListKeys: route(
    struct({ Limit: LimitType, Marker: MarkerType }),
    struct({ Keys: list(struct({ KeyId: str(), KeyArn: str() })), ...Paged }),
    ops.listKeys,
  ),
  EnableKey: route(KeyIdOnly, Empty, ops.enableKey),
  DisableKey: route(KeyIdOnly, Empty, ops.disableKey),
  ScheduleKeyDeletion: route(
    struct({ KeyId: KeyIdType, PendingWindowInDays: int({ min: 1, max: 365 }) }, ['KeyId']),
    struct({ KeyId: str(), DeletionDate: timestamp(), KeyState: str(), PendingWindowInDays: int() }),
    ops.scheduleKeyDeletion,
  ),
  CancelKeyDeletion: route(KeyIdOnly, struct({ KeyId: str() }), ops.cancelKeyDeletion),
  UpdateKeyDescription: route(struct({ KeyId: KeyIdType, Description: DescriptionType }, ['KeyId', 'Description']), Empty, ops.updateKeyDescription),
  CreateAlias: route(struct({ AliasName: AliasNameType, TargetKeyId: KeyIdType }, ['AliasName', 'TargetKeyId']), Empty, ops.createAlias),
  UpdateAlias: route(struct({ AliasName: AliasNameType, TargetKeyId: KeyIdType }, ['AliasName', 'TargetKeyId']), Empty, ops.updateAlias),
  DeleteAlias: route(struct({ AliasName: AliasNameType }, ['AliasName']), Empty, ops.deleteAlias),
  ListAliases: route(
    struct({ KeyId: KeyIdType, Limit: LimitType, Marker: MarkerType }),
    struct({
      Aliases: list(struct({ AliasName: str(), AliasArn: ArnType, TargetKeyId: str(), CreationDate: timestamp(), LastUpdatedDate: timestamp() })),
      ...Paged,
    }),
    ops.listAliases,
  ),
  TagResource: route(struct({ KeyId: KeyIdType, Tags: TagList }, ['KeyId', 'Tags']), Empty, ops.tagResource),
  UntagResource: route(struct({ KeyId: KeyIdType, TagKeys: list(str({ min: 1, max: 128 })) }, ['KeyId', 'TagKeys']), Empty, ops.untagResource),
  ListResourceTags: route(
    struct({ KeyId: KeyIdType, Limit: int({ min: 1, max: 50 }), Marker: MarkerType }, ['KeyId']),
    struct({ Tags: TagList, ...Paged }),
    ops.listResourceTags,
  ),
  GetKeyPolicy: route(struct({ KeyId: KeyIdType, PolicyName: PolicyNameType }, ['KeyId']), struct({ Policy: str(), PolicyName: str() }), ops.getKeyPolicy),
  PutKeyPolicy: route(
    struct({ KeyId: KeyIdType, PolicyName: PolicyNameType, Policy: PolicyType, BypassPolicyLockoutSafetyCheck: bool() }, ['KeyId', 'Policy']),
    Empty,
    ops.putKeyPolicy,
  ),
  ListKeyPolicies: route(
    struct({ KeyId: KeyIdType, Limit: LimitType, Marker: MarkerType }, ['KeyId']),
    struct({ PolicyNames: list(str()), ...Paged }),
    ops.listKeyPolicies,
  ),
  Encrypt: route(
    struct({
      KeyId: KeyIdType, Plaintext: PlaintextType, EncryptionContext: EncryptionContextType, GrantTokens: GrantTokenList,
      EncryptionAlgorithm: EncryptionAlgorithmSpec, DryRun,
    }, ['KeyId', 'Plaintext']),
    struct({ CiphertextBlob: blob(), KeyId: str(), EncryptionAlgorithm: str() }),
    ops.encrypt,
  ),
  Decrypt: route(
    struct({
      CiphertextBlob: CiphertextType, EncryptionContext: EncryptionContextType, GrantTokens: GrantTokenList, KeyId: KeyIdType,
      EncryptionAlgorithm: EncryptionAlgorithmSpec, Recipient: RecipientInfo, DryRun, DryRunModifiers: DryRunModifierList,
    }, ['CiphertextBlob']),
    struct({ KeyId: str(), Plaintext: blob(), EncryptionAlgorithm: str(), KeyMaterialId: str() }),
    ops.decrypt,
  ),
  ReEncrypt: route(
    struct({
      CiphertextBlob: CiphertextType, SourceEncryptionContext: EncryptionContextType, SourceKeyId: KeyIdType,
      DestinationKeyId: KeyIdType, DestinationEncryptionContext: EncryptionContextType,
      SourceEncryptionAlgorithm: EncryptionAlgorithmSpec, DestinationEncryptionAlgorithm: EncryptionAlgorithmSpec,
      GrantTokens: GrantTokenList, DryRun, DryRunModifiers: DryRunModifierList,
    }, ['CiphertextBlob', 'DestinationKeyId']),
    struct({
      CiphertextBlob: blob(), SourceKeyId: str(), KeyId: str(), SourceEncryptionAlgorithm: str(), DestinationEncryptionAlgorithm: str(),
    }),
    ops.reEncrypt,
  ),
  GenerateDataKey: route(
    struct({
      KeyId: KeyIdType, EncryptionContext: EncryptionContextType, NumberOfBytes: NumberOfBytesType, KeySpec: DataKeySpec,
      GrantTokens: GrantTokenList, Recipient: RecipientInfo, DryRun,
    }, ['KeyId']),
    struct({ CiphertextBlob: blob(), Plaintext: blob(), KeyId: str() }),
    ops.generateDataKey,
  ),
  GenerateDataKeyWithoutPlaintext: route(
    struct({
      KeyId: KeyIdType, EncryptionContext: EncryptionContextType, KeySpec: DataKeySpec, NumberOfBytes: NumberOfBytesType,
      GrantTokens: GrantTokenList, DryRun,
    }, ['KeyId']),
    struct({ CiphertextBlob: blob(), KeyId: str() }),
    ops.generateDataKeyWithoutPlaintext,
  ),
  GenerateRandom: route(
    struct({ NumberOfBytes: NumberOfBytesType, CustomKeyStoreId: str({ min: 1, max: 64 }), Recipient: RecipientInfo }),
    struct({ Plaintext: blob() }),
    ops.generateRandom,
  ),
  EnableKeyRotation: route(
    struct({ KeyId: KeyIdType, RotationPeriodInDays: RotationPeriodInDaysType }, ['KeyId']),
    Empty,
    ops.enableKeyRotation,
  ),
  DisableKeyRotation: route(KeyIdOnly, Empty, ops.disableKeyRotation),
  GetKeyRotationStatus: route(
    KeyIdOnly,
    struct({
      KeyRotationEnabled: bool(), KeyId: str(), RotationPeriodInDays: int(), NextRotationDate: timestamp(),
      OnDemandRotationStartDate: timestamp(),
    }),
    ops.getKeyRotationStatus,
  ),
  RotateKeyOnDemand: route(KeyIdOnly, struct({ KeyId: str() }), ops.rotateKeyOnDemand),
  ListKeyRotations: route(
    struct({ KeyId: KeyIdType, Limit: LimitType, Marker: MarkerType }, ['KeyId']),
    struct({ Rotations: list(struct({ KeyId: str(), RotationDate: timestamp(), RotationType: str({ enum: ROTATION_TYPES }) })), ...Paged }),
    ops.listKeyRotations,
  ),
  // Grants
  CreateGrant: route(
    struct({
      KeyId: KeyIdType, GranteePrincipal: str({ min: 1, max: 256 }), RetiringPrincipal: str({ min: 1, max: 256 }),
      Operations: list(str()), Constraints: GrantConstraints, GrantTokens: GrantTokenList, Name: str({ min: 1, max: 256 }), DryRun,
    }, ['KeyId', 'GranteePrincipal', 'Operations']),
    struct({ GrantToken: str(), GrantId: str() }),
    ops.createGrant,
  ),
  ListGrants: route(
    struct({ KeyId: KeyIdType, Limit: LimitType, Marker: MarkerType, GrantId: str({ min: 1, max: 128 }), GranteePrincipal: str({ min: 1, max: 256 }) }, ['KeyId']),
    struct({ Grants: list(GrantListEntry), ...Paged }),
    ops.listGrants,
  ),
  ListRetirableGrants: route(
    struct({ RetiringPrincipal: str({ min: 1, max: 256 }), Limit: LimitType, Marker: MarkerType }, ['RetiringPrincipal']),
    struct({ Grants: list(GrantListEntry), ...Paged }),
    ops.listRetirableGrants,
  ),
  RetireGrant: route(
    struct({ GrantToken: str({ min: 1, max: 8192 }), KeyId: KeyIdType, GrantId: str({ min: 1, max: 128 }), DryRun }),
    Empty,
    ops.retireGrant,
  ),
  RevokeGrant: route(struct({ KeyId: KeyIdType, GrantId: str({ min: 1, max: 128 }), DryRun }, ['KeyId', 'GrantId']), Empty, ops.revokeGrant),
  // Custom key stores (AWS_CLOUDHSM over a declared PKCS#11 HSM)
  CreateCustomKeyStore: route(
    struct({
      CustomKeyStoreName: CustomKeyStoreNameType, CloudHsmClusterId: CloudHsmClusterIdType,
      TrustAnchorCertificate: str({ min: 1, max: 5000 }), KeyStorePassword: KeyStorePasswordType,
      CustomKeyStoreType: str({ enum: ['AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] }),
    }, ['CustomKeyStoreName']),
    struct({ CustomKeyStoreId: str() }),
    ops.createCustomKeyStore,
  ),
  DescribeCustomKeyStores: route(
    struct({ CustomKeyStoreId: CustomKeyStoreIdType, CustomKeyStoreName: CustomKeyStoreNameType, Limit: LimitType, Marker: MarkerType }),
    struct({
      CustomKeyStores: list(struct({
        CustomKeyStoreId: str(), CustomKeyStoreName: str(), CloudHsmClusterId: str(), TrustAnchorCertificate: str(),
        ConnectionState: str(), ConnectionErrorCode: str(), CreationDate: timestamp(), CustomKeyStoreType: str(),
      }, [])),
      ...Paged,
    }),
    ops.describeCustomKeyStores,
  ),
  ConnectCustomKeyStore: route(CustomKeyStoreIdOnly, Empty, ops.connectCustomKeyStore),
  DisconnectCustomKeyStore: route(CustomKeyStoreIdOnly, Empty, ops.disconnectCustomKeyStore),
  UpdateCustomKeyStore: route(
    struct({
      CustomKeyStoreId: CustomKeyStoreIdType, NewCustomKeyStoreName: CustomKeyStoreNameType, KeyStorePassword: KeyStorePasswordType,
      CloudHsmClusterId: CloudHsmClusterIdType, XksProxyUriEndpoint: str({ min: 10, max: 128 }), XksProxyUriPath: str({ min: 10, max: 128 }),
    }, ['CustomKeyStoreId']),
    Empty,
    ops.updateCustomKeyStore,
  ),
  DeleteCustomKeyStore: route(CustomKeyStoreIdOnly, Empty, ops.deleteCustomKeyStore),
  GetKeyLastUsage: route(
    KeyIdOnly,
    struct({
      KeyId: str(),
      KeyLastUsage: struct({ Operation: str(), Timestamp: timestamp(), CloudTrailEventId: str(), KmsRequestId: str() }),
      TrackingStartDate: timestamp(),
      KeyCreationDate: timestamp(),
    }, ['KeyId', 'TrackingStartDate', 'KeyCreationDate']),
    ops.getKeyLastUsage,
  ),
  // BYOK: key import (Origin EXTERNAL)
  GetParametersForImport: route(
    struct({ KeyId: KeyIdType, WrappingAlgorithm: str({ enum: WRAPPING_ALGORITHM_NAMES }), WrappingKeySpec: str({ enum: WRAPPING_KEY_SPEC_NAMES }) }, ['KeyId', 'WrappingAlgorithm', 'WrappingKeySpec']),
    struct({ KeyId: str(), ImportToken: blob(), PublicKey: blob(), ParametersValidTo: timestamp() }),
    ops.getParametersForImport,
  ),
  ImportKeyMaterial: route(
    struct({
      KeyId: KeyIdType, ImportToken: CiphertextType, EncryptedKeyMaterial: blob({ min: 1, max: 6144, sensitive: true }), ValidTo: timestamp(),
      ExpirationModel: str({ enum: EXPIRATION_MODELS }), ImportType: str({ enum: IMPORT_TYPES }),
      KeyMaterialDescription: str({ min: 0, max: 256 }), KeyMaterialId: BackingKeyIdType,
    }, ['KeyId', 'ImportToken', 'EncryptedKeyMaterial']),
    struct({ KeyId: str(), KeyMaterialId: str() }),
    ops.importKeyMaterial,
  ),
  DeleteImportedKeyMaterial: route(
    struct({ KeyId: KeyIdType, KeyMaterialId: BackingKeyIdType }, ['KeyId']),
    struct({ KeyId: str(), KeyMaterialId: str() }),
    ops.deleteImportedKeyMaterial,
  ),
} satisfies Record<string, Route>;

export const KMS_TARGET_PREFIX = 'TrentService.';
