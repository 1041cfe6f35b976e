/**
 * The managed policies Keyhold ships (beyond AWS): duties of a key administrator and of a key user,
 * kept apart, and two narrower backup roles (a writer that cannot decrypt, a restore drill that
 * cannot write). An administrator manages keys and never uses them; a user uses keys and never manages them.
 */

/** Key administration: every action that changes who can do what with a key, or the key's life. */
export const KEY_ADMIN_ACTIONS = [
  'kms:CreateKey', 'kms:DescribeKey', 'kms:ListKeys', 'kms:ListAliases', 'kms:EnableKey', 'kms:DisableKey',
  'kms:EnableKeyRotation', 'kms:DisableKeyRotation', 'kms:GetKeyRotationStatus', 'kms:RotateKeyOnDemand', 'kms:ListKeyRotations',
  'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:ListKeyPolicies', 'kms:TagResource', 'kms:UntagResource', 'kms:ListResourceTags',
  'kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias', 'kms:UpdateKeyDescription', 'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion', 'kms:CreateGrant', 'kms:ListGrants', 'kms:ListRetirableGrants', 'kms:RevokeGrant', 'kms:RetireGrant',
  // Read-only, so an administrator sees what depends on a key before disabling or deleting it.
  'kms:ListKeyVersions', 'kms:ListBackups',
] as const;

/** The backup registry (Keyhold's own): bookkeeping, neither administration nor use of a key. */
export const BACKUP_REGISTRY_ACTIONS = [
  'kms:RegisterBackup', 'kms:ListBackups', 'kms:RecordBackupVerification', 'kms:RelocateBackup', 'kms:DeregisterBackup',
] as const;

/**
 * Key use: the cryptographic operations, DescribeKey, the backup registry (a user writes, rewraps
 * and verifies backups) and ListKeyVersions (to move data off old versions after a rotation).
 */
export const KEY_USER_ACTIONS = [
  'kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey', 'kms:ListKeyVersions', ...BACKUP_REGISTRY_ACTIONS,
] as const;

/**
 * A backup writer: new data keys, wrapping under further keys, registering, and following a file it
 * moved (relocate); it cannot decrypt older backups, nor make the registry forget one.
 */
export const BACKUP_WRITER_ACTIONS = ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:DescribeKey', 'kms:RegisterBackup', 'kms:RelocateBackup', 'kms:ListBackups'] as const;

/** A restore drill: decrypt to prove backups readable, list them, record the result; it cannot register or move backups. */
export const BACKUP_RESTORE_DRILL_ACTIONS = ['kms:Decrypt', 'kms:DescribeKey', 'kms:ListBackups', 'kms:RecordBackupVerification'] as const;

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
export const KEYHOLD_BACKUP_WRITER_ARN = 'arn:aws:iam::aws:policy/KeyholdBackupWriter';
export const KEYHOLD_BACKUP_RESTORE_DRILL_ARN = 'arn:aws:iam::aws:policy/KeyholdBackupRestoreDrill';

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
      description: 'Use KMS keys: Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, DescribeKey, ListKeyVersions; register, list, verify, relocate and deregister backups.',
      document: doc('KeyUse', KEY_USER_ACTIONS),
    },
    {
      arn: KEYHOLD_BACKUP_WRITER_ARN,
      name: 'KeyholdBackupWriter',
      description: 'Write and register encrypted backups (GenerateDataKey, Encrypt, DescribeKey, RegisterBackup, RelocateBackup, ListBackups); no Decrypt, no DeregisterBackup.',
      document: doc('BackupWrite', BACKUP_WRITER_ACTIONS),
    },
    {
      arn: KEYHOLD_BACKUP_RESTORE_DRILL_ARN,
      name: 'KeyholdBackupRestoreDrill',
      description: 'Restore drills: Decrypt, DescribeKey, ListBackups, RecordBackupVerification; cannot register, encrypt or manage keys.',
      document: doc('BackupRestoreDrill', BACKUP_RESTORE_DRILL_ACTIONS),
    },
  ].map((p) => [p.arn, p] as const),
);
