import { AlreadyExistsException, NotFoundException, validationError } from '../errors/index.js';
import { RecordExists } from '../keys/index.js';
import { authorizeOnRecords, checkMessageId } from './backup-common.js';
import type { Operation } from './context.js';

export interface RelocateBackupInput {
  messageId: string;
  /** The registered location the file was moved from. */
  location: string;
  /** Where the file (the same message) is now. */
  newLocation: string;
}

export interface RelocateBackupOutput {
  messageId: string;
  location: string;
  previousLocation: string;
}

/**
 * Keyhold's own: moves a registered backup's record to the file's new location (`keyhold backup
 * relocate`, after an mv), keeping everything else of it: wrapping keys, first registration,
 * verification history. One transaction: the record is never lost nor listed twice. The client
 * checks that the file at the new location holds the message; the server refuses a record that is
 * not registered at the old location (NotFoundException) or one already registered at the new
 * (AlreadyExistsException). Authorized like RegisterBackup: kms:RelocateBackup on every wrapping
 * key of the record.
 */
export const relocateBackup: Operation<RelocateBackupInput, RelocateBackupOutput> = {
  name: 'RelocateBackup',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    checkMessageId(input.messageId);
    audit.detail('messageId', input.messageId);
    audit.detail('location', input.location);
    audit.detail('newLocation', input.newLocation);
    if (input.newLocation === input.location) throw validationError([`Value at 'newLocation' failed to satisfy constraint: Member must differ from location`]);
    const rec = await svc.backups.get(call.accountId, input.messageId, input.location);
    if (!rec) throw new NotFoundException(`Backup ${input.messageId} at ${input.location} is not registered.`);
    await authorizeOnRecords(svc, call, [rec], 'RelocateBackup', audit);
    let moved;
    try {
      moved = await svc.backups.relocate(call.accountId, input.messageId, input.location, input.newLocation);
    } catch (e) {
      if (e instanceof RecordExists) throw new AlreadyExistsException(e.message);
      throw e;
    }
    if (!moved) throw new NotFoundException(`Backup ${input.messageId} at ${input.location} is not registered.`);
    return { messageId: moved.messageId, location: moved.location, previousLocation: input.location };
  },
};
