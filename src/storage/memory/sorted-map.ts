import { compareKeys, type KeyRange } from '../key-range.js';

/**
 * Keys kept in a sorted array (code point order) beside a Map of values. Inserts shift the array,
 * which is fine at the sizes an in-memory store is meant for (tests, development).
 */
export class SortedMap {
  private readonly keys: string[] = [];
  private readonly values = new Map<string, Buffer>();

  get size(): number {
    return this.keys.length;
  }

  get(key: string): Buffer | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /** Stores `value` as is: the caller hands over a Buffer nobody else holds. */
  set(key: string, value: Buffer): void {
    if (!this.values.has(key)) this.keys.splice(this.firstIndex(key, true), 0, key);
    this.values.set(key, value);
  }

  delete(key: string): boolean {
    if (!this.values.delete(key)) return false;
    this.keys.splice(this.firstIndex(key, true), 1);
    return true;
  }

  /** Keys in the range, ascending or descending. */
  *range(r: KeyRange, reverse: boolean): Generator<string> {
    const [from, to] = this.bounds(r);
    if (reverse) {
      for (let i = to - 1; i >= from; i--) yield this.keys[i]!;
    } else {
      for (let i = from; i < to; i++) yield this.keys[i]!;
    }
  }

  count(r: KeyRange): number {
    const [from, to] = this.bounds(r);
    return Math.max(0, to - from);
  }

  private bounds(r: KeyRange): [number, number] {
    const from = this.firstIndex(r.lower, r.lowerInclusive);
    const to = r.upper === undefined ? this.keys.length : this.firstIndex(r.upper, true);
    return [from, Math.max(from, to)];
  }

  /** Index of the first key >= bound (inclusive) or > bound (exclusive). */
  private firstIndex(bound: string, inclusive: boolean): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(this.keys[mid]!, bound);
      if (inclusive ? c < 0 : c <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
