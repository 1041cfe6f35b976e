import { parseCidr } from '../audit/index.js';
import { validationError } from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { KEYHOLD_EVENT_SOURCE } from './verify-audit-log.js';

export { parseCidr };

/** At most this many CIDR blocks in an account's allowlist. */
export const MAX_SOURCE_CIDRS = 100;

export interface AlertSettingsOutput {
  accountId: string;
  sourceCidrAllowlist: string[];
  autoDeactivateOnCritical: boolean;
}

/** GetAlertSettings (Keyhold's own): the account's alert settings. */
export const getAlertSettings: Operation<Record<string, never>, AlertSettingsOutput> = {
  name: 'GetAlertSettings',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: true,
  async run(svc, call, _input, audit) {
    await authorizeAccount(svc, call, 'GetAlertSettings', audit);
    const s = await svc.identity.accountSettings(call.principal.accountId);
    return { accountId: call.principal.accountId, sourceCidrAllowlist: s.alertSourceCidrs ?? [], autoDeactivateOnCritical: s.alertAutoDeactivate === true };
  },
};

/**
 * PutAlertSettings (Keyhold's own): the account's source CIDR allowlist (calls from elsewhere raise
 * a `source-outside-allowlist` alert; an empty list turns the check off) and the optional response
 * to critical alerts (deactivate the access key that triggered it; off by default). Fields left
 * out keep their value. Audited with the values before and after.
 */
export const putAlertSettings: Operation<{ sourceCidrAllowlist?: string[]; autoDeactivateOnCritical?: boolean }, AlertSettingsOutput> = {
  name: 'PutAlertSettings',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'PutAlertSettings', audit);
    let cidrs: string[] | undefined;
    if (input.sourceCidrAllowlist !== undefined) {
      if (input.sourceCidrAllowlist.length > MAX_SOURCE_CIDRS) {
        throw validationError([`Value at 'sourceCidrAllowlist' failed to satisfy constraint: Member must have length less than or equal to ${MAX_SOURCE_CIDRS}`]);
      }
      cidrs = input.sourceCidrAllowlist.map((c) => {
        const parsed = parseCidr(c);
        if (!parsed) throw validationError([`Value '${c}' at 'sourceCidrAllowlist' failed to satisfy constraint: Member must be an IPv4 or IPv6 CIDR block`]);
        return parsed;
      });
    }
    const acct = call.principal.accountId;
    const before = await svc.identity.accountSettings(acct);
    audit.detail('previous', { sourceCidrAllowlist: before.alertSourceCidrs ?? [], autoDeactivateOnCritical: before.alertAutoDeactivate === true });
    const s = await svc.identity.updateAccountSettings(acct, {
      ...(cidrs !== undefined ? { alertSourceCidrs: cidrs } : {}),
      ...(input.autoDeactivateOnCritical !== undefined ? { alertAutoDeactivate: input.autoDeactivateOnCritical } : {}),
    });
    const out = { accountId: acct, sourceCidrAllowlist: s.alertSourceCidrs ?? [], autoDeactivateOnCritical: s.alertAutoDeactivate === true };
    audit.detail('settings', { sourceCidrAllowlist: out.sourceCidrAllowlist, autoDeactivateOnCritical: out.autoDeactivateOnCritical });
    return out;
  },
};
