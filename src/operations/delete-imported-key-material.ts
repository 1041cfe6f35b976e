import { KMSInvalidStateException, NotFoundException } from '../errors/index.js';
import type { KeyRecord, StorageWriter } from '../keys/index.js';
import { authorizeKey, updateKey } from './common.js';
import type { Operation, Services } from './context.js';
import { assertExternal, backupsDependingOn } from './import-common.js';

export interface DeleteImportedKeyMaterialInput {
  keyId: string;
  keyMaterialId?: string;
}

/**
 * Destroys one version's imported material and marks it absent. The current material gone puts
 * the key in PendingImport (unless it is pending deletion); material imported for a rotation
 * that never happened is dropped with its version. Shared by DeleteImportedKeyMaterial and the
 * expiry job. Returns whether the current material went.
 */
export async function removeImportedMaterial(svc: Services, k: KeyRecord, version: number, tx: StorageWriter): Promise<boolean> {
  const v = k.versions.find((x) => x.version === version);
  if (!v?.imported) return false;
  await svc.keystore.destroy({ keyId: k.keyId, keyVersion: version }, tx);
  if (k.pendingRotationVersion === version) {
    k.versions = k.versions.filter((x) => x.version !== version);
    delete k.pendingRotationVersion;
    return false;
  }
  v.imported = { ...v.imported, present: false };
  if (version !== k.currentVersion) return false;
  if (k.state !== 'PendingDeletion') k.state = 'PendingImport';
  return true;
}

export const deleteImportedKeyMaterial: Operation<DeleteImportedKeyMaterialInput, { keyId: string; keyMaterialId: string }> = {
  name: 'DeleteImportedKeyMaterial',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'DeleteImportedKeyMaterial', audit);
    assertExternal(key, 'DeleteImportedKeyMaterial');
    let keyMaterialId = '';
    let version = 0;
    let wasCurrent = false;
    await updateKey(svc, key.keyId, async (k, tx) => {
      assertExternal(k, 'DeleteImportedKeyMaterial');
      const v = input.keyMaterialId === undefined
        ? k.versions.find((x) => x.version === k.currentVersion)
        : k.versions.find((x) => x.imported?.keyMaterialId === input.keyMaterialId);
      if (input.keyMaterialId !== undefined && !v) {
        throw new NotFoundException(`Key material ${input.keyMaterialId} is not found in ${k.arn}.`);
      }
      if (!v?.imported?.present) throw new KMSInvalidStateException(`${k.arn} is pending import: there is no imported key material to delete.`);
      keyMaterialId = v.imported.keyMaterialId;
      version = v.version;
      wasCurrent = await removeImportedMaterial(svc, k, v.version, tx);
    });
    audit.key(key.arn, version);
    audit.detail('keyMaterialId', keyMaterialId);
    audit.detail('currentMaterial', wasCurrent);
    // Loss protection: flag the deletion when registered backups depend on this material.
    const dependents = await backupsDependingOn(svc, key, version);
    audit.detail('backupsDependOnMaterial', dependents.count > 0);
    if (dependents.count > 0) {
      audit.detail('dependentBackupCount', dependents.count);
      audit.detail('dependentBackups', dependents.named);
      svc.log('warn', 'imported key material deleted while registered backups depend on it', { keyArn: key.arn, keyVersion: version, backups: dependents.count });
    }
    return { keyId: key.arn, keyMaterialId };
  },
};
