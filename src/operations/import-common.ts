import { hmacSha256, type SecretBytes } from '../crypto/index.js';
import { KMSInvalidStateException, UnsupportedOperationException } from '../errors/index.js';
import type { KeyRecord, KeyVersion } from '../keys/index.js';

/** AWS: ValidTo may be at most 365 days after the import. */
export const MAX_IMPORT_VALIDITY_DAYS = 365;
/** SYMMETRIC_DEFAULT material is a 256-bit AES key. */
export const SYMMETRIC_MATERIAL_BYTES = 32;

const KEY_MATERIAL_ID_LABEL = 'keyhold/key-material-id/v1/';

/**
 * Names imported material: HMAC-SHA256 keyed by the material over a label and the key id. The same
 * bytes imported again give the same id (so re-import can be recognized after the material itself
 * is gone); the id reveals nothing about the material, and differs between keys.
 */
export function keyMaterialIdOf(material: SecretBytes, keyId: string): string {
  return hmacSha256(material.insecureExpose(), KEY_MATERIAL_ID_LABEL + keyId).toString('hex');
}

/** BYOK operations work only on keys created with Origin EXTERNAL. */
export function assertExternal(k: KeyRecord, operation: string): void {
  if (k.origin !== 'EXTERNAL') {
    throw new UnsupportedOperationException(`${k.arn} origin is ${k.origin} which is not valid for this operation (${operation}); it needs a KMS key with Origin EXTERNAL.`);
  }
  if (k.state === 'PendingDeletion') throw new KMSInvalidStateException(`${k.arn} is pending deletion.`);
}

export function currentVersionOf(k: KeyRecord): KeyVersion | undefined {
  return k.versions.find((v) => v.version === k.currentVersion);
}

/** The key's current imported material id, when the current material is in place. */
export function currentKeyMaterialId(k: KeyRecord): string | undefined {
  const m = currentVersionOf(k)?.imported;
  return m?.present ? m.keyMaterialId : undefined;
}
