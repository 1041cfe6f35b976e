import type { Services } from './context.js';

/**
 * Carries out scheduled deletions whose date has passed: destroys every backing version in the key
 * store and removes the key, its aliases and indexes, in one transaction per key. Driven by the
 * persisted deletion date, so it survives restarts; a key whose deletion was cancelled is skipped.
 */
export async function deleteDueKeys(svc: Services, batch = 100): Promise<string[]> {
  const now = svc.clock.now();
  const deleted: string[] = [];
  for (const keyId of await svc.keys.dueForDeletion(now, batch)) {
    const arn = await svc.keys.storage.transaction(async (tx) => {
      const k = await svc.keys.getKey(keyId, tx);
      if (!k || k.state !== 'PendingDeletion' || k.deletionDate === undefined || k.deletionDate > now) return undefined;
      if (k.customKeyStoreId !== undefined) {
        // As in AWS: the key is deleted; its material is removed from the HSM when the HSM answers,
        // and otherwise stays there (orphaned, unusable through Keyhold) for the operator to remove.
        const store = await svc.customKeyStores.get(k.customKeyStoreId, tx);
        for (const v of k.versions) {
          try {
            if (!store) throw new Error(`custom key store ${k.customKeyStoreId} is gone`);
            await svc.keystore.destroy({ keyId: k.keyId, keyVersion: v.version, hsm: store.cloudHsmClusterId }, tx);
          } catch (e) {
            svc.log('warn', 'key material left in the HSM after deletion', { keyId: k.keyId, keyVersion: v.version, error: String((e as Error)?.message ?? e) });
          }
        }
        await svc.customKeyStores.removeKey(tx, k.customKeyStoreId, k.keyId);
      } else {
        for (const v of k.versions) await svc.keystore.destroy({ keyId: k.keyId, keyVersion: v.version }, tx);
      }
      await svc.keys.deleteKey(tx, k);
      return k.arn;
    });
    if (arn) {
      deleted.push(arn);
      await svc.audit.record({
        eventTime: new Date(now).toISOString(),
        eventName: 'DeleteKey',
        eventSource: 'kms.amazonaws.com',
        awsRegion: arn.split(':')[3] ?? '',
        requestId: `job-deletion-${keyId}`,
        sourceIPAddress: 'kms.amazonaws.com',
        userAgent: 'keyhold-jobs',
        readOnly: false,
        resources: [{ arn }],
        details: { reason: 'scheduled deletion date passed' },
      });
    }
  }
  return deleted;
}
