import { scrypt } from 'node:crypto';

export interface ScryptParams {
  /** CPU/memory cost, a power of two > 1. */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelism. */
  p: number;
}

/**
 * Upper bound on the memory one derivation may use. Parameters may come from stored data (a sealed
 * root key records its own N, r, p), so a tampered record must not be able to ask for unbounded memory.
 */
export const SCRYPT_MAX_MEMORY = 1024 * 1024 * 1024;

/**
 * scrypt (RFC 7914) through OpenSSL. Node's default maxmem (32 MiB) is too small for strong
 * parameters, so it is set from the parameters: OpenSSL needs 128*r*(N+2) bytes for V plus 128*r*p
 * for B (RFC 7914 §5-6); we add 1 MiB of slack and refuse anything above SCRYPT_MAX_MEMORY.
 */
export function scryptKey(
  passphrase: string | Buffer, salt: Buffer, params: ScryptParams, length = 32,
): Promise<Buffer> {
  const { N, r, p } = params;
  for (const [name, v] of [['N', N], ['r', r], ['p', p], ['length', length]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) return Promise.reject(new RangeError(`scrypt ${name} must be a positive integer`));
  }
  if (N < 2 || (N & (N - 1)) !== 0) return Promise.reject(new RangeError('scrypt N must be a power of two > 1'));
  const maxmem = 128 * r * (N + 2) + 128 * r * p + 1024 * 1024;
  if (maxmem > SCRYPT_MAX_MEMORY) return Promise.reject(new RangeError('scrypt parameters need too much memory'));
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, length, { N, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}
