import { NotFoundException } from '../errors/index.js';
import { authorizeOnBackupKeys, checkMessageId } from './backup-common.js';
import type { Operation } from './context.js';

export interface RecordBackupVerificationInput {
  messageId: string;
  /** The backup was fully authenticated (every frame, and the message id matched). */
  ok: boolean;
  message?: string;
}

export interface RecordBackupVerificationOutput {
  messageId: string;
  lastVerifiedDate: Date;
}

/**
 * Keyhold's own: records that a registered backup was (or failed to be) proven decryptable
 * (`keyhold backup drill`). It changes nothing else of the record, so a restore-only identity can
 * record drills without being able to register or move backups: it needs
 * kms:RecordBackupVerification on every wrapping key of the registered backup.
 */
export const recordBackupVerification: Operation<RecordBackupVerificationInput, RecordBackupVerificationOutput> = {
  name: 'RecordBackupVerification',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    checkMessageId(input.messageId);
    audit.detail('messageId', input.messageId);
    const rec = await svc.backups.get(call.accountId, input.messageId);
    if (!rec) throw new NotFoundException(`Backup ${input.messageId} is not registered.`);
    for (const k of rec.wrappingKeys) audit.key(k.keyArn, k.keyVersion);
    await authorizeOnBackupKeys(svc, call, rec.wrappingKeys.map((k) => k.keyArn), 'RecordBackupVerification', audit);
    const at = svc.clock.now();
    const saved = await svc.backups.recordVerification(call.accountId, input.messageId, { at, by: call.principal.arn, ok: input.ok, ...(input.message !== undefined ? { message: input.message } : {}) });
    if (!saved) throw new NotFoundException(`Backup ${input.messageId} is not registered.`);
    audit.detail('ok', input.ok);
    return { messageId: input.messageId, lastVerifiedDate: new Date(at) };
  },
};
