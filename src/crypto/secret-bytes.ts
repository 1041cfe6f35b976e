import { createSecretKey, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * Key material in memory. It never prints (String(), JSON, util.inspect all give '[redacted]'),
 * compares in constant time, and can be zeroized. Getting at the bytes takes a call named
 * `insecureExpose` so that every place that handles raw key bytes is easy to find (STYLE.md §5).
 *
 * The bytes are always in a buffer of their own (never a slice of Node's shared allocation pool),
 * so zeroize() wipes them and nothing else.
 */
export class SecretBytes {
  // An ES private field: not enumerable, not reachable by reflection, not copied by structuredClone.
  readonly #bytes: Buffer;
  #zeroized = false;
  /** node:crypto's handle on the same bytes, made on first use (see insecureKeyObject). */
  #keyObject: KeyObject | undefined;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Takes a copy of `buf`; the caller still owns (and should wipe) the original. */
  static from(buf: Buffer): SecretBytes {
    const copy = Buffer.alloc(buf.length); // Buffer.alloc never uses the shared pool
    buf.copy(copy);
    return new SecretBytes(copy);
  }

  /** `n` bytes from the CSPRNG. */
  static random(n: number): SecretBytes {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('SecretBytes.random: n must be a non-negative integer');
    return new SecretBytes(randomFillSync(Buffer.alloc(n)));
  }

  get length(): number {
    return this.#bytes.length;
  }

  /**
   * The underlying buffer itself, not a copy: whatever the caller does to it happens to the secret.
   * Use it only to hand the bytes to node:crypto, and never log, store or return it.
   */
  insecureExpose(): Buffer {
    if (this.#zeroized) throw new Error('SecretBytes: used after zeroize()');
    return this.#bytes;
  }

  /**
   * The bytes as a node:crypto secret KeyObject, created once and reused: node:crypto functions
   * given a Buffer (hkdfSync, for one) wrap it in a new KeyObject on every call, a copy and an
   * allocation per request on the hot path. The KeyObject holds its own copy inside OpenSSL's
   * memory, which node clears when the object is collected; zeroize() drops our reference to it.
   * Same rules as insecureExpose: only for handing to node:crypto.
   */
  insecureKeyObject(): KeyObject {
    if (this.#zeroized) throw new Error('SecretBytes: used after zeroize()');
    return (this.#keyObject ??= createSecretKey(this.#bytes));
  }

  /** Constant-time comparison of the contents; false when the lengths differ. */
  equals(other: SecretBytes): boolean {
    const a = this.insecureExpose();
    const b = other.insecureExpose();
    if (a.length !== b.length) return false;
    return timingSafeEqual(a, b);
  }

  /** Overwrites the bytes with zeros. Idempotent; afterwards insecureExpose() and equals() throw. */
  zeroize(): void {
    this.#bytes.fill(0);
    this.#keyObject = undefined;
    this.#zeroized = true;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
