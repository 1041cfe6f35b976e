import { validationError } from '../errors/index.js';
import { DEFAULT_ROTATION_PERIOD_DAYS } from '../keys/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { MAX_ROTATION_PERIOD_DAYS, MIN_ROTATION_PERIOD_DAYS } from './rotation-common.js';

export interface AccountSettingsOutput {
  accountId: string;
  defaultRotationPeriodInDays: number;
}

/** Keyhold's own: the caller's account settings (today: the rotation period new keys get). */
export const getAccountSettings: Operation<Record<string, never>, AccountSettingsOutput> = {
  name: 'GetAccountSettings',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, _input, audit) {
    await authorizeAccount(svc, call, 'GetAccountSettings', audit);
    const s = await svc.keys.getAccountSettings(call.principal.accountId);
    return { accountId: call.principal.accountId, defaultRotationPeriodInDays: s.defaultRotationPeriodDays ?? DEFAULT_ROTATION_PERIOD_DAYS };
  },
};

/**
 * Keyhold's own: sets the automatic rotation period (90 to 2560 days, AWS's bounds) that keys
 * created from now on get. Existing keys keep their schedule (EnableKeyRotation changes one key's).
 */
export const updateAccountSettings: Operation<{ defaultRotationPeriodInDays?: number }, AccountSettingsOutput> = {
  name: 'UpdateAccountSettings',
  eventSource: 'kms.amazonaws.com',
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'UpdateAccountSettings', audit);
    const days = input.defaultRotationPeriodInDays;
    if (days !== undefined && (!Number.isInteger(days) || days < MIN_ROTATION_PERIOD_DAYS || days > MAX_ROTATION_PERIOD_DAYS)) {
      throw validationError([`Value '${days}' at 'defaultRotationPeriodInDays' failed to satisfy constraint: Member must have value between ${MIN_ROTATION_PERIOD_DAYS} and ${MAX_ROTATION_PERIOD_DAYS}`]);
    }
    const accountId = call.principal.accountId;
    const updated = await svc.keys.storage.transaction(async (tx) => {
      const s = await svc.keys.getAccountSettings(accountId, tx);
      audit.detail('previousDefaultRotationPeriodInDays', s.defaultRotationPeriodDays ?? DEFAULT_ROTATION_PERIOD_DAYS);
      if (days !== undefined) s.defaultRotationPeriodDays = days;
      await svc.keys.putAccountSettings(tx, accountId, s);
      return s;
    });
    const period = updated.defaultRotationPeriodDays ?? DEFAULT_ROTATION_PERIOD_DAYS;
    audit.detail('defaultRotationPeriodInDays', period);
    return { accountId, defaultRotationPeriodInDays: period };
  },
};
