import type { Storage, StorageReader } from '../storage/index.js';

/** How often one key version was used, and when last. Times are epoch milliseconds. */
export interface VersionUsage {
  encryptCount: number;
  decryptCount: number;
  /** Absent until first used. */
  lastUsedAt?: number;
}

export type UsageKind = 'encrypt' | 'decrypt';

const PREFIX = 'usage/';
const path = (keyId: string, version: number) => `${PREFIX}${keyId}/${String(version).padStart(10, '0')}`;
const keyPrefix = (keyId: string) => `${PREFIX}${keyId}/`;

const enc = (u: VersionUsage) => Buffer.from(JSON.stringify(u));
const dec = (b: Buffer) => JSON.parse(b.toString('utf8')) as VersionUsage;

function add(into: VersionUsage, d: VersionUsage): void {
  into.encryptCount += d.encryptCount;
  into.decryptCount += d.decryptCount;
  if (d.lastUsedAt !== undefined && (into.lastUsedAt === undefined || d.lastUsedAt > into.lastUsedAt)) into.lastUsedAt = d.lastUsedAt;
}

/**
 * Per-version use counters. Counting on every Encrypt/Decrypt must not cost a storage write, so uses
 * are added up in memory and flushed every few seconds (and at clean shutdown) as *increments*:
 * each flush reads the stored totals inside a transaction and adds this process's deltas, so the
 * processes of a cluster (or several nodes on one store) add up instead of overwriting each other.
 * A crash loses at most the uses since the last flush: these are statistics, not an audit record
 * (the audit log has every call).
 */
export class UsageCounter {
  /** keyId -> version -> uses not yet flushed */
  private pending = new Map<string, Map<number, VersionUsage>>();
  /** The batch a flush is writing, until its transaction's last step. */
  private inFlight: Map<string, Map<number, VersionUsage>> | undefined;
  private flushing: Promise<void> | undefined;

  constructor(private readonly storage: Storage) {}

  record(keyId: string, version: number, kind: UsageKind, now: number): void {
    let versions = this.pending.get(keyId);
    if (!versions) this.pending.set(keyId, (versions = new Map()));
    let u = versions.get(version);
    if (!u) versions.set(version, (u = { encryptCount: 0, decryptCount: 0 }));
    if (kind === 'encrypt') u.encryptCount++;
    else u.decryptCount++;
    if (u.lastUsedAt === undefined || now > u.lastUsedAt) u.lastUsedAt = now;
  }

  /**
   * Writes the pending increments in one transaction. Counts for keys that no longer exist are
   * dropped (`keyExists` reads inside the transaction). On failure the increments are put back for
   * the next flush. Concurrent calls share one flush.
   */
  flush(keyExists: (keyId: string, tx: StorageReader) => Promise<boolean>): Promise<void> {
    return (this.flushing ??= this.doFlush(keyExists).finally(() => {
      this.flushing = undefined;
    }));
  }

  private async doFlush(keyExists: (keyId: string, tx: StorageReader) => Promise<boolean>): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.inFlight = batch;
    try {
      await this.storage.transaction(async (tx) => {
        for (const [keyId, versions] of batch) {
          if (!(await keyExists(keyId, tx))) continue;
          for (const [version, d] of versions) {
            const b = await tx.get(path(keyId, version));
            const total = b ? dec(b) : { encryptCount: 0, decryptCount: 0 };
            add(total, d);
            await tx.put(path(keyId, version), enc(total));
          }
        }
        // Still inside the transaction: a read (itself a transaction) sees the batch either in
        // storage or in memory, never in both nor in neither.
        this.inFlight = undefined;
      });
    } catch (e) {
      this.inFlight = undefined;
      for (const [keyId, versions] of batch) {
        for (const [version, d] of versions) {
          let mine = this.pending.get(keyId);
          if (!mine) this.pending.set(keyId, (mine = new Map()));
          const u = mine.get(version);
          if (u) add(u, d);
          else mine.set(version, d);
        }
      }
      throw e;
    }
  }

  /**
   * Stored totals plus this process's unflushed uses, by version. Other processes' unflushed uses
   * show after their next flush. Read in a transaction so that it never overlaps this process's flush.
   */
  read(keyId: string): Promise<Map<number, VersionUsage>> {
    return this.storage.transaction(async (tx) => {
      const out = new Map<number, VersionUsage>();
      const prefix = keyPrefix(keyId);
      for (const r of await tx.list(prefix)) out.set(Number(r.key.slice(prefix.length)), dec(r.value));
      for (const source of [this.inFlight, this.pending]) {
        for (const [version, d] of source?.get(keyId) ?? []) {
          const u = out.get(version) ?? { encryptCount: 0, decryptCount: 0 };
          add(u, d);
          out.set(version, u);
        }
      }
      return out;
    });
  }

  /** Drops a deleted key's counters (inside the deletion's transaction). */
  static async deleteFor(tx: { list: StorageReader['list']; delete(key: string): Promise<boolean> }, keyId: string): Promise<void> {
    for (const r of await tx.list(keyPrefix(keyId))) await tx.delete(r.key);
  }
}
