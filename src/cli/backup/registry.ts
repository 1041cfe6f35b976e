/** The server's backup registry from the CLI (KeyholdService.RegisterBackup, ListBackups, DeregisterBackup, RelocateBackup, ...). */
import { resolve } from 'node:path';
import { SUITES, type ParsedHeader } from '../../format/backup-message/index.js';
import type { ClientSettings } from '../client.js';
import { callKeyhold } from '../keyhold-client.js';
import { describeEdks } from './edks.js';

export interface RegisteredBackup {
  MessageId: string;
  Location: string;
  SizeBytes: number;
  Suite: string;
  WrappingKeys: { KeyArn: string; KeyVersion?: number; KeyState: string; Usable: boolean }[];
  EncryptionContext: Record<string, string>;
  RegisteredDate: number;
  RegisteredBy: string;
  Decryptable: boolean;
  LastVerifiedDate?: number;
  LastVerifiedBy?: string;
  LastVerifyOk?: boolean;
  LastVerifyMessage?: string;
}

/** A location as the registry keys it: a URL as given, a path made absolute. */
export const registryLocation = (location: string) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) ? location : resolve(location));

export async function registerBackup(settings: ClientSettings, h: ParsedHeader, location: string, sizeBytes: number, verified?: { ok: boolean; message?: string }): Promise<void> {
  await callKeyhold(settings, 'RegisterBackup', {
    MessageId: h.messageId.toString('hex'),
    Location: registryLocation(location),
    SizeBytes: sizeBytes,
    Suite: `0x${h.suiteId.toString(16).padStart(4, '0')} ${SUITES[h.suiteId]!.name}`,
    WrappingKeys: describeEdks(h.encryptedDataKeys).filter((k) => k.provider === 'aws-kms').map((k) => ({ KeyArn: k.keyArn, ...(k.keyVersion !== undefined ? { KeyVersion: k.keyVersion } : {}) })),
    EncryptionContext: h.encryptionContext,
    ...(verified ? { Verified: verified.ok, ...(verified.message ? { VerifyMessage: verified.message } : {}) } : {}),
  });
}

/**
 * Records a drill's result on a registered backup (KeyholdService.RecordBackupVerification): the
 * record of that message id at that registered location (a copy with the same message id is
 * another record); nothing else of the record changes.
 */
export async function recordVerification(settings: ClientSettings, messageId: string, location: string, ok: boolean, message?: string): Promise<void> {
  await callKeyhold(settings, 'RecordBackupVerification', { MessageId: messageId, Location: location, Ok: ok, ...(message !== undefined ? { Message: message.slice(0, 4000) } : {}) });
}

/**
 * Removes registered backups from the registry (KeyholdService.DeregisterBackup): the record of
 * that message id at the location, or without one every record at the location. Returns what was removed.
 */
export async function deregisterBackup(settings: ClientSettings, location: string, messageId?: string): Promise<{ MessageId: string; Location: string }[]> {
  const r = await callKeyhold<{ Backups: { MessageId: string; Location: string }[] }>(settings, 'DeregisterBackup', { Location: location, ...(messageId !== undefined ? { MessageId: messageId } : {}) });
  return r.Backups;
}

/** Moves a registered backup's record, with its history, to a new location (KeyholdService.RelocateBackup). */
export async function relocateBackup(settings: ClientSettings, messageId: string, location: string, newLocation: string): Promise<void> {
  await callKeyhold(settings, 'RelocateBackup', { MessageId: messageId, Location: location, NewLocation: newLocation });
}

export async function listBackups(settings: ClientSettings, filter: { KeyId?: string; KeyVersion?: number; AtRiskWithoutKeyId?: string } = {}): Promise<RegisteredBackup[]> {
  const r = await callKeyhold<{ Backups: RegisteredBackup[] }>(settings, 'ListBackups', filter);
  return r.Backups;
}

/** A backup is at risk without key K when no other wrapping key of it is usable now. */
export function atRiskWithout(b: RegisteredBackup, keyArn: string): boolean {
  return b.WrappingKeys.some((k) => k.KeyArn === keyArn) && !b.WrappingKeys.some((k) => k.KeyArn !== keyArn && k.Usable);
}
