import { validationError } from '../errors/index.js';
import { minDecryptionVersionOf, type BackupKeyRef, type BackupRecord } from '../keys/index.js';
import { authorizeAccount, authorizeKey } from './common.js';
import type { AuditDraft, CallContext, Services } from './context.js';

/** A backup message id as the registry keys it: 64 lowercase hex digits. Throws ValidationException. */
export function checkMessageId(messageId: string): void {
  if (!/^[0-9a-f]{64}$/.test(messageId)) throw validationError([`Value at 'messageId' failed to satisfy constraint: Member must be 64 lowercase hex digits`]);
}

/**
 * The registry's actions (kms:RegisterBackup, kms:RecordBackupVerification, kms:ListBackups) are
 * authorized on each wrapping key named, like a cryptographic call on that key: its key policy,
 * the caller's identity policies and its grants decide. A key this server does not hold (a backup
 * may carry a key of another Keyhold or of AWS) has no key policy here: the caller's identity
 * policies decide, with the key's ARN as the resource. Every key must allow; the first that does
 * not ends the request with AccessDeniedException naming it.
 */
export async function authorizeOnBackupKeys(svc: Services, call: CallContext, keyArns: readonly string[], action: string, audit: AuditDraft): Promise<void> {
  for (const arn of new Set(keyArns)) {
    const keyId = /key\/([^/]+)$/.exec(arn)?.[1];
    const key = keyId ? await svc.keys.getKey(keyId) : undefined;
    if (key && key.arn === arn) await authorizeKey(svc, call, key, action, audit);
    else await authorizeAccount(svc, call, action, audit, arn);
  }
}

/**
 * Authorizes an action on registered records (verify, relocate, deregister): every wrapping key of
 * every record must allow it (authorizeOnBackupKeys); each key goes into the audit event.
 */
export async function authorizeOnRecords(svc: Services, call: CallContext, records: readonly BackupRecord[], action: string, audit: AuditDraft): Promise<void> {
  for (const r of records) for (const k of r.wrappingKeys) audit.key(k.keyArn, k.keyVersion);
  await authorizeOnBackupKeys(svc, call, records.flatMap((r) => r.wrappingKeys.map((k) => k.keyArn)), action, audit);
}

/** A wrapping key of a backup as it stands now: unknown, its state, and whether its version is retired. */
export interface WrappingKeyStatus extends BackupKeyRef {
  keyState: string;
  /** The key is Enabled and the version (if known) is not below its minimum decryption version. */
  usable: boolean;
}

export async function wrappingKeyStatus(svc: Services, ref: BackupKeyRef): Promise<WrappingKeyStatus> {
  const keyId = /key\/([^/]+)$/.exec(ref.keyArn)?.[1];
  const key = keyId ? await svc.keys.getKey(keyId) : undefined;
  if (!key || key.arn !== ref.keyArn) return { ...ref, keyState: 'Unknown', usable: false };
  const retired = ref.keyVersion !== undefined && ref.keyVersion < minDecryptionVersionOf(key);
  return { ...ref, keyState: retired ? `${key.state} (version retired)` : key.state, usable: key.state === 'Enabled' && !retired };
}

/**
 * The registered backups that depend on keyArn and that nothing else could open if it became
 * unusable (disabled, deleted): every other wrapping key is unknown, not Enabled or retired.
 */
export async function backupsAtRiskWithout(svc: Services, accountId: string, keyArn: string): Promise<{ dependent: BackupRecord[]; atRisk: BackupRecord[] }> {
  const dependent = (await svc.backups.list(accountId)).filter((b) => b.wrappingKeys.some((k) => k.keyArn === keyArn));
  const atRisk: BackupRecord[] = [];
  for (const b of dependent) {
    let other = false;
    for (const k of b.wrappingKeys) {
      if (k.keyArn === keyArn) continue;
      if ((await wrappingKeyStatus(svc, k)).usable) {
        other = true;
        break;
      }
    }
    if (!other) atRisk.push(b);
  }
  return { dependent, atRisk };
}

/**
 * For DisableKey and ScheduleKeyDeletion: puts into the audit event how many registered backups
 * depend on the key and which would become undecryptable (their message ids and locations, first 20).
 */
export async function flagDependentBackups(svc: Services, accountId: string, keyArn: string, detail: (name: string, value: unknown) => void): Promise<void> {
  const { dependent, atRisk } = await backupsAtRiskWithout(svc, accountId, keyArn);
  if (!dependent.length) return;
  detail('dependentBackups', dependent.length);
  detail('backupsMadeUndecryptable', atRisk.length);
  if (atRisk.length) detail('undecryptableBackups', atRisk.slice(0, 20).map((b) => ({ messageId: b.messageId, location: b.location })));
}
