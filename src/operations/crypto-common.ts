import {
  IncorrectKeyException, InvalidCiphertextException, InvalidKeyUsageException, KeyVersionRetiredException, KMSInvalidStateException,
  UnsupportedOperationException,
} from '../errors/index.js';
import { decodeBlobView, type CiphertextBlob } from '../format/index.js';
import { assertUsable, minDecryptionVersionOf, type KeyRecord } from '../keys/index.js';
import type { EncryptionContext } from '../types/index.js';
import { authorizeKey } from './common.js';
import type { AuditDraft, CallContext, Services } from './context.js';
import { materialRef } from './custom-key-store-common.js';

export function assertSymmetricAlgorithm(key: KeyRecord, algorithm: string | undefined, operation: string): void {
  if (key.keyUsage !== 'ENCRYPT_DECRYPT') {
    throw new InvalidKeyUsageException(`${key.arn} key usage is ${key.keyUsage} which is not valid for ${operation}.`);
  }
  if (algorithm !== undefined && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw new InvalidKeyUsageException(`Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`);
  }
}

export function assertNoRecipient(recipient: unknown): void {
  if (recipient !== undefined) throw new UnsupportedOperationException('Recipient (Nitro Enclaves attestation) is not supported by this server.');
}

/** Encrypts under the key's newest backing version; records the version in the audit draft. */
export async function encryptUnder(svc: Services, key: KeyRecord, plaintext: Buffer, context: EncryptionContext | undefined, audit: AuditDraft): Promise<Buffer> {
  const ref = await materialRef(svc, key, key.currentVersion);
  const blob = await svc.keystore.encrypt(ref, plaintext, context);
  audit.key(key.arn, key.currentVersion);
  svc.usage.record(key.keyId, key.currentVersion, 'encrypt', svc.clock.now());
  return blob;
}

/** A data key from the key's store (an HSM draws it from its own RNG) and its blob under the newest version. */
export async function generateDataKeyIn(
  svc: Services, key: KeyRecord, length: number, context: EncryptionContext | undefined, audit: AuditDraft,
): Promise<{ plaintext: Buffer; ciphertextBlob: Buffer }> {
  const ref = await materialRef(svc, key, key.currentVersion);
  const { plaintext, blob } = await svc.keystore.generateDataKey(ref, length, context);
  audit.key(key.arn, key.currentVersion);
  svc.usage.record(key.keyId, key.currentVersion, 'encrypt', svc.clock.now());
  return { plaintext, ciphertextBlob: blob };
}

export interface OpenedBlob {
  readonly key: KeyRecord;
  readonly blob: CiphertextBlob;
}

/**
 * Parses a blob and finds its key: the KeyId the caller named must be the blob's key
 * (IncorrectKeyException, checked before any crypto), then policy, then key state. Every
 * unreadable blob, including one naming a key that does not exist here, is InvalidCiphertextException.
 */
export async function keyForBlob(
  svc: Services, call: CallContext, ciphertext: Buffer, keyIdInput: string | undefined, action: string, audit: AuditDraft,
): Promise<OpenedBlob> {
  // A view, not a copy: the bytes were decoded from this request's body and nothing else holds them.
  const blob = decodeBlobView(ciphertext);
  let named: KeyRecord | undefined;
  if (keyIdInput !== undefined) {
    named = await svc.keys.resolve(keyIdInput, call, { allowAlias: true });
    audit.key(named.arn);
    if (named.keyId !== blob.keyId) {
      throw new IncorrectKeyException('The key ID in the request does not identify a CMK that can perform this operation.');
    }
  }
  const key = named ?? (await svc.keys.getKey(blob.keyId));
  if (!key || key.region !== call.region) throw new InvalidCiphertextException();
  audit.key(key.arn, blob.keyVersion);
  await authorizeKey(svc, call, key, action, audit);
  assertUsable(key);
  assertSymmetricAlgorithm(key, undefined, action);
  const version = key.versions.find((v) => v.version === blob.keyVersion);
  if (!version) throw new InvalidCiphertextException();
  // Imported material of an older version that expired or was deleted: the same state answer as the current one.
  if (version.imported && !version.imported.present) throw new KMSInvalidStateException(`${key.arn} is pending import.`);
  assertNotRetired(key, blob.keyVersion);
  return { key, blob };
}

export async function decryptOpened(svc: Services, opened: OpenedBlob, context: EncryptionContext | undefined): Promise<Buffer> {
  const plaintext = await svc.keystore.decrypt(await materialRef(svc, opened.key, opened.blob.keyVersion), opened.blob, context);
  svc.usage.record(opened.key.keyId, opened.blob.keyVersion, 'decrypt', svc.clock.now());
  return plaintext;
}

/**
 * A version below the key's minimum decryption version is retired: it decrypts nothing (Decrypt,
 * ReEncrypt) until an operator lowers the minimum again. Checked after policy and key state, so the
 * answer tells an authorized caller which version of which key, and nobody else anything.
 */
export function assertNotRetired(key: KeyRecord, version: number): void {
  const min = minDecryptionVersionOf(key);
  if (version < min) {
    throw new KeyVersionRetiredException(
      `Version ${version} of key ${key.arn} is retired: its minimum decryption version is ${min}. ` +
        'Ciphertexts under a retired version no longer decrypt; re-encrypt data under a newer version before retiring, or lower the minimum with SetMinimumDecryptionVersion.',
    );
  }
}
