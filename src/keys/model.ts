import type { KeySpec, KeyState, KeyUsage, Origin, Tag } from '../types/index.js';

export interface KeyVersion {
  readonly version: number;
  readonly createdAt: number;
  /** How this version came to be; the initial version, made by CreateKey, has none. */
  readonly rotationType?: 'AUTOMATIC' | 'ON_DEMAND';
  /** Keys with Origin EXTERNAL: what was imported for this version (absent until the first import). */
  imported?: ImportedMaterial;
}

export type ExpirationModel = 'KEY_MATERIAL_EXPIRES' | 'KEY_MATERIAL_DOES_NOT_EXPIRE';

/**
 * Imported (BYOK) material of one version. The material itself is in the KeyStore; this is what
 * outlives it: the id that recognizes the same material when it is imported again.
 */
export interface ImportedMaterial {
  /** HMAC-SHA256 under the material of a fixed label and the key id, hex: names the material, reveals nothing of it. */
  keyMaterialId: string;
  expirationModel: ExpirationModel;
  /** Epoch ms; only with KEY_MATERIAL_EXPIRES. */
  validTo?: number;
  importedAt: number;
  /** False once the material was deleted (DeleteImportedKeyMaterial) or expired; re-import sets it again. */
  present: boolean;
}

/** Epoch ms at which the earliest present imported material of the key expires, if any does. */
export function importExpiryDue(k: KeyRecord | undefined): number | undefined {
  if (!k || k.origin !== 'EXTERNAL') return undefined;
  let due: number | undefined;
  for (const v of k.versions) {
    const m = v.imported;
    if (!m || !m.present || m.expirationModel !== 'KEY_MATERIAL_EXPIRES' || m.validTo === undefined) continue;
    if (due === undefined || m.validTo < due) due = m.validTo;
  }
  return due;
}

/** Automatic rotation schedule, plus the count that enforces AWS's on-demand limit. */
export interface RotationState {
  enabled: boolean;
  periodDays: number;
  /** Epoch ms the job rotates at; set while enabled. */
  nextRotationAt?: number;
  onDemandCount: number;
}

/** A KMS key as stored. Times are epoch milliseconds. Material lives in the KeyStore, never here. */
export interface KeyRecord {
  readonly keyId: string;
  readonly arn: string;
  readonly accountId: string;
  readonly region: string;
  readonly createdAt: number;
  description: string;
  readonly keyUsage: KeyUsage;
  readonly keySpec: KeySpec;
  readonly origin: Origin;
  state: KeyState;
  deletionDate?: number;
  pendingWindowInDays?: number;
  policy: string;
  tags: Tag[];
  /** The principal ARN that created the key. */
  readonly createdBy: string;
  currentVersion: number;
  versions: KeyVersion[];
  /** The AWS_CLOUDHSM custom key store holding the material (origin AWS_CLOUDHSM); absent for software keys. */
  readonly customKeyStoreId?: string;
  /** Origin EXTERNAL: a version imported with ImportType NEW_KEY_MATERIAL, current after RotateKeyOnDemand. */
  pendingRotationVersion?: number;
  /** Absent on records written before rotation existed: read it through `rotationOf`. */
  rotation?: RotationState;
  /**
   * Versions below this no longer decrypt (SetMinimumDecryptionVersion; Vault's min_decryption_version).
   * Their material is kept, so lowering it again restores them. Absent: 1, every version decrypts.
   */
  minDecryptionVersion?: number;
  /** Grants on this key (CreateGrant); absent when there are none. */
  grants?: GrantRecord[];
}

/** A grant, kept on its key's record (so a key's access is read in one place). */
export interface GrantRecord {
  readonly grantId: string;
  /** Hash of the grant token (the token is shown once, to the creator). */
  readonly tokenSha256: string;
  readonly name?: string;
  readonly granteePrincipal: string;
  readonly retiringPrincipal?: string;
  readonly issuingAccount: string;
  readonly operations: string[];
  readonly constraints?: { encryptionContextSubset?: Record<string, string>; encryptionContextEquals?: Record<string, string> };
  readonly createdAt: number;
  /** The principal ARN that created the grant. */
  readonly createdBy: string;
}

/** Per-account settings (Keyhold's own; UpdateAccountSettings). */
export interface AccountSettings {
  /** The rotation period a new key gets; DEFAULT_ROTATION_PERIOD_DAYS when absent. */
  defaultRotationPeriodDays?: number;
  /** Audit events carry HMAC-SHA256 of encryption-context values instead of the values (AuditContextKey). */
  auditEncryptionContextHmac?: boolean;
}

export interface AliasRecord {
  readonly aliasName: string;
  readonly accountId: string;
  readonly region: string;
  targetKeyId: string;
  readonly createdAt: number;
  updatedAt: number;
}

export const PARTITION = 'aws';

export function keyArn(region: string, accountId: string, keyId: string): string {
  return `arn:${PARTITION}:kms:${region}:${accountId}:key/${keyId}`;
}

export function aliasArn(region: string, accountId: string, aliasName: string): string {
  return `arn:${PARTITION}:kms:${region}:${accountId}:${aliasName}`;
}

export function isEnabled(k: KeyRecord): boolean {
  return k.state === 'Enabled';
}

/** Every key has an owner: the principal that created it, unless an `Owner` tag names another. */
export function ownerOf(k: KeyRecord): string {
  return k.tags.find((t) => t.tagKey === 'Owner')?.tagValue ?? k.createdBy;
}

/** The lowest version that still decrypts. */
export function minDecryptionVersionOf(k: KeyRecord): number {
  return k.minDecryptionVersion ?? 1;
}

export const DEFAULT_ROTATION_PERIOD_DAYS = 365;
export const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The key's rotation state. Records from before rotation existed carry none; they were created
 * under the rotation-on default, so they read as enabled with a due date a year after creation.
 */
export function rotationOf(k: KeyRecord): RotationState {
  return k.rotation ?? {
    enabled: true,
    periodDays: DEFAULT_ROTATION_PERIOD_DAYS,
    nextRotationAt: k.createdAt + DEFAULT_ROTATION_PERIOD_DAYS * DAY_MS,
    onDemandCount: 0,
  };
}
