import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { aesGcmDecrypt, aesGcmEncrypt, AuthenticationFailedError, scryptKey, SecretBytes } from '../crypto/index.js';

/**
 * A Seal protects the root key at rest. The wrapped root key lives in Storage; what unwraps it
 * (a key file, a passphrase, an HSM key) lives elsewhere, so a copy of the database alone opens
 * nothing.
 */
export interface Seal {
  readonly kind: string;
  wrap(rootKey: SecretBytes): Promise<Buffer>;
  /** Throws SealError when the wrapped key cannot be opened with this seal. */
  unwrap(wrapped: Buffer): Promise<SecretBytes>;
}

export class SealError extends Error {}

const WRAP_VERSION = 1;

function gcmWrap(kek: Buffer, plaintext: Buffer, aad: Buffer, prefix: Buffer = Buffer.alloc(0)): Buffer {
  const iv = randomBytes(12);
  const { ciphertext, tag } = aesGcmEncrypt(kek, iv, plaintext, Buffer.concat([aad, prefix]));
  return Buffer.concat([Buffer.from([WRAP_VERSION]), prefix, iv, ciphertext, tag]);
}

function gcmUnwrap(kek: Buffer, wrapped: Buffer, aad: Buffer, prefixLength = 0): SecretBytes {
  if (wrapped.length < 1 + prefixLength + 12 + 16 || wrapped[0] !== WRAP_VERSION) {
    throw new SealError('the stored root key has an unknown format');
  }
  const prefix = wrapped.subarray(1, 1 + prefixLength);
  const iv = wrapped.subarray(1 + prefixLength, 13 + prefixLength);
  const ciphertext = wrapped.subarray(13 + prefixLength, wrapped.length - 16);
  const tag = wrapped.subarray(wrapped.length - 16);
  try {
    const plain = aesGcmDecrypt(kek, iv, ciphertext, tag, Buffer.concat([aad, prefix]));
    const key = SecretBytes.from(plain);
    plain.fill(0);
    return key;
  } catch (e) {
    if (e instanceof AuthenticationFailedError) throw new SealError('the seal does not open the stored root key');
    throw e;
  }
}

/**
 * The embedded default: a 256-bit key-encryption key in a file of its own (0600) in the data dir.
 * Convenient, and only as strong as the file's protection: keep the file off backups of the database.
 */
export class FileSeal implements Seal {
  readonly kind = 'file';
  private constructor(private readonly kek: SecretBytes) {}

  static async open(file: string): Promise<FileSeal> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      bytes = randomBytes(32);
      await writeFile(file, bytes, { mode: 0o600, flag: 'wx' });
    }
    await chmod(file, 0o600);
    if (bytes.length !== 32) throw new SealError(`seal key file ${file} is not 32 bytes`);
    const kek = SecretBytes.from(bytes);
    bytes.fill(0);
    return new FileSeal(kek);
  }

  async wrap(rootKey: SecretBytes): Promise<Buffer> {
    return gcmWrap(this.kek.insecureExpose(), rootKey.insecureExpose(), Buffer.from('keyhold/seal/file/v1'));
  }

  async unwrap(wrapped: Buffer): Promise<SecretBytes> {
    return gcmUnwrap(this.kek.insecureExpose(), wrapped, Buffer.from('keyhold/seal/file/v1'));
  }
}

/** scrypt cost: N=2^15, r=8, p=1 (about 32 MiB and 0.1 s), done once per start. */
const SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;

/**
 * The root key wrapped under a key derived from an operator's passphrase with scrypt. The salt and
 * cost parameters are stored beside the wrapped key and bound into its associated data.
 */
export class PassphraseSeal implements Seal {
  readonly kind = 'passphrase';
  constructor(private readonly passphrase: string) {
    if (passphrase.length < 12) throw new SealError('the seal passphrase must be at least 12 characters');
  }

  async wrap(rootKey: SecretBytes): Promise<Buffer> {
    const salt = randomBytes(16);
    const params = Buffer.alloc(12);
    params.writeUInt32BE(SCRYPT.N, 0);
    params.writeUInt32BE(SCRYPT.r, 4);
    params.writeUInt32BE(SCRYPT.p, 8);
    const prefix = Buffer.concat([salt, params]);
    const kek = await scryptKey(this.passphrase, salt, SCRYPT);
    try {
      return gcmWrap(kek, rootKey.insecureExpose(), Buffer.from('keyhold/seal/passphrase/v1'), prefix);
    } finally {
      kek.fill(0);
    }
  }

  async unwrap(wrapped: Buffer): Promise<SecretBytes> {
    if (wrapped.length < 29) throw new SealError('the stored root key has an unknown format');
    const salt = wrapped.subarray(1, 17);
    const N = wrapped.readUInt32BE(17);
    const r = wrapped.readUInt32BE(21);
    const p = wrapped.readUInt32BE(25);
    if (N > 1 << 20 || r > 32 || p > 16) throw new SealError('the stored scrypt parameters are out of range');
    const kek = await scryptKey(this.passphrase, salt, { N, r, p });
    try {
      return gcmUnwrap(kek, wrapped, Buffer.from('keyhold/seal/passphrase/v1'), 28);
    } finally {
      kek.fill(0);
    }
  }
}
