import { hmacSha256, type SecretBytes } from '../crypto/index.js';
import { KMSInvalidStateException, UnsupportedOperationException } from '../errors/index.js';
import type { KeyRecord, KeyVersion } from '../keys/index.js';
import type { Services } from './context.js';

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

/** At most this many dependent backups are named in one audit event (the count is always complete). */
const MAX_NAMED_BACKUPS = 20;

/**
 * Registered backups (KeyholdService.RegisterBackup) that need this key's material of `version`:
 * those wrapped under the key at that version, or at an unrecorded version. Imported material that
 * is deleted cannot be regenerated, so an event that removes it names what it strands.
 */
export async function backupsDependingOn(svc: Services, k: KeyRecord, version: number): Promise<{ count: number; named: { messageId: string; location: string }[] }> {
  const all = await svc.backups.list(k.accountId);
  const hit = all.filter((b) => b.wrappingKeys.some((w) => w.keyArn === k.arn && (w.keyVersion === undefined || w.keyVersion === version)));
  return { count: hit.length, named: hit.slice(0, MAX_NAMED_BACKUPS).map((b) => ({ messageId: b.messageId, location: b.location })) };
}
