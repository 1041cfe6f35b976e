import type { Operation } from './context.js';
import { backupIdentity } from '../keys/index.js';
import { authorizeAccount } from './common.js';
import { authorizeOnBackupKeys, backupsAtRiskWithout, wrappingKeyStatus, type WrappingKeyStatus } from './backup-common.js';

export interface ListBackupsInput {
  /** Only backups with a data key wrapped under this key (id, ARN or alias in the caller's region). */
  keyId?: string;
  /** With keyId: only those wrapped under this version of it. */
  keyVersion?: number;
  /** Only the backups that would become undecryptable if this key were disabled or deleted. */
  atRiskWithoutKeyId?: string;
}

export interface BackupEntry {
  messageId: string;
  location: string;
  sizeBytes: number;
  suite: string;
  wrappingKeys: WrappingKeyStatus[];
  encryptionContext: Record<string, string>;
  registeredDate: Date;
  registeredBy: string;
  /** Some wrapping key is usable now. */
  decryptable: boolean;
  lastVerifiedDate?: Date;
  lastVerifiedBy?: string;
  lastVerifyOk?: boolean;
  lastVerifyMessage?: string;
}

/**
 * Keyhold's own: the backup registry, with each wrapping key's current state. Filtered by a key
 * (keyId, atRiskWithoutKeyId), kms:ListBackups on that key is needed; unfiltered, kms:ListBackups
 * on the account (an identity policy allowing it on Resource "*").
 */
export const listBackups: Operation<ListBackupsInput, { backups: BackupEntry[] }> = {
  name: 'ListBackups',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    // A key ARN names its region, and backups span regions: take it as given. Ids and aliases are
    // resolved in the caller's region.
    const arnOf = async (id: string) => (/^arn:[^:]+:kms:[^:]+:\d{12}:key\//.test(id) ? id : (await svc.keys.resolve(id, call, { allowAlias: true })).arn);
    const keyArn = input.keyId !== undefined ? await arnOf(input.keyId) : undefined;
    const riskArn = input.atRiskWithoutKeyId !== undefined ? await arnOf(input.atRiskWithoutKeyId) : undefined;
    const named = [keyArn, riskArn].filter((a): a is string => a !== undefined);
    for (const a of named) audit.key(a);
    if (named.length) await authorizeOnBackupKeys(svc, call, named, 'ListBackups', audit);
    else await authorizeAccount(svc, call, 'ListBackups', audit);
    let records = await svc.backups.list(call.accountId);
    if (keyArn !== undefined) {
      records = records.filter((b) => b.wrappingKeys.some((k) => k.keyArn === keyArn && (input.keyVersion === undefined || k.keyVersion === input.keyVersion)));
    }
    if (riskArn !== undefined) {
      // A backup is (message id, location): a copy with the same id may have other keys.
      const ids = new Set((await backupsAtRiskWithout(svc, call.accountId, riskArn)).atRisk.map(backupIdentity));
      records = records.filter((b) => ids.has(backupIdentity(b)));
    }
    const backups: BackupEntry[] = [];
    for (const b of records) {
      const wrappingKeys = await Promise.all(b.wrappingKeys.map((k) => wrappingKeyStatus(svc, k)));
      backups.push({
        messageId: b.messageId, location: b.location, sizeBytes: b.sizeBytes, suite: b.suite, wrappingKeys,
        encryptionContext: b.encryptionContext, registeredDate: new Date(b.registeredAt), registeredBy: b.registeredBy,
        decryptable: wrappingKeys.some((k) => k.usable),
        ...(b.lastVerifiedAt !== undefined ? { lastVerifiedDate: new Date(b.lastVerifiedAt), lastVerifiedBy: b.lastVerifiedBy, lastVerifyOk: b.lastVerifyOk } : {}),
        ...(b.lastVerifyMessage !== undefined ? { lastVerifyMessage: b.lastVerifyMessage } : {}),
      });
    }
    return { backups };
  },
};
