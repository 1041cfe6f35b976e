/**
 * In-process Storage for tests and `--storage memory`. Nothing survives the process.
 *
 * Transactions buffer their writes and apply them in one synchronous step at commit, so a
 * transaction that throws leaves nothing behind. The TransactionGate serializes transactions, and
 * one-off operations wait while one is open; the committed map therefore never changes under a
 * running transaction, which makes every transaction serializable.
 */
import { TransactionGate } from '../gate.js';
import {
  assertKey, assertLease, assertValue, compareKeys, inRange, listPlan, prefixRange,
  type KeyRange, type ListPlan,
} from '../key-range.js';
import type { ListOptions, Storage, StorageEntry, StorageWriter } from '../storage.js';
import { SortedMap } from './sorted-map.js';

interface Lease {
  owner: string;
  expiresAt: number;
}

const copy = (b: Buffer): Buffer => Buffer.from(b);

function listCommitted(data: SortedMap, plan: ListPlan): StorageEntry[] {
  const out: StorageEntry[] = [];
  if (plan.limit === 0) return out;
  for (const key of data.range(plan, plan.reverse)) {
    out.push({ key, value: copy(data.get(key)!) });
    if (out.length === plan.limit) break;
  }
  return out;
}

export class MemoryStorage implements Storage {
  private readonly data = new SortedMap();
  private readonly leases = new Map<string, Lease>();
  private readonly gate = new TransactionGate();
  private closed = false;

  async get(key: string): Promise<Buffer | undefined> {
    assertKey(key);
    if (this.gate.busy) return this.gate.exclusive('get', () => this.getNow(key));
    return this.getNow(key);
  }

  /** One process, one map: nothing can change it elsewhere, so this is get without the copy. */
  readonly cachedReadStalenessMs = 0;

  async getCached(key: string): Promise<Buffer | undefined> {
    assertKey(key);
    if (this.gate.busy) return this.gate.exclusive('getCached', () => this.getShared(key));
    return this.getShared(key);
  }

  async list(prefix: string, opts?: ListOptions): Promise<StorageEntry[]> {
    const plan = listPlan(prefix, opts);
    return this.now('list', () => listCommitted(this.data, plan));
  }

  async count(prefix: string): Promise<number> {
    const range = prefixRange(prefix);
    return this.now('count', () => this.data.count(range));
  }

  async put(key: string, value: Buffer): Promise<void> {
    assertKey(key);
    assertValue(value);
    return this.now('put', () => this.data.set(key, copy(value)));
  }

  async putIfAbsent(key: string, value: Buffer): Promise<boolean> {
    assertKey(key);
    assertValue(value);
    return this.now('putIfAbsent', () => {
      if (this.data.has(key)) return false;
      this.data.set(key, copy(value));
      return true;
    });
  }

  async delete(key: string): Promise<boolean> {
    assertKey(key);
    return this.now('delete', () => this.data.delete(key));
  }

  async transaction<T>(fn: (tx: StorageWriter) => Promise<T>): Promise<T> {
    const wait = this.gate.enter('transaction');
    if (wait !== undefined) await wait;
    try {
      this.assertOpen();
      const tx = new MemoryTransaction(this.data);
      try {
        const result = await this.gate.runScoped(() => fn(tx));
        tx.commit();
        return result;
      } finally {
        tx.finish();
      }
    } finally {
      this.gate.leave();
    }
  }

  async tryAcquireLease(name: string, owner: string, ttlMs: number, nowMs: number): Promise<boolean> {
    assertLease(name, owner, ttlMs, nowMs);
    return this.now('tryAcquireLease', () => {
      const held = this.leases.get(name);
      if (held !== undefined && held.owner !== owner && held.expiresAt > nowMs) return false;
      this.leases.set(name, { owner, expiresAt: nowMs + ttlMs });
      return true;
    });
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    assertLease(name, owner);
    return this.now('releaseLease', () => {
      if (this.leases.get(name)?.owner === owner) this.leases.delete(name);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.gate.exclusive('close', () => {
      this.closed = true;
    });
  }

  private getNow(key: string): Buffer | undefined {
    this.assertOpen();
    const v = this.data.get(key);
    return v === undefined ? undefined : copy(v);
  }

  private getShared(key: string): Buffer | undefined {
    this.assertOpen();
    return this.data.get(key);
  }

  /** Runs a one-off operation now if no transaction is open, else in its turn. */
  private now<T>(what: string, op: () => T): T | Promise<T> {
    if (this.gate.busy) {
      return this.gate.exclusive(what, () => {
        this.assertOpen();
        return op();
      });
    }
    this.assertOpen();
    return op();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('storage: the store is closed');
  }
}

/** Reads see the transaction's own writes layered over the committed map, which cannot change meanwhile. */
class MemoryTransaction implements StorageWriter {
  /** Buffered writes; null marks a delete. */
  private readonly writes = new Map<string, Buffer | null>();
  private active = true;

  constructor(private readonly data: SortedMap) {}

  async get(key: string): Promise<Buffer | undefined> {
    assertKey(key);
    this.assertActive();
    const v = this.visible(key);
    return v === undefined ? undefined : copy(v);
  }

  async list(prefix: string, opts?: ListOptions): Promise<StorageEntry[]> {
    const plan = listPlan(prefix, opts);
    this.assertActive();
    if (this.writes.size === 0) return listCommitted(this.data, plan);
    const out: StorageEntry[] = [];
    if (plan.limit === 0) return out;
    for (const key of this.mergedKeys(plan)) {
      const v = this.visible(key);
      if (v === undefined) continue;
      out.push({ key, value: copy(v) });
      if (out.length === plan.limit) break;
    }
    return out;
  }

  async count(prefix: string): Promise<number> {
    const range = prefixRange(prefix);
    this.assertActive();
    let n = this.data.count(range);
    for (const [key, v] of this.writes) {
      if (!inRange(key, range)) continue;
      const committed = this.data.has(key);
      if (v === null && committed) n--;
      else if (v !== null && !committed) n++;
    }
    return n;
  }

  async put(key: string, value: Buffer): Promise<void> {
    assertKey(key);
    assertValue(value);
    this.assertActive();
    this.writes.set(key, copy(value));
  }

  async putIfAbsent(key: string, value: Buffer): Promise<boolean> {
    assertKey(key);
    assertValue(value);
    this.assertActive();
    if (this.visible(key) !== undefined) return false;
    this.writes.set(key, copy(value));
    return true;
  }

  async delete(key: string): Promise<boolean> {
    assertKey(key);
    this.assertActive();
    const existed = this.visible(key) !== undefined;
    this.writes.set(key, null);
    return existed;
  }

  /** Applies the buffered writes in one synchronous step. */
  commit(): void {
    this.assertActive();
    this.active = false;
    for (const [key, v] of this.writes) {
      if (v === null) this.data.delete(key);
      else this.data.set(key, v);
    }
  }

  finish(): void {
    this.active = false;
  }

  private visible(key: string): Buffer | undefined {
    const w = this.writes.get(key);
    if (w !== undefined) return w ?? undefined;
    return this.data.get(key);
  }

  /** Committed keys and written keys in the range, merged in list order without duplicates. */
  private *mergedKeys(plan: ListPlan): Generator<string> {
    const sign = plan.reverse ? -1 : 1;
    const written = [...this.writes.keys()]
      .filter((k) => inRange(k, plan as KeyRange))
      .sort((a, b) => sign * compareKeys(a, b));
    let i = 0;
    for (const key of this.data.range(plan, plan.reverse)) {
      while (i < written.length && sign * compareKeys(written[i]!, key) < 0) yield written[i++]!;
      if (i < written.length && written[i] === key) i++;
      yield key;
    }
    while (i < written.length) yield written[i++]!;
  }

  private assertActive(): void {
    if (!this.active) throw new Error('storage: the transaction is over; its handle cannot be used any more');
  }
}
