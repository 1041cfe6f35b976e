import { validationError } from '../errors/index.js';
import type { BackupKeyRef, BackupRecord } from '../keys/index.js';
import { authorizeOnBackupKeys, checkMessageId } from './backup-common.js';
import type { Operation } from './context.js';

export interface RegisterBackupInput {
  messageId: string;
  location: string;
  sizeBytes: number;
  suite: string;
  wrappingKeys: { keyArn: string; keyVersion?: number }[];
  encryptionContext?: Record<string, string>;
  /** A verification result to record with it (`keyhold backup verify`, drills). */
  verified?: boolean;
  verifyMessage?: string;
}

export interface RegisterBackupOutput {
  messageId: string;
  registeredDate: Date;
}

const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

/**
 * Keyhold's own: records a backup the CLI wrote (or verified) in the registry, so the server can
 * answer which backups depend on a key or version. The caller needs kms:RegisterBackup on every
 * wrapping key (and kms:RecordBackupVerification on each too when it records a verification); the
 * registry is per account. A backup is identified by its message id and its location:
 * re-registering the same pair updates that record (a rewrap in place); the same message id at
 * another location (a copy) is another record.
 */
export const registerBackup: Operation<RegisterBackupInput, RegisterBackupOutput> = {
  name: 'RegisterBackup',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    checkMessageId(input.messageId);
    if (!input.wrappingKeys.length) throw validationError([`Value at 'wrappingKeys' failed to satisfy constraint: Member must have length greater than or equal to 1`]);
    const keys: BackupKeyRef[] = [];
    for (const k of input.wrappingKeys) {
      if (!KEY_ARN.test(k.keyArn)) throw validationError([`Value '${k.keyArn}' at 'wrappingKeys.member.keyArn' failed to satisfy constraint: Member must be a KMS key ARN`]);
      keys.push(k.keyVersion !== undefined ? { keyArn: k.keyArn, keyVersion: k.keyVersion } : { keyArn: k.keyArn });
      audit.key(k.keyArn, k.keyVersion);
    }
    await authorizeOnBackupKeys(svc, call, keys.map((k) => k.keyArn), 'RegisterBackup', audit);
    if (input.verified !== undefined) await authorizeOnBackupKeys(svc, call, keys.map((k) => k.keyArn), 'RecordBackupVerification', audit);
    const now = svc.clock.now();
    const rec: BackupRecord = {
      messageId: input.messageId, location: input.location, sizeBytes: input.sizeBytes, suite: input.suite, wrappingKeys: keys,
      encryptionContext: input.encryptionContext ?? {}, registeredAt: now, registeredBy: call.principal.arn,
    };
    // The verification, when given, is recorded on this record (this location) in the same transaction.
    const saved = await svc.backups.register(call.accountId, rec, input.verified !== undefined ? { at: now, by: call.principal.arn, ok: input.verified, ...(input.verifyMessage !== undefined ? { message: input.verifyMessage } : {}) } : undefined);
    audit.detail('messageId', input.messageId);
    audit.detail('location', input.location);
    return { messageId: saved.messageId, registeredDate: new Date(saved.registeredAt) };
  },
};
