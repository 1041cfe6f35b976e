import { createHash } from 'node:crypto';
import type { Storage, StorageReader } from '../storage/index.js';

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
/** Hex digits of SHA-256(location) in a record's storage key (128 bits: collisions are not a concern). */
const LOCATION_HASH_HEX = 32;
const locationHash = (location: string) => createHash('sha256').update(location, 'utf8').digest('hex').slice(0, LOCATION_HASH_HEX);
/** Where a record is stored: one per (message id, location). */
const recordPath = (accountId: string, messageId: string, location: string) => `${PREFIX}${accountId}/${messageId}/${locationHash(location)}`;
/**
 * Where records were stored before a backup was identified by its location too: one per message id.
 * Such records are still read, listed and updated where they are; re-registering the same message id
 * at the same location moves the record to recordPath. Message ids are fixed-length hex, so the
 * prefix `backups/<account>/<messageId>` holds exactly that message's records, old and new.
 */
const legacyPath = (accountId: string, messageId: string) => `${PREFIX}${accountId}/${messageId}`;

/** A backup's identity in the registry, as one string: its message id and its location. */
export const backupIdentity = (b: { messageId: string; location: string }) => `${b.messageId}\n${b.location}`;

const parse = (b: Buffer) => JSON.parse(b.toString('utf8')) as BackupRecord;
const encode = (r: BackupRecord) => Buffer.from(JSON.stringify(r));

/** A verification result, as RecordBackupVerification and RegisterBackup(Verified) record it. */
export interface BackupVerification {
  at: number;
  by: string;
  ok: boolean;
  message?: string;
}

function applyVerification(rec: BackupRecord, v: BackupVerification): void {
  rec.lastVerifiedAt = v.at;
  rec.lastVerifiedBy = v.by;
  rec.lastVerifyOk = v.ok;
  if (v.message !== undefined) rec.lastVerifyMessage = v.message;
  else delete rec.lastVerifyMessage;
}

/**
 * The backup registry: which backups exist, where, and which keys and versions they depend on.
 * A backup is identified by its ESDK message id AND its location: a copy (`keyhold backup copy`,
 * which rewraps only the header) keeps the message id, so the source and the copy are two records,
 * each with its own location and wrapping keys. Stored per account (a backup may carry keys of
 * several regions, so the account is the scope) under `backups/<account>/<messageId>/<32 hex of
 * SHA-256(location)>`. Re-registering the same (message id, location) updates that record (a
 * rewrap in place), keeping its verification history and first registration time.
 *
 * Records written before (`backups/<account>/<messageId>`, one per message id) keep working: they
 * are listed and verified where they are, and re-registering their message id at their location
 * migrates them to the new key in the same transaction (history kept, the old key deleted), so a
 * record is never lost nor listed twice.
 */
export class BackupRegistry {
  constructor(private readonly storage: Storage) {}

  async register(accountId: string, rec: BackupRecord, verified?: BackupVerification): Promise<BackupRecord> {
    return this.storage.transaction(async (tx) => {
      const at = recordPath(accountId, rec.messageId, rec.location);
      let prev: BackupRecord | undefined;
      const cur = await tx.get(at);
      if (cur) prev = parse(cur);
      else {
        const old = await tx.get(legacyPath(accountId, rec.messageId));
        const legacy = old ? parse(old) : undefined;
        if (legacy && legacy.location === rec.location) {
          prev = legacy;
          await tx.delete(legacyPath(accountId, rec.messageId));
        }
      }
      const merged: BackupRecord = {
        ...rec,
        ...(prev?.lastVerifiedAt !== undefined ? { lastVerifiedAt: prev.lastVerifiedAt, lastVerifiedBy: prev.lastVerifiedBy, lastVerifyOk: prev.lastVerifyOk, lastVerifyMessage: prev.lastVerifyMessage } : {}),
        registeredAt: prev?.registeredAt ?? rec.registeredAt,
      };
      if (merged.lastVerifyMessage === undefined) delete merged.lastVerifyMessage;
      if (verified) applyVerification(merged, verified);
      await tx.put(at, encode(merged));
      return merged;
    });
  }

  /**
   * Records a verification on the record of (messageId, location), or, without a location, on
   * every record of the message id. Returns the records changed ([] when none matched).
   */
  async recordVerification(accountId: string, messageId: string, location: string | undefined, v: BackupVerification): Promise<BackupRecord[]> {
    return this.storage.transaction(async (tx) => {
      const changed: BackupRecord[] = [];
      for (const e of await this.entries(tx, accountId, messageId, location)) {
        applyVerification(e.record, v);
        await tx.put(e.key, encode(e.record));
        changed.push(e.record);
      }
      return changed;
    });
  }

  /**
   * Removes the records of the given (message id, location) pairs (a backup deleted for good), in
   * one transaction. Returns the records removed: a pair no longer registered is skipped.
   */
  async deregister(accountId: string, ids: readonly { messageId: string; location: string }[]): Promise<BackupRecord[]> {
    return this.storage.transaction(async (tx) => {
      const removed: BackupRecord[] = [];
      for (const id of ids) {
        const stored = await this.storedAt(tx, accountId, id.messageId, id.location);
        for (const e of stored) await tx.delete(e.key);
        if (stored[0]) removed.push(stored[0].record);
      }
      return removed;
    });
  }

  /**
   * Moves the record of (messageId, from) to the location `to` (the file was moved), with its keys,
   * registration and verification history, in one transaction. Returns the moved record, undefined
   * when (messageId, from) is not registered; throws RecordExists when (messageId, to) already is.
   */
  async relocate(accountId: string, messageId: string, from: string, to: string): Promise<BackupRecord | undefined> {
    return this.storage.transaction(async (tx) => {
      const stored = await this.storedAt(tx, accountId, messageId, from);
      const e = stored[0];
      if (!e) return undefined;
      if ((await this.entries(tx, accountId, messageId, to)).length) throw new RecordExists(messageId, to);
      for (const old of stored) await tx.delete(old.key);
      const moved: BackupRecord = { ...e.record, location: to };
      await tx.put(recordPath(accountId, messageId, to), encode(moved));
      return moved;
    });
  }

  /** Every record at a location, of any message id (a location may have held several backups in turn). */
  async atLocation(accountId: string, location: string): Promise<BackupRecord[]> {
    return (await this.list(accountId)).filter((r) => r.location === location);
  }

  /** The record of (messageId, location), wherever it is stored. */
  async get(accountId: string, messageId: string, location: string): Promise<BackupRecord | undefined> {
    return (await this.entries(this.storage, accountId, messageId, location))[0]?.record;
  }

  /** Every record of a message id: the backup and its copies, one per location. */
  async getAll(accountId: string, messageId: string): Promise<BackupRecord[]> {
    return (await this.entries(this.storage, accountId, messageId, undefined)).map((e) => e.record);
  }

  async list(accountId: string): Promise<BackupRecord[]> {
    return dedupe((await this.storage.list(`${PREFIX}${accountId}/`)).map((e) => ({ key: e.key, record: parse(e.value) }))).map((e) => e.record);
  }

  /**
   * Every stored copy of the record of (messageId, location), the current one first: the
   * per-location key and, should the store still hold one for the same location, the legacy key.
   */
  private async storedAt(r: StorageReader, accountId: string, messageId: string, location: string): Promise<{ key: string; record: BackupRecord }[]> {
    const found: { key: string; record: BackupRecord }[] = [];
    for (const key of [recordPath(accountId, messageId, location), legacyPath(accountId, messageId)]) {
      const b = await r.get(key);
      const record = b ? parse(b) : undefined;
      if (record && record.location === location) found.push({ key, record });
    }
    return found;
  }

  private async entries(r: StorageReader, accountId: string, messageId: string, location: string | undefined): Promise<{ key: string; record: BackupRecord }[]> {
    if (location !== undefined) {
      const key = recordPath(accountId, messageId, location);
      const b = await r.get(key);
      if (b) {
        const record = parse(b);
        if (record.location === location) return [{ key, record }];
      }
      const legacyKey = legacyPath(accountId, messageId);
      const old = await r.get(legacyKey);
      const legacy = old ? parse(old) : undefined;
      return legacy && legacy.location === location ? [{ key: legacyKey, record: legacy }] : [];
    }
    // The prefix holds the legacy record (the key equal to it) and the per-location ones (prefix + '/').
    return dedupe((await r.list(legacyPath(accountId, messageId))).map((e) => ({ key: e.key, record: parse(e.value) })));
  }
}

/** relocate's refusal: the message id is already registered at the new location. */
export class RecordExists extends Error {
  constructor(readonly messageId: string, readonly location: string) {
    super(`Backup ${messageId} is already registered at ${location}.`);
    this.name = 'RecordExists';
  }
}

/**
 * One entry per (message id, location). A legacy record and a per-location one for the same pair
 * cannot both be written (register moves the legacy one in its transaction); should a store hold
 * both anyway, the per-location one (the newer layout) is the record.
 */
function dedupe(entries: { key: string; record: BackupRecord }[]): { key: string; record: BackupRecord }[] {
  const isLegacy = (e: { key: string }) => !/\/[0-9a-f]{64}\/[0-9a-f]+$/.test(e.key);
  const current = new Set(entries.filter((e) => !isLegacy(e)).map((e) => backupIdentity(e.record)));
  return entries.filter((e) => !isLegacy(e) || !current.has(backupIdentity(e.record)));
}
