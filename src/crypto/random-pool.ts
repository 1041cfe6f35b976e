import { randomFillSync } from 'node:crypto';

/*
 * CSPRNG output, fetched from OpenSSL 4 KiB at a time and handed out in small pieces.
 *
 * Why: every RAND_bytes call costs OpenSSL a lock, a fork check and a system call (getpid), several
 * microseconds on the VMs Keyhold runs on; a GenerateDataKey needs a data key, a nonce and an IV.
 * The bytes are the CSPRNG's own; nothing is stretched or derived. Each piece is copied into a
 * buffer of its own (never Node's shared pool, so a caller can zeroize it) and wiped from the pool
 * as it is handed out, so no two callers ever get the same bytes and the pool never holds bytes
 * that were already given away. A fork would duplicate the pool: Keyhold never forks a process
 * that has used it (child processes are spawned, not forked copies of this one).
 */
const POOL_BYTES = 4096;
/** Larger requests bypass the pool. */
export const RANDOM_POOL_MAX_REQUEST = 1024;

const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `n` bytes from the CSPRNG, in a buffer of their own. */
export function randomBytesPooled(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('randomBytesPooled: n must be a non-negative integer');
  const out = Buffer.allocUnsafeSlow(n);
  if (n > RANDOM_POOL_MAX_REQUEST) return randomFillSync(out);
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  pool.copy(out, 0, offset, offset + n);
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}
