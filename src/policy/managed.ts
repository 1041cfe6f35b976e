/**
 * The managed policies Keyhold ships (beyond AWS): duties of a key administrator and of a key user,
 * kept apart. An administrator manages keys and never uses them; a user uses keys and never manages them.
 */

/** Key administration: every action that changes who can do what with a key, or the key's life. */
export const KEY_ADMIN_ACTIONS = [
  'kms:CreateKey', 'kms:DescribeKey', 'kms:ListKeys', 'kms:ListAliases', 'kms:EnableKey', 'kms:DisableKey',
  'kms:EnableKeyRotation', 'kms:DisableKeyRotation', 'kms:GetKeyRotationStatus', 'kms:RotateKeyOnDemand', 'kms:ListKeyRotations',
  'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:ListKeyPolicies', 'kms:TagResource', 'kms:UntagResource', 'kms:ListResourceTags',
  'kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias', 'kms:UpdateKeyDescription', 'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion', 'kms:CreateGrant', 'kms:ListGrants', 'kms:ListRetirableGrants', 'kms:RevokeGrant', 'kms:RetireGrant',
] as const;

/** Key use: the cryptographic operations, and DescribeKey. */
export const KEY_USER_ACTIONS = [
  'kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey',
] as const;

/**
 * What the separation-of-duties guard looks for: administration actions that, together with
 * Decrypt on the same key, would let one principal both control a key and read what it protects.
 */
export const SOD_ADMIN_ACTIONS = [
  'kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion', 'kms:DisableKey', 'kms:EnableKey', 'kms:CreateGrant',
  'kms:RevokeGrant', 'kms:UpdateAlias', 'kms:DeleteAlias',
] as const;
export const SOD_USE_ACTIONS = ['kms:Decrypt', 'kms:ReEncryptFrom'] as const;

export const KEYHOLD_KEY_ADMINISTRATOR_ARN = 'arn:aws:iam::aws:policy/KeyholdKeyAdministrator';
export const KEYHOLD_KEY_USER_ARN = 'arn:aws:iam::aws:policy/KeyholdKeyUser';

export interface ManagedPolicy {
  readonly arn: string;
  readonly name: string;
  readonly description: string;
  readonly document: string;
}

function doc(sid: string, actions: readonly string[]): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: sid, Effect: 'Allow', Action: [...actions], Resource: '*' }] });
}

export const MANAGED_POLICIES: ReadonlyMap<string, ManagedPolicy> = new Map(
  [
    {
      arn: KEYHOLD_KEY_ADMINISTRATOR_ARN,
      name: 'KeyholdKeyAdministrator',
      description: 'Manage KMS keys (create, describe, enable/disable, rotation, policies, tags, aliases, deletion, grants); no cryptographic operation.',
      document: doc('KeyAdministration', KEY_ADMIN_ACTIONS),
    },
    {
      arn: KEYHOLD_KEY_USER_ARN,
      name: 'KeyholdKeyUser',
      description: 'Use KMS keys: Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, DescribeKey.',
      document: doc('KeyUse', KEY_USER_ACTIONS),
    },
  ].map((p) => [p.arn, p] as const),
);
