import { createPrivateKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import {
  IMPORT_WRAPPING_KEY_BITS, SecretBytes, sha256Hex, unwrapImportedKeyMaterial,
  type ImportWrappingAlgorithm, type ImportWrappingKeySpec,
} from '../crypto/index.js';
import { encodeImportToken, isWellFormedImportToken } from '../format/index.js';
import type { Barrier, Storage } from '../barrier/index.js';
import { ExpiredImportTokenException, InvalidCiphertextException, InvalidImportTokenException } from '../errors/index.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** AWS: "The public key and import token ... are valid for 24 hours". */
export const IMPORT_PARAMETERS_VALID_MS = 24 * 60 * 60 * 1000;

/** Storage layout: the sealed parameters by token hash, and an expiry index for the purge. */
const P = {
  params: (tokenHash: string) => `import-params/${tokenHash}`,
  expiryPrefix: 'import-params-exp/',
  expiry: (at: number, tokenHash: string) => `import-params-exp/${String(at).padStart(15, '0')}/${tokenHash}`,
};

interface StoredParameters {
  v: 1;
  keyId: string;
  algorithm: ImportWrappingAlgorithm;
  keySpec: ImportWrappingKeySpec;
  createdAt: number;
  expiresAt: number;
  /** PKCS#8 DER, base64. The record is sealed by the barrier as a whole. */
  privateKey: string;
}

export interface IssuedImportParameters {
  importToken: Buffer;
  /** SubjectPublicKeyInfo DER, as AWS returns PublicKey. */
  publicKey: Buffer;
  parametersValidTo: number;
}

/** What a consumed token yields: the one chance to unwrap material with its private key. */
export interface ConsumedImportToken {
  readonly algorithm: ImportWrappingAlgorithm;
  readonly keySpec: ImportWrappingKeySpec;
  /** Unwraps; any failure at all is one InvalidCiphertextException with one message (no padding oracle). */
  unwrap(wrapped: Buffer, materialLength: number): SecretBytes;
}

/** The one message for every unwrap failure. */
export const UNWRAP_FAILED_MESSAGE =
  'The EncryptedKeyMaterial could not be unwrapped with the wrapping key of this import token, or it is not key material of the right length for this KMS key.';

/**
 * Wrapping key pairs and import tokens for BYOK (GetParametersForImport / ImportKeyMaterial).
 * Each token is bound to one KMS key, valid 24 hours and single-use; its RSA private key is kept
 * sealed in the barrier (so it survives restarts and every worker of a cluster finds it) and is
 * deleted when the token is consumed, whether or not the unwrap then succeeds: a token can answer
 * one unwrap attempt only, so no adaptive (Bleichenbacher/Manger-style) attack gets a second query.
 */
export class ImportParameterStore {
  constructor(private readonly barrier: Barrier, private readonly storage: Storage) {}

  async issue(keyId: string, algorithm: ImportWrappingAlgorithm, keySpec: ImportWrappingKeySpec, now: number): Promise<IssuedImportParameters> {
    const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: IMPORT_WRAPPING_KEY_BITS[keySpec], publicExponent: 0x10001 });
    const importToken = encodeImportToken(randomBytes(32));
    const hash = sha256Hex(importToken);
    const expiresAt = now + IMPORT_PARAMETERS_VALID_MS;
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    const record: StoredParameters = { v: 1, keyId, algorithm, keySpec, createdAt: now, expiresAt, privateKey: der.toString('base64') };
    const plain = Buffer.from(JSON.stringify(record), 'utf8');
    const secret = SecretBytes.from(plain);
    plain.fill(0);
    der.fill(0);
    try {
      await this.storage.transaction(async (tx) => {
        await this.barrier.put(tx, P.params(hash), secret);
        await tx.put(P.expiry(expiresAt, hash), Buffer.alloc(0));
      });
    } finally {
      secret.zeroize();
    }
    return { importToken, publicKey: publicKey.export({ format: 'der', type: 'spki' }), parametersValidTo: expiresAt };
  }

  /**
   * Takes a token for `keyId`. Unknown, already used, malformed or another key's token:
   * InvalidImportTokenException (another key's token is left usable for its own key); expired:
   * ExpiredImportTokenException (and it is removed). Otherwise the token is used up, in its own
   * committed transaction, before any unwrap is tried.
   */
  async consume(importToken: Buffer, keyId: string, now: number): Promise<ConsumedImportToken> {
    if (!isWellFormedImportToken(importToken)) throw new InvalidImportTokenException('The import token is not valid.');
    const hash = sha256Hex(importToken);
    const outcome = await this.storage.transaction(async (tx) => {
      const sealed = await this.barrier.get(tx, P.params(hash));
      if (!sealed) return { kind: 'unknown' as const };
      let record: StoredParameters;
      try {
        record = JSON.parse(sealed.insecureExpose().toString('utf8')) as StoredParameters;
      } finally {
        sealed.zeroize();
      }
      if (record.keyId !== keyId) return { kind: 'foreign' as const };
      await tx.delete(P.params(hash));
      await tx.delete(P.expiry(record.expiresAt, hash));
      if (record.expiresAt <= now) return { kind: 'expired' as const };
      return { kind: 'ok' as const, record };
    });
    if (outcome.kind === 'unknown') throw new InvalidImportTokenException('The import token is not valid: it was not issued by this server, or it has already been used.');
    if (outcome.kind === 'foreign') throw new InvalidImportTokenException('The import token is not valid for this KMS key; it was issued for another key.');
    if (outcome.kind === 'expired') throw new ExpiredImportTokenException('The import token has expired. Call GetParametersForImport for a new public key and import token.');
    const { record } = outcome;
    const der = Buffer.from(record.privateKey, 'base64');
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } finally {
      der.fill(0);
    }
    return {
      algorithm: record.algorithm,
      keySpec: record.keySpec,
      unwrap(wrapped: Buffer, materialLength: number): SecretBytes {
        try {
          return unwrapImportedKeyMaterial(key, record.algorithm, wrapped, materialLength);
        } catch {
          // AuthenticationFailedError or anything else: the same answer either way.
          throw new InvalidCiphertextException(UNWRAP_FAILED_MESSAGE);
        }
      },
    };
  }

  /** Removes parameters whose 24 hours have passed without use; returns how many. */
  async purgeExpired(now: number, limit = 500): Promise<number> {
    const rows = await this.storage.list(P.expiryPrefix, { limit });
    let purged = 0;
    for (const r of rows) {
      const [at, hash] = r.key.slice(P.expiryPrefix.length).split('/') as [string, string];
      if (Number(at) > now) break;
      await this.storage.transaction(async (tx) => {
        await tx.delete(P.params(hash));
        await tx.delete(r.key);
      });
      purged += 1;
    }
    return purged;
  }
}
