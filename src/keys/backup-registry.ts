import type { Storage } from '../storage/index.js';

/** One wrapping key of a registered backup: the key ARN and, when known, its backing-key version. */
export interface BackupKeyRef {
  keyArn: string;
  keyVersion?: number;
}

/** A backup the `keyhold backup` commands wrote (or verified), as registered with the server. */
export interface BackupRecord {
  /** The ESDK message id, hex (64 chars): identifies the backup wherever its bytes are copied. */
  messageId: string;
  location: string;
  sizeBytes: number;
  suite: string;
  wrappingKeys: BackupKeyRef[];
  encryptionContext: Record<string, string>;
  registeredAt: number;
  registeredBy: string;
  /** Restore drills and `verify`: when the backup was last fully authenticated, and by whom. */
  lastVerifiedAt?: number;
  lastVerifiedBy?: string;
  lastVerifyOk?: boolean;
  lastVerifyMessage?: string;
}

const PREFIX = 'backups/';
const path = (accountId: string, messageId: string) => `${PREFIX}${accountId}/${messageId}`;

/**
 * The backup registry: which backups exist, where, and which keys and versions they depend on.
 * Stored per account under `backups/<account>/<messageId>` (a backup may carry keys of several
 * regions, so the account is the scope). Re-registering a message id updates its record (a copy
 * or a rewrap keeps the id), keeping the verification history.
 */
export class BackupRegistry {
  constructor(private readonly storage: Storage) {}

  async register(accountId: string, rec: BackupRecord): Promise<BackupRecord> {
    return this.storage.transaction(async (tx) => {
      const old = await tx.get(path(accountId, rec.messageId));
      const prev = old ? (JSON.parse(old.toString('utf8')) as BackupRecord) : undefined;
      const merged: BackupRecord = {
        ...rec,
        ...(prev?.lastVerifiedAt !== undefined ? { lastVerifiedAt: prev.lastVerifiedAt, lastVerifiedBy: prev.lastVerifiedBy, lastVerifyOk: prev.lastVerifyOk, lastVerifyMessage: prev.lastVerifyMessage } : {}),
        registeredAt: prev?.registeredAt ?? rec.registeredAt,
      };
      await tx.put(path(accountId, rec.messageId), Buffer.from(JSON.stringify(merged)));
      return merged;
    });
  }

  async recordVerification(accountId: string, messageId: string, v: { at: number; by: string; ok: boolean; message?: string }): Promise<BackupRecord | undefined> {
    return this.storage.transaction(async (tx) => {
      const old = await tx.get(path(accountId, messageId));
      if (!old) return undefined;
      const rec = JSON.parse(old.toString('utf8')) as BackupRecord;
      rec.lastVerifiedAt = v.at;
      rec.lastVerifiedBy = v.by;
      rec.lastVerifyOk = v.ok;
      if (v.message !== undefined) rec.lastVerifyMessage = v.message;
      else delete rec.lastVerifyMessage;
      await tx.put(path(accountId, messageId), Buffer.from(JSON.stringify(rec)));
      return rec;
    });
  }

  async get(accountId: string, messageId: string): Promise<BackupRecord | undefined> {
    const b = await this.storage.get(path(accountId, messageId));
    return b ? (JSON.parse(b.toString('utf8')) as BackupRecord) : undefined;
  }

  async list(accountId: string): Promise<BackupRecord[]> {
    const entries = await this.storage.list(`${PREFIX}${accountId}/`);
    return entries.map((e) => JSON.parse(e.value.toString('utf8')) as BackupRecord);
  }
}
