import type { KeySpec, KeyState, KeyUsage, Origin, Tag } from '../types/index.js';

export interface KeyVersion {
  readonly version: number;
  readonly createdAt: number;
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
