/**
 * Remembers the decoded form of stored values, keyed by path and checked against the exact bytes
 * just read: a hit needs the same bytes (a memcmp), so a value another process changed is decoded
 * afresh, and nothing is ever served that storage does not hold at this moment. It saves the
 * parse and the allocations of decoding the same record on every request, not the read itself.
 *
 * Decoded values are deep-frozen, since every caller shares them: code that wants to change one
 * must copy it first (structuredClone), and a mutation by mistake throws instead of leaking into
 * other requests.
 */
export class DecodedCache<T extends object> {
  private readonly entries = new Map<string, { raw: Buffer; value: T }>();

  constructor(
    private readonly decode: (raw: Buffer) => T,
    private readonly maxEntries = 10_000,
  ) {}

  /** The decoded value of `raw`, the bytes just read at `path`. */
  get(path: string, raw: Buffer): T {
    const hit = this.entries.get(path);
    if (hit !== undefined && hit.raw.equals(raw)) return hit.value;
    const value = deepFreeze(this.decode(raw));
    if (hit === undefined && this.entries.size >= this.maxEntries) this.entries.clear();
    // Our own copy of the bytes: the caller's buffer may be reused or changed.
    this.entries.set(path, { raw: Buffer.from(raw), value });
    return value;
  }

  /** Whether a decoded value for `path` is held (tests of what stays in memory). */
  has(path: string): boolean {
    return this.entries.has(path);
  }

  /** Forgets one path (after a delete, so the memory goes too). */
  forget(path: string): void {
    this.entries.delete(path);
  }
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v as object)) deepFreeze(child);
  }
  return v;
}
