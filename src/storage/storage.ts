/**
 * The Storage seam: an async, ordered key-value store with serializable transactions and leases.
 *
 * Everything above storage/ talks to these interfaces only, so an engine can be swapped (memory,
 * SQLite, PostgreSQL) without changing a caller. Each engine runs the contract suite in
 * `contract.ts`; a behaviour that is not pinned down there is not part of the contract.
 *
 * Keys are well-formed Unicode strings of 1 to MAX_KEY_LENGTH UTF-16 code units; anything else is a
 * programming error and rejects with a plain Error. Values are Buffers (empty allowed). Every
 * Buffer handed back is the caller's own copy; a Buffer passed in may be reused by the caller as
 * soon as the call returns.
 */

export interface StorageEntry {
  key: string;
  value: Buffer;
}

export interface ListOptions {
  /** Exclusive start key; with `reverse`, exclusive end key. Need not exist, nor share the prefix. */
  after?: string;
  /** At most this many entries (a non-negative integer). No limit when absent. */
  limit?: number;
  /** Descending key order. */
  reverse?: boolean;
}

export interface StorageReader {
  get(key: string): Promise<Buffer | undefined>;
  /**
   * Entries whose key starts with `prefix` ('' lists everything), ordered by key in the byte order
   * of their UTF-8 encoding, which is Unicode code point order (not JavaScript's UTF-16 `<`).
   */
  list(prefix: string, opts?: ListOptions): Promise<StorageEntry[]>;
  count(prefix: string): Promise<number>;
}

export interface StorageWriter extends StorageReader {
  put(key: string, value: Buffer): Promise<void>;
  /** True when written, false when the key already had a value (which is left alone). */
  putIfAbsent(key: string, value: Buffer): Promise<boolean>;
  /** True when something was removed. */
  delete(key: string): Promise<boolean>;
}

export interface Storage extends StorageWriter {
  /**
   * A read for the request hot path (access keys, key records, aliases) that may be answered from
   * memory. Writes made through this Storage object are visible to it at once; a change committed
   * by another process (or another Storage object on the same store) is visible within
   * `cachedReadStalenessMs`. The Buffer may be shared with other callers: never modify it.
   * Anything that decides a write must read inside a transaction instead.
   */
  getCached(key: string): Promise<Buffer | undefined>;
  /** The bound on getCached's staleness for changes made elsewhere, in milliseconds (0: never stale). */
  readonly cachedReadStalenessMs: number;
  /**
   * Runs fn atomically and in isolation (serializable) against this store, across processes
   * sharing it. If fn throws, nothing it wrote is kept and the error propagates. The `tx` handle is
   * valid only until fn settles.
   *
   * Inside fn use only `tx`: a nested `transaction` call, or any other call on this Storage made
   * from within fn, rejects with an Error (it could only deadlock or escape the transaction).
   * Operations outside a transaction never observe another transaction's uncommitted writes.
   */
  transaction<T>(fn: (tx: StorageWriter) => Promise<T>): Promise<T>;
  /**
   * Time-limited exclusive lease, for jobs that must run once cluster-wide. Returns true if `owner`
   * now holds `name` until nowMs + ttlMs: acquired, renewed (owner already held it), or taken over
   * (the previous holder's lease had expired, i.e. its end is <= nowMs). All decisions use the
   * `nowMs` passed in, so every node must pass comparable clocks.
   */
  tryAcquireLease(name: string, owner: string, ttlMs: number, nowMs: number): Promise<boolean>;
  /** Gives the lease up if `owner` holds it; does nothing otherwise. */
  releaseLease(name: string, owner: string): Promise<void>;
  /** Waits for running work, then closes. Idempotent; any later call rejects. */
  close(): Promise<void>;
}

/** Longest key accepted, in UTF-16 code units. Bounds index entries and keeps paths readable. */
export const MAX_KEY_LENGTH = 1024;
