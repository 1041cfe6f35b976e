import { NotFoundException } from '../errors/index.js';
import { authorizeOnRecords, checkMessageId } from './backup-common.js';
import type { Operation } from './context.js';

export interface DeregisterBackupInput {
  /** The registered location (as registered: absolute path or URL). */
  location: string;
  /** That message's record only; without it, every record at the location. */
  messageId?: string;
}

export interface DeregisterBackupOutput {
  /** The records removed. */
  backups: { messageId: string; location: string }[];
}

/**
 * Keyhold's own: removes registered backups from the registry (`keyhold backup forget`), for a
 * backup file deleted for good, so the registry stops listing (and drills stop reading) a file
 * that is gone. The record of (message id, location), or without a message id every record at the
 * location (a location may have held several backups in turn). Authorized like RegisterBackup:
 * kms:DeregisterBackup on every wrapping key of every record removed; all are removed in one
 * transaction, or none.
 */
export const deregisterBackup: Operation<DeregisterBackupInput, DeregisterBackupOutput> = {
  name: 'DeregisterBackup',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    if (input.messageId !== undefined) {
      checkMessageId(input.messageId);
      audit.detail('messageId', input.messageId);
    }
    audit.detail('location', input.location);
    const recs = input.messageId !== undefined
      ? [await svc.backups.get(call.accountId, input.messageId, input.location)].filter((r) => r !== undefined)
      : await svc.backups.atLocation(call.accountId, input.location);
    if (!recs.length) throw new NotFoundException(input.messageId !== undefined ? `Backup ${input.messageId} at ${input.location} is not registered.` : `No backup is registered at ${input.location}.`);
    await authorizeOnRecords(svc, call, recs, 'DeregisterBackup', audit);
    // Only the records authorized above: one registered at the location meanwhile is left alone.
    const removed = await svc.backups.deregister(call.accountId, recs.map((r) => ({ messageId: r.messageId, location: r.location })));
    if (!removed.length) throw new NotFoundException(`No backup is registered at ${input.location}.`);
    audit.detail('removed', removed.map((r) => r.messageId));
    return { backups: removed.map((r) => ({ messageId: r.messageId, location: r.location })) };
  },
};
