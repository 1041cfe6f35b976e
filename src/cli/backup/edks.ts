import { decodeBlob } from '../../format/index.js';
import type { EncryptedDataKey } from '../../format/backup-message/index.js';

export interface EdkDescription {
  provider: string;
  keyArn: string;
  keyVersion?: number;
}

export function describeEdks(edks: EncryptedDataKey[]): EdkDescription[] {
  return edks.map((e) => {
    let keyVersion: number | undefined;
    try {
      keyVersion = decodeBlob(e.ciphertext).keyVersion;
    } catch {
      /* not a Keyhold blob (e.g. real AWS KMS): version unknown */
    }
    return { provider: e.providerId, keyArn: e.providerInfo, ...(keyVersion !== undefined ? { keyVersion } : {}) };
  });
}

