import { KMSInvalidStateException, UnsupportedOperationException } from '../errors/index.js';
import { assertNotPendingDeletion, rotationOf, type KeyRecord, type RotationState, type StorageWriter } from '../keys/index.js';
import type { Services } from './context.js';

/** AWS's bounds for RotationPeriodInDays. */
export const MIN_ROTATION_PERIOD_DAYS = 90;
export const MAX_ROTATION_PERIOD_DAYS = 2560;
/** AWS allows at most this many on-demand rotations over a key's life. */
export const MAX_ON_DEMAND_ROTATIONS = 25;

/** Writes the rotation state onto the record (materializing it for records that predate rotation). */
export function setRotation(k: KeyRecord, mutate: (r: RotationState) => void): void {
  const r = structuredClone(rotationOf(k));
  mutate(r);
  k.rotation = r;
}

/** AWS does not rotate keys in custom key stores, automatically or on demand. */
export function assertRotatable(k: KeyRecord): void {
  if (k.origin === 'EXTERNAL') {
    throw new UnsupportedOperationException(`${k.arn} has imported key material: it rotates only on demand, after new key material is imported with ImportType NEW_KEY_MATERIAL.`);
  }
  if (k.customKeyStoreId !== undefined) {
    throw new UnsupportedOperationException(`${k.arn} is in a custom key store; key rotation is not supported for keys in custom key stores.`);
  }
}

/** Enable/DisableKeyRotation: only an Enabled key's schedule may change (AWS answers the rest with KMSInvalidStateException). */
export function assertRotationConfigurable(k: KeyRecord): void {
  assertRotatable(k);
  assertNotPendingDeletion(k);
  if (k.state === 'Disabled') throw new KMSInvalidStateException(`${k.arn} is disabled.`);
  if (k.state !== 'Enabled') throw new KMSInvalidStateException(`${k.arn} is ${k.state.toLowerCase()}.`);
}

/**
 * Adds a backing version and makes it current, inside the caller's transaction, so the record never
 * names a version whose material does not exist (nor material exist that no record names).
 * Ciphertexts keep naming their own version, so everything encrypted before still decrypts.
 */
export async function addVersion(
  svc: Services, k: KeyRecord, tx: StorageWriter, rotationType: 'AUTOMATIC' | 'ON_DEMAND', now: number,
): Promise<number> {
  assertRotatable(k);
  const version = Math.max(...k.versions.map((v) => v.version)) + 1;
  await svc.keystore.generate({ keyId: k.keyId, keyVersion: version }, tx);
  k.versions.push({ version, createdAt: now, rotationType });
  k.currentVersion = version;
  return version;
}
