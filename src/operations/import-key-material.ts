import type { SecretBytes } from '../crypto/index.js';
import { IncorrectKeyMaterialException, KMSInvalidStateException, ValidationException } from '../errors/index.js';
import { DAY_MS, type ExpirationModel, type ImportedMaterial, type KeyRecord } from '../keys/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation } from './context.js';
import { assertExternal, currentVersionOf, keyMaterialIdOf, MAX_IMPORT_VALIDITY_DAYS, SYMMETRIC_MATERIAL_BYTES } from './import-common.js';

export interface ImportKeyMaterialInput {
  keyId: string;
  importToken: Buffer;
  encryptedKeyMaterial: Buffer;
  validTo?: Date;
  expirationModel?: string;
  importType?: string;
  keyMaterialDescription?: string;
  keyMaterialId?: string;
}

export interface ImportKeyMaterialOutput {
  keyId: string;
  keyMaterialId: string;
}

type Plan =
  | { kind: 'first' }
  | { kind: 'existing' }
  | { kind: 'new' };

/**
 * Validates everything that does not need the material before the token is spent, so an honest
 * mistake (a bad ValidTo, a wrong ImportType) does not cost the caller their import token.
 */
function expirationOf(input: ImportKeyMaterialInput, now: number): { expirationModel: ExpirationModel; validTo?: number } {
  const expirationModel = (input.expirationModel ?? (input.validTo ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE')) as ExpirationModel;
  if (expirationModel === 'KEY_MATERIAL_EXPIRES') {
    if (!input.validTo) throw new ValidationException('A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES.');
    const validTo = input.validTo.getTime();
    if (!Number.isFinite(validTo) || validTo <= now) throw new ValidationException('ValidTo must be a time in the future.');
    if (validTo > now + MAX_IMPORT_VALIDITY_DAYS * DAY_MS) {
      throw new ValidationException(`ValidTo must be at most ${MAX_IMPORT_VALIDITY_DAYS} days after the import.`);
    }
    return { expirationModel, validTo };
  }
  if (input.validTo) throw new ValidationException('A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.');
  return { expirationModel };
}

function planFor(k: KeyRecord, importType: string): Plan {
  const everImported = k.versions.some((v) => v.imported !== undefined);
  if (!everImported) return { kind: 'first' };
  if (importType === 'NEW_KEY_MATERIAL') {
    const current = currentVersionOf(k)?.imported;
    if (!current?.present) {
      throw new KMSInvalidStateException(`${k.arn} is pending import: re-import its current key material before importing new key material for rotation.`);
    }
    return { kind: 'new' };
  }
  return { kind: 'existing' };
}

/**
 * Unwraps material with a single-use import token and installs it: the first import of a key, a
 * re-import of material the key had (which restores every ciphertext made under it), or, with
 * ImportType NEW_KEY_MATERIAL, material that RotateKeyOnDemand then makes current.
 */
export const importKeyMaterial: Operation<ImportKeyMaterialInput, ImportKeyMaterialOutput> = {
  name: 'ImportKeyMaterial',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'ImportKeyMaterial', audit);
    assertExternal(key, 'ImportKeyMaterial');
    const now = svc.clock.now();
    const expiration = expirationOf(input, now);
    const importType = input.importType ?? 'EXISTING_KEY_MATERIAL';
    planFor(key, importType);

    const token = await svc.importParameters.consume(input.importToken, key.keyId, now);
    let material: SecretBytes | undefined;
    try {
      material = token.unwrap(input.encryptedKeyMaterial, SYMMETRIC_MATERIAL_BYTES);
      const keyMaterialId = keyMaterialIdOf(material, key.keyId);
      if (input.keyMaterialId !== undefined && input.keyMaterialId !== keyMaterialId) {
        throw new IncorrectKeyMaterialException(`The key material does not match key material ${input.keyMaterialId} of ${key.arn}.`);
      }
      const imported: ImportedMaterial = { keyMaterialId, ...expiration, importedAt: now, present: true };
      const secret = material;
      let version = 0;
      let kind = 'first' as Plan['kind'];
      await updateKey(svc, key.keyId, async (k, tx) => {
        assertExternal(k, 'ImportKeyMaterial');
        const plan = planFor(k, importType);
        kind = plan.kind;
        if (plan.kind === 'first') {
          const v = currentVersionOf(k)!;
          v.imported = imported;
          version = v.version;
          k.state = 'Enabled';
        } else if (plan.kind === 'existing') {
          // Only the material the key already had can come back: anything else could not open its ciphertexts.
          const v = k.versions.find((x) => x.imported?.keyMaterialId === keyMaterialId);
          if (!v) {
            throw new IncorrectKeyMaterialException(`The key material does not match the key material previously imported into ${k.arn}.`);
          }
          v.imported = imported;
          version = v.version;
          if (v.version === k.currentVersion && k.state === 'PendingImport') k.state = 'Enabled';
        } else {
          if (k.versions.some((x) => x.imported?.keyMaterialId === keyMaterialId)) {
            throw new IncorrectKeyMaterialException(`This key material was already imported into ${k.arn}; NEW_KEY_MATERIAL must be new.`);
          }
          if (k.pendingRotationVersion !== undefined) {
            // A newer NEW_KEY_MATERIAL import replaces one that was never rotated in.
            const old = k.pendingRotationVersion;
            await svc.keystore.destroy({ keyId: k.keyId, keyVersion: old }, tx);
            k.versions = k.versions.filter((x) => x.version !== old);
          }
          version = Math.max(...k.versions.map((x) => x.version)) + 1;
          k.versions.push({ version, createdAt: now, imported });
          k.pendingRotationVersion = version;
        }
        await svc.keystore.importMaterial!({ keyId: k.keyId, keyVersion: version }, secret, tx);
      });
      audit.key(key.arn, version);
      audit.detail('keyMaterialId', keyMaterialId);
      audit.detail('importType', kind === 'new' ? 'NEW_KEY_MATERIAL' : kind === 'first' ? 'FIRST_IMPORT' : 'EXISTING_KEY_MATERIAL');
      audit.detail('expirationModel', expiration.expirationModel);
      if (expiration.validTo !== undefined) audit.detail('validTo', new Date(expiration.validTo).toISOString());
      return { keyId: key.arn, keyMaterialId };
    } finally {
      material?.zeroize();
    }
  },
};
