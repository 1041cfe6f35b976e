/**
 * Argument checks and key ordering shared by the Storage engines. Bad arguments are programming
 * errors, so they throw plain Errors (the API edge reports them as internal errors).
 */
import { MAX_KEY_LENGTH, type ListOptions } from './storage.js';

/** A lone surrogate cannot be encoded in UTF-8: SQLite would store U+FFFD and two keys would collide. */
const LONE_SURROGATE = /\p{Cs}/u;

export function assertKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || LONE_SURROGATE.test(key)) {
    throw new Error(`storage: a key must be a well-formed string of 1 to ${MAX_KEY_LENGTH} characters`);
  }
}

export function assertPrefix(prefix: string): void {
  if (typeof prefix !== 'string' || prefix.length > MAX_KEY_LENGTH || LONE_SURROGATE.test(prefix)) {
    throw new Error(`storage: a prefix must be a well-formed string of at most ${MAX_KEY_LENGTH} characters`);
  }
}

export function assertValue(value: Buffer): void {
  if (!Buffer.isBuffer(value)) throw new Error('storage: a value must be a Buffer');
}

export function assertLease(name: string, owner: string, ttlMs?: number, nowMs?: number): void {
  if (typeof name !== 'string' || name.length === 0 || typeof owner !== 'string' || owner.length === 0) {
    throw new Error('storage: a lease needs a non-empty name and owner');
  }
  if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new Error('storage: a lease ttl must be a positive number of milliseconds');
  }
  if (nowMs !== undefined && !Number.isFinite(nowMs)) throw new Error('storage: nowMs must be a finite number');
}

/**
 * UTF-16 code unit order differs from code point order only where a surrogate (part of a code point
 * above U+FFFF) meets a unit in U+E000..U+FFFF. Moving the surrogates above that block restores
 * code point order, which is also the byte order of UTF-8 and so SQLite's BINARY collation.
 */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/**
 * The least string greater than every string that starts with `prefix`, or undefined when there is
 * none (empty prefix, or only U+10FFFF code points). Keys with the prefix are exactly those in
 * [prefix, bound): a range an ordered index can scan, unlike LIKE.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1; // surrogates are not code points of text
      return points.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

/** A key interval: lower bound always present (maybe ''), upper bound exclusive or absent. */
export interface KeyRange {
  lower: string;
  lowerInclusive: boolean;
  upper: string | undefined;
}

export interface ListPlan extends KeyRange {
  reverse: boolean;
  /** undefined: no limit. */
  limit: number | undefined;
}

export function inRange(key: string, r: KeyRange): boolean {
  const lo = compareKeys(key, r.lower);
  if (r.lowerInclusive ? lo < 0 : lo <= 0) return false;
  return r.upper === undefined || compareKeys(key, r.upper) < 0;
}

export function prefixRange(prefix: string): KeyRange {
  assertPrefix(prefix);
  return { lower: prefix, lowerInclusive: true, upper: prefixUpperBound(prefix) };
}

/**
 * Folds prefix and `after` into one interval with a single lower and a single upper bound, so an
 * index range scan starts right at the cursor instead of filtering from the prefix on.
 */
export function listPlan(prefix: string, opts: ListOptions | undefined): ListPlan {
  const range = prefixRange(prefix);
  const after = opts?.after;
  const limit = opts?.limit;
  const reverse = opts?.reverse ?? false;
  if (typeof reverse !== 'boolean') throw new Error('storage: list reverse must be a boolean');
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new Error('storage: list limit must be a non-negative integer');
  }
  if (after !== undefined) {
    if (typeof after !== 'string' || after.length > MAX_KEY_LENGTH || LONE_SURROGATE.test(after)) {
      throw new Error(`storage: list after must be a well-formed string of at most ${MAX_KEY_LENGTH} characters`);
    }
    if (reverse) {
      if (range.upper === undefined || compareKeys(after, range.upper) < 0) range.upper = after;
    } else if (compareKeys(after, range.lower) >= 0) {
      range.lower = after;
      range.lowerInclusive = false;
    }
  }
  return { ...range, reverse, limit };
}
