import type { Services } from './context.js';
import { removeImportedMaterial } from './delete-imported-key-material.js';
import { backupsDependingOn } from './import-common.js';

/**
 * Carries out imported material's ValidTo: deletes every material whose ValidTo has passed (the key
 * returns to PendingImport when its current material goes), one transaction per key, driven by the
 * persisted index so expiry that came due while the server was down happens at the next tick. Also
 * purges import parameters whose 24 hours ran out unused.
 */
export async function expireImportedMaterial(svc: Services, batch = 100): Promise<string[]> {
  const now = svc.clock.now();
  const expired: string[] = [];
  for (const keyId of await svc.keys.dueForImportExpiry(now, batch)) {
    const done = await svc.keys.storage.transaction(async (tx) => {
      const current = await svc.keys.getKey(keyId, tx);
      if (!current) return undefined;
      const k = structuredClone(current);
      const versions: { version: number; keyMaterialId: string }[] = [];
      for (const v of [...k.versions]) {
        const m = v.imported;
        if (!m?.present || m.expirationModel !== 'KEY_MATERIAL_EXPIRES' || m.validTo === undefined || m.validTo > now) continue;
        versions.push({ version: v.version, keyMaterialId: m.keyMaterialId });
        await removeImportedMaterial(svc, k, v.version, tx);
      }
      if (versions.length === 0) return undefined;
      await svc.keys.putKey(tx, k, current);
      return { arn: k.arn, versions, state: k.state, record: k };
    });
    if (!done) continue;
    expired.push(done.arn);
    for (const v of done.versions) {
      const dependents = await backupsDependingOn(svc, done.record, v.version);
      await svc.audit.record({
        eventTime: new Date(now).toISOString(),
        eventName: 'DeleteExpiredKeyMaterial',
        eventSource: 'kms.amazonaws.com',
        awsRegion: done.arn.split(':')[3] ?? '',
        requestId: `job-import-expiry-${keyId}-${v.version}-${now}`,
        sourceIPAddress: 'kms.amazonaws.com',
        userAgent: 'keyhold-jobs',
        readOnly: false,
        resources: [{ arn: done.arn, keyVersion: v.version }],
        details: {
          reason: 'imported key material reached its ValidTo', keyMaterialId: v.keyMaterialId, keyState: done.state,
          backupsDependOnMaterial: dependents.count > 0,
          ...(dependents.count > 0 ? { dependentBackupCount: dependents.count, dependentBackups: dependents.named } : {}),
        },
      });
    }
  }
  await svc.importParameters.purgeExpired(now);
  return expired;
}
