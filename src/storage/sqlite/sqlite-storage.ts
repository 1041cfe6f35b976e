/**
 * The embedded default Storage: one SQLite file through better-sqlite3, in WAL mode.
 *
 * better-sqlite3 is synchronous and keeps one connection, while our transaction callbacks are
 * async. So a transaction holds a TransactionGate from BEGIN IMMEDIATE to COMMIT/ROLLBACK, and
 * one-off operations outside a transaction wait for the gate: nothing ever runs inside another
 * caller's open transaction. BEGIN IMMEDIATE takes SQLite's write lock, which serializes writers
 * across every process sharing the file; WAL readers see only committed data and never wait.
 *
 * Waiting for the write lock does not block the event loop: BEGIN IMMEDIATE is tried with SQLite's
 * busy handler off and retried on timers, so another process (or another SqliteStorage on the same
 * file in this process) can hold the lock while we wait. After `busyTimeoutMs` the SQLITE_BUSY
 * error propagates. Other statements keep SQLite's own busy_timeout, for the rare moments a reader
 * must wait (e.g. another connection closing the WAL).
 *
 * One-off writes outside a transaction go through the same BEGIN IMMEDIATE path; one-off reads
 * are a single statement when no transaction is open (the hot path).
 */
import Database from 'better-sqlite3';
import { TransactionGate } from '../gate.js';
import {
  assertKey, assertLease, assertValue, listPlan, prefixRange, type KeyRange, type ListPlan,
} from '../key-range.js';
import type { ListOptions, Storage, StorageEntry, StorageWriter } from '../storage.js';

export interface SqliteStorageOptions {
  /**
   * 'NORMAL' (default): in WAL mode a commit is durable once the WAL is synced at checkpoint, so a
   * power loss or OS crash may lose the last transactions, but the database is never corrupted,
   * and an application crash loses nothing. 'FULL' syncs the WAL at every commit (slower writes).
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long to wait for another writer's lock before failing with SQLITE_BUSY. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * getCached's staleness bound for commits by other connections, in ms. Default
   * DEFAULT_CACHED_READ_STALENESS_MS; 0 checks on every call.
   */
  cachedReadStalenessMs?: number;
  /**
   * Called after each commit made through this object, and awaited before the write resolves:
   * lets a process that shares the file with siblings tell them to drop their cached reads
   * (dropCachedReads), so that a caller who saw a write succeed reads it back from any of them.
   */
  afterCommit?: () => Promise<void>;
}

/**
 * Why a bound at all: every SQLite read in WAL mode takes and drops a shared lock with fcntl
 * system calls, and on the VMs Keyhold is measured on a system call costs several microseconds.
 * getCached asks SQLite whether another connection committed (PRAGMA data_version, one such read)
 * at most once per this many ms, and serves from memory in between.
 */
export const DEFAULT_CACHED_READ_STALENESS_MS = 100;

/** Entries getCached keeps before it starts over (values are small records). */
const READ_CACHE_MAX_ENTRIES = 10_000;

/** The schema this code reads and writes. Bump it with a migration when the tables change. */
export const SQLITE_SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Retry delays while another connection holds the write lock (ms), last one repeated. */
const BUSY_BACKOFF_MS = [1, 1, 2, 2, 5, 5, 10, 10, 20];

type Db = Database.Database;
type Stmt = Database.Statement;

interface SqliteError extends Error {
  code?: string;
}

const isBusy = (e: unknown): boolean =>
  e instanceof Error && typeof (e as SqliteError).code === 'string' && (e as SqliteError).code!.startsWith('SQLITE_BUSY');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** All statements, prepared once per connection. */
class Statements {
  readonly get: Stmt;
  readonly exists: Stmt;
  readonly put: Stmt;
  readonly insert: Stmt;
  readonly delete: Stmt;
  readonly countAll: Stmt;
  readonly countRange: Stmt;
  /** List statements by shape: [lower '>' ?][upper bound ?][descending ?]. */
  private readonly lists: Stmt[] = [];
  readonly begin: Stmt;
  readonly commit: Stmt;
  readonly rollback: Stmt;
  readonly busyOff: Stmt;
  readonly busyOn: Stmt;
  readonly lease: Stmt;
  readonly release: Stmt;
  readonly dataVersion: Stmt;

  constructor(db: Db, busyTimeoutMs: number) {
    this.get = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
    this.exists = db.prepare('SELECT 1 FROM kv WHERE k = ?').pluck();
    this.put = db.prepare('INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v');
    this.insert = db.prepare('INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING');
    this.delete = db.prepare('DELETE FROM kv WHERE k = ?');
    this.countAll = db.prepare('SELECT count(*) FROM kv WHERE k >= ?').pluck();
    this.countRange = db.prepare('SELECT count(*) FROM kv WHERE k >= ? AND k < ?').pluck();
    // A range scan of the primary key: one lower bound, at most one upper bound, never LIKE.
    for (let shape = 0; shape < 8; shape++) {
      const lower = shape & 1 ? 'k > ?' : 'k >= ?';
      const upper = shape & 2 ? ' AND k < ?' : '';
      const order = shape & 4 ? 'DESC' : 'ASC';
      this.lists.push(db.prepare(`SELECT k, v FROM kv WHERE ${lower}${upper} ORDER BY k ${order} LIMIT ?`).raw());
    }
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.busyOff = db.prepare('PRAGMA busy_timeout = 0');
    this.busyOn = db.prepare(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    // Acquired when free, renewed by its owner, taken over once expired; otherwise no row changes.
    this.lease = db.prepare(`
      INSERT INTO leases (name, owner, expires_at) VALUES (@name, @owner, @now + @ttl)
      ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
      WHERE leases.owner = excluded.owner OR leases.expires_at <= @now`);
    this.release = db.prepare('DELETE FROM leases WHERE name = ? AND owner = ?');
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
  }

  list(plan: ListPlan): Array<[string, Buffer]> {
    const shape = (plan.lowerInclusive ? 0 : 1) | (plan.upper !== undefined ? 2 : 0) | (plan.reverse ? 4 : 0);
    const limit = plan.limit ?? -1; // a negative LIMIT means none in SQLite
    const args = plan.upper !== undefined ? [plan.lower, plan.upper, limit] : [plan.lower, limit];
    return this.lists[shape]!.all(...args) as Array<[string, Buffer]>;
  }

  count(r: KeyRange): number {
    const n = r.upper === undefined ? this.countAll.get(r.lower) : this.countRange.get(r.lower, r.upper);
    return n as number;
  }
}

const toEntries = (rows: Array<[string, Buffer]>): StorageEntry[] => rows.map(([key, value]) => ({ key, value }));

export class SqliteStorage implements Storage {
  private readonly gate = new TransactionGate();
  private closed = false;

  readonly cachedReadStalenessMs: number;
  /** getCached's memory: null records a key known to be absent. Emptied by every write here. */
  private readonly readCache = new Map<string, Buffer | null>();
  /** When (performance.now()) data_version was last compared, and what it was. */
  private checkedAt = -Infinity;
  private dataVersion: unknown = undefined;

  private constructor(
    private readonly db: Db,
    private readonly s: Statements,
    private readonly busyTimeoutMs: number,
    cachedReadStalenessMs: number,
    private readonly afterCommit: (() => Promise<void>) | undefined,
  ) {
    this.cachedReadStalenessMs = cachedReadStalenessMs;
  }

  /** Forgets every cached read now (a sibling process committed; see afterCommit). */
  dropCachedReads(): void {
    this.readCache.clear();
  }

  /** Opens (creating if needed) the database file. The parent directory must exist. */
  static open(file: string, opts: SqliteStorageOptions = {}): SqliteStorage {
    const synchronous = opts.synchronous ?? 'NORMAL';
    const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
    const staleness = opts.cachedReadStalenessMs ?? DEFAULT_CACHED_READ_STALENESS_MS;
    if (!(Number.isSafeInteger(staleness) && staleness >= 0)) {
      throw new Error('storage: cachedReadStalenessMs must be a non-negative integer');
    }
    if (synchronous !== 'NORMAL' && synchronous !== 'FULL') throw new Error('storage: synchronous must be NORMAL or FULL');
    if (!(Number.isSafeInteger(busyTimeoutMs) && busyTimeoutMs >= 0)) {
      throw new Error('storage: busyTimeoutMs must be a non-negative integer');
    }
    const db = new Database(file, { timeout: busyTimeoutMs });
    try {
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal' && !db.memory) throw new Error(`storage: could not enable WAL on ${file} (journal_mode is ${String(mode)})`);
      db.pragma(`synchronous = ${synchronous}`);
      migrate(db);
      return new SqliteStorage(db, new Statements(db, busyTimeoutMs), busyTimeoutMs, staleness, opts.afterCommit);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  // ---- one-off operations: a single statement when no transaction is open ----

  async get(key: string): Promise<Buffer | undefined> {
    assertKey(key);
    if (this.gate.busy) return this.gate.exclusive('get', () => this.read(() => this.s.get.get(key) as Buffer | undefined));
    if (this.closed) throw closedError();
    return this.s.get.get(key) as Buffer | undefined;
  }

  async getCached(key: string): Promise<Buffer | undefined> {
    assertKey(key);
    if (this.gate.busy) return this.get(key); // a transaction of ours is open: read in turn, fresh
    if (this.closed) throw closedError();
    const now = performance.now();
    if (now - this.checkedAt >= this.cachedReadStalenessMs || this.cachedReadStalenessMs === 0) {
      const version = this.s.dataVersion.get();
      if (version !== this.dataVersion) {
        this.readCache.clear();
        this.dataVersion = version;
      }
      this.checkedAt = now;
    }
    let value = this.readCache.get(key);
    if (value === undefined) {
      value = (this.s.get.get(key) as Buffer | undefined) ?? null;
      if (this.readCache.size >= READ_CACHE_MAX_ENTRIES) this.readCache.clear();
      this.readCache.set(key, value);
    }
    return value ?? undefined;
  }

  async list(prefix: string, opts?: ListOptions): Promise<StorageEntry[]> {
    const plan = listPlan(prefix, opts);
    if (plan.limit === 0) return this.now('list', () => []);
    return this.now('list', () => toEntries(this.s.list(plan)));
  }

  async count(prefix: string): Promise<number> {
    const range = prefixRange(prefix);
    return this.now('count', () => this.s.count(range));
  }

  async put(key: string, value: Buffer): Promise<void> {
    assertKey(key);
    assertValue(value);
    await this.write('put', () => {
      this.s.put.run(key, value);
    });
  }

  async putIfAbsent(key: string, value: Buffer): Promise<boolean> {
    assertKey(key);
    assertValue(value);
    return this.write('putIfAbsent', () => this.s.insert.run(key, value).changes === 1);
  }

  async delete(key: string): Promise<boolean> {
    assertKey(key);
    return this.write('delete', () => this.s.delete.run(key).changes === 1);
  }

  async tryAcquireLease(name: string, owner: string, ttlMs: number, nowMs: number): Promise<boolean> {
    assertLease(name, owner, ttlMs, nowMs);
    return this.write('tryAcquireLease', () => this.s.lease.run({ name, owner, now: nowMs, ttl: ttlMs }).changes === 1);
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    assertLease(name, owner);
    await this.write('releaseLease', () => {
      this.s.release.run(name, owner);
    });
  }

  // ---- transactions ----

  async transaction<T>(fn: (tx: StorageWriter) => Promise<T>): Promise<T> {
    const result = await this.transactionInGate(fn);
    if (this.afterCommit) await this.afterCommit();
    return result;
  }

  private async transactionInGate<T>(fn: (tx: StorageWriter) => Promise<T>): Promise<T> {
    const wait = this.gate.enter('transaction');
    if (wait !== undefined) await wait;
    try {
      if (this.closed) throw closedError();
      await this.begin();
      const tx = new SqliteTransaction(this.db, this.s);
      let result: T;
      try {
        result = await this.gate.runScoped(() => fn(tx));
        tx.finish();
        if (!this.db.inTransaction) throw new Error('storage: SQLite ended the transaction early (after an error); nothing was committed');
        this.s.commit.run();
        this.readCache.clear();
      } catch (e) {
        tx.finish();
        this.rollback(e);
        throw e;
      }
      return result;
    } finally {
      this.gate.leave();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.gate.exclusive('close', () => {
      if (this.closed) return;
      this.closed = true;
      this.db.close();
    });
  }

  // ---- internals ----

  /** Runs a synchronous read now if no transaction is open, else in its turn. */
  private now<T>(what: string, op: () => T): T | Promise<T> {
    if (this.gate.busy) return this.gate.exclusive(what, () => this.read(op));
    return this.read(op);
  }

  private read<T>(op: () => T): T {
    if (this.closed) throw closedError();
    return op();
  }

  /** A one-off write: its own short BEGIN IMMEDIATE ... COMMIT, holding the gate throughout. */
  private async write<T>(what: string, op: () => T): Promise<T> {
    const result = await this.writeInGate(what, op);
    if (this.afterCommit) await this.afterCommit();
    return result;
  }

  private async writeInGate<T>(what: string, op: () => T): Promise<T> {
    const wait = this.gate.enter(what);
    if (wait !== undefined) await wait;
    try {
      if (this.closed) throw closedError();
      const begun = this.begin();
      if (begun !== undefined) await begun;
      let result: T;
      try {
        result = op();
        this.s.commit.run();
        this.readCache.clear();
      } catch (e) {
        this.rollback(e);
        throw e;
      }
      return result;
    } finally {
      this.gate.leave();
    }
  }

  /**
   * BEGIN IMMEDIATE without blocking the event loop: undefined when the write lock was free,
   * else a promise that retries on timers until `busyTimeoutMs` has passed.
   */
  private begin(): Promise<void> | undefined {
    if (this.tryBegin() === undefined) return undefined;
    return this.beginSlowly();
  }

  private async beginSlowly(): Promise<void> {
    const deadline = Date.now() + this.busyTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      const busy = left > 0 ? undefined : this.tryBegin();
      if (left <= 0) {
        if (busy === undefined) return;
        const e = new Error(
          `storage: another connection held the SQLite write lock for more than ${this.busyTimeoutMs} ms`,
          { cause: busy },
        ) as SqliteError;
        e.code = busy.code ?? 'SQLITE_BUSY';
        throw e;
      }
      await sleep(Math.min(left, BUSY_BACKOFF_MS[Math.min(attempt, BUSY_BACKOFF_MS.length - 1)]!));
      if (this.tryBegin() === undefined) return;
    }
  }

  /**
   * One BEGIN IMMEDIATE attempt with SQLite's busy handler off: undefined when begun, the
   * SQLITE_BUSY error when another writer holds the lock.
   */
  private tryBegin(): SqliteError | undefined {
    this.s.busyOff.get();
    try {
      this.s.begin.run();
      return undefined;
    } catch (e) {
      if (isBusy(e)) return e as SqliteError;
      throw e;
    } finally {
      this.s.busyOn.get();
    }
  }

  private rollback(cause: unknown): void {
    if (!this.db.inTransaction) return;
    try {
      this.s.rollback.run();
    } catch (e) {
      throw new AggregateError([cause, e], 'storage: the transaction failed and its rollback failed too');
    }
  }
}

/** The handle a transaction callback gets: the same statements, on the connection holding the write lock. */
class SqliteTransaction implements StorageWriter {
  private active = true;

  constructor(private readonly db: Db, private readonly s: Statements) {}

  async get(key: string): Promise<Buffer | undefined> {
    assertKey(key);
    this.assertActive();
    return this.s.get.get(key) as Buffer | undefined;
  }

  async list(prefix: string, opts?: ListOptions): Promise<StorageEntry[]> {
    const plan = listPlan(prefix, opts);
    this.assertActive();
    if (plan.limit === 0) return [];
    return toEntries(this.s.list(plan));
  }

  async count(prefix: string): Promise<number> {
    const range = prefixRange(prefix);
    this.assertActive();
    return this.s.count(range);
  }

  async put(key: string, value: Buffer): Promise<void> {
    assertKey(key);
    assertValue(value);
    this.assertActive();
    this.s.put.run(key, value);
  }

  async putIfAbsent(key: string, value: Buffer): Promise<boolean> {
    assertKey(key);
    assertValue(value);
    this.assertActive();
    return this.s.insert.run(key, value).changes === 1;
  }

  async delete(key: string): Promise<boolean> {
    assertKey(key);
    this.assertActive();
    return this.s.delete.run(key).changes === 1;
  }

  finish(): void {
    this.active = false;
  }

  private assertActive(): void {
    if (!this.active) throw new Error('storage: the transaction is over; its handle cannot be used any more');
    // After some errors (SQLITE_FULL, SQLITE_IOERR...) SQLite rolls back by itself; a statement
    // run now would autocommit outside the transaction.
    if (!this.db.inTransaction) throw new Error('storage: SQLite ended the transaction early (after an error)');
  }
}

function closedError(): Error {
  return new Error('storage: the store is closed');
}

/** Creates the schema on a new file and refuses a file written by a newer Keyhold. */
function migrate(db: Db): void {
  db.prepare('BEGIN IMMEDIATE').run();
  try {
    db.exec(SCHEMA);
    db.prepare("INSERT INTO meta (name, value) VALUES ('schema_version', ?) ON CONFLICT (name) DO NOTHING")
      .run(String(SQLITE_SCHEMA_VERSION));
    const found = Number(db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").pluck().get());
    if (found !== SQLITE_SCHEMA_VERSION) {
      throw new Error(`storage: database schema version ${found} is not supported (this build reads version ${SQLITE_SCHEMA_VERSION})`);
    }
    db.prepare('COMMIT').run();
  } catch (e) {
    if (db.inTransaction) db.prepare('ROLLBACK').run();
    throw e;
  }
}
