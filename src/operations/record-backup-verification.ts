import { NotFoundException } from '../errors/index.js';
import { authorizeOnRecords, checkMessageId } from './backup-common.js';
import type { Operation } from './context.js';
import type { BackupRecord } from '../keys/index.js';

export interface RecordBackupVerificationInput {
  messageId: string;
  /**
   * The registered location that was verified: that record only. Without it (older clients), every
   * record of the message id (the backup and its registered copies).
   */
  location?: string;
  /** The backup was fully authenticated (every frame, and the message id matched). */
  ok: boolean;
  message?: string;
}

export interface RecordBackupVerificationOutput {
  messageId: string;
  lastVerifiedDate: Date;
  /** The locations of the records the result was recorded on. */
  locations: string[];
}

/**
 * Keyhold's own: records that a registered backup was (or failed to be) proven decryptable
 * (`keyhold backup drill`). It changes nothing else of the record, so a restore-only identity can
 * record drills without being able to register or move backups: it needs
 * kms:RecordBackupVerification on every wrapping key of the registered backup. With a location,
 * the record of that (message id, location); without (older clients), every record of the message
 * id, and then every wrapping key of each must allow it.
 */
export const recordBackupVerification: Operation<RecordBackupVerificationInput, RecordBackupVerificationOutput> = {
  name: 'RecordBackupVerification',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    checkMessageId(input.messageId);
    audit.detail('messageId', input.messageId);
    if (input.location !== undefined) audit.detail('location', input.location);
    const what = input.location !== undefined ? `Backup ${input.messageId} at ${input.location}` : `Backup ${input.messageId}`;
    const recs = input.location !== undefined
      ? [await svc.backups.get(call.accountId, input.messageId, input.location)].filter((r) => r !== undefined)
      : await svc.backups.getAll(call.accountId, input.messageId);
    if (!recs.length) throw new NotFoundException(`${what} is not registered.`);
    // Every wrapping key of every record the result goes on must allow it.
    await authorizeOnRecords(svc, call, recs, 'RecordBackupVerification', audit);
    const at = svc.clock.now();
    const locations = recs.map((r) => r.location);
    // Only the records authorized above: one registered meanwhile (another location) is left alone.
    const saved: BackupRecord[] = [];
    for (const location of locations) saved.push(...await svc.backups.recordVerification(call.accountId, input.messageId, location, { at, by: call.principal.arn, ok: input.ok, ...(input.message !== undefined ? { message: input.message } : {}) }));
    if (!saved.length) throw new NotFoundException(`${what} is not registered.`);
    audit.detail('ok', input.ok);
    audit.detail('records', saved.length);
    return { messageId: input.messageId, lastVerifiedDate: new Date(at), locations: saved.map((r) => r.location) };
  },
};
