import type { AuditVerification } from '../audit/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';

/** Where Keyhold's own operations come from in audit events (CloudTrail's eventSource). */
export const KEYHOLD_EVENT_SOURCE = 'keyhold';

/**
 * VerifyAuditLog (Keyhold's own): checks the audit log's hash chain and its signed digests and
 * names the first event that was altered, removed or reordered. The account root may call it.
 */
export const verifyAuditLog: Operation<Record<string, never>, AuditVerification> = {
  name: 'VerifyAuditLog',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: true,
  async run(svc, call, _input, audit) {
    await authorizeAccount(svc, call, 'VerifyAuditLog', audit);
    const r = await svc.audit.verify();
    audit.detail('verification', { valid: r.valid, eventsChecked: r.eventsChecked, problem: r.problem?.kind });
    return r;
  },
};
