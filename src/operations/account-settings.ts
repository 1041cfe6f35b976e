import { validationError } from '../errors/index.js';
import { DEFAULT_ROTATION_PERIOD_DAYS } from '../keys/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { MAX_ROTATION_PERIOD_DAYS, MIN_ROTATION_PERIOD_DAYS } from './rotation-common.js';

export interface AccountSettingsOutput {
  accountId: string;
  defaultRotationPeriodInDays: number;
  /** The separation-of-duties guard (beyond AWS): on unless turned off. */
  separationOfDuties: boolean;
  /** Audit events carry HMAC-SHA256 of encryption-context values (beyond AWS): off unless turned on. */
  auditEncryptionContextHmac: boolean;
}

/** Keyhold's own: the caller's account settings (the rotation period new keys get; the SoD guard). */
export const getAccountSettings: Operation<Record<string, never>, AccountSettingsOutput> = {
  name: 'GetAccountSettings',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, _input, audit) {
    await authorizeAccount(svc, call, 'GetAccountSettings', audit);
    const accountId = call.principal.accountId;
    const s = await svc.keys.getAccountSettings(accountId);
    const id = await svc.identity.accountSettings(accountId);
    return {
      accountId,
      defaultRotationPeriodInDays: s.defaultRotationPeriodDays ?? DEFAULT_ROTATION_PERIOD_DAYS,
      separationOfDuties: id.separationOfDuties !== false,
      auditEncryptionContextHmac: s.auditEncryptionContextHmac === true,
    };
  },
};

/**
 * Keyhold's own: sets the automatic rotation period (90 to 2560 days, AWS's bounds) that keys
 * created from now on get (existing keys keep their schedule; EnableKeyRotation changes one key's),
 * turns the separation-of-duties guard on or off, and whether audit events carry encryption-context
 * values as HMAC-SHA256 (AuditContextKey; takes effect with the next call). Turning the guard off does not change any
 * policy; it lets later policy writes merge duties. The audit event records before and after.
 */
export const updateAccountSettings: Operation<{ defaultRotationPeriodInDays?: number; separationOfDuties?: boolean; auditEncryptionContextHmac?: boolean }, AccountSettingsOutput> = {
  name: 'UpdateAccountSettings',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'UpdateAccountSettings', audit);
    const days = input.defaultRotationPeriodInDays;
    if (days !== undefined && (!Number.isInteger(days) || days < MIN_ROTATION_PERIOD_DAYS || days > MAX_ROTATION_PERIOD_DAYS)) {
      throw validationError([`Value '${days}' at 'defaultRotationPeriodInDays' failed to satisfy constraint: Member must have value between ${MIN_ROTATION_PERIOD_DAYS} and ${MAX_ROTATION_PERIOD_DAYS}`]);
    }
    const sod = input.separationOfDuties;
    if (sod !== undefined && typeof sod !== 'boolean') {
      throw validationError([`Value '${String(sod)}' at 'separationOfDuties' failed to satisfy constraint: Member must be a boolean`]);
    }
    const accountId = call.principal.accountId;
    const updated = await svc.keys.storage.transaction(async (tx) => {
      const s = await svc.keys.getAccountSettings(accountId, tx);
      audit.detail('previousDefaultRotationPeriodInDays', s.defaultRotationPeriodDays ?? DEFAULT_ROTATION_PERIOD_DAYS);
      if (input.auditEncryptionContextHmac !== undefined) audit.detail('previousAuditEncryptionContextHmac', s.auditEncryptionContextHmac === true);
      if (days !== undefined) s.defaultRotationPeriodDays = days;
      if (input.auditEncryptionContextHmac !== undefined) s.auditEncryptionContextHmac = input.auditEncryptionContextHmac;
      await svc.keys.putAccountSettings(tx, accountId, s);
      return s;
    });
    const before = (await svc.identity.accountSettings(accountId)).separationOfDuties !== false;
    const after = sod === undefined ? before : (await svc.identity.updateAccountSettings(accountId, { separationOfDuties: sod })).separationOfDuties !== false;
    const period = updated.defaultRotationPeriodDays ?? DEFAULT_ROTATION_PERIOD_DAYS;
    audit.detail('defaultRotationPeriodInDays', period);
    if (input.auditEncryptionContextHmac !== undefined) audit.detail('auditEncryptionContextHmac', updated.auditEncryptionContextHmac === true);
    if (sod !== undefined) {
      audit.detail('previousSeparationOfDuties', before);
      audit.detail('separationOfDuties', after);
    }
    return { accountId, defaultRotationPeriodInDays: period, separationOfDuties: after, auditEncryptionContextHmac: updated.auditEncryptionContextHmac === true };
  },
};
