import type { StoredAlert } from '../audit/index.js';
import { NotFoundException } from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { KEYHOLD_EVENT_SOURCE } from './verify-audit-log.js';

/** ListAlerts (Keyhold's own): the account's alerts, newest first; unacknowledged only unless asked. */
export const listAlerts: Operation<{ includeAcknowledged?: boolean; limit?: number }, { alerts: ReturnType<typeof wire>[] }> = {
  name: 'ListAlerts',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: true,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'ListAlerts', audit);
    const rows = await svc.audit.listAlerts({ accountId: call.accountId, includeAcknowledged: input.includeAcknowledged === true, limit: input.limit ?? 100 });
    return { alerts: rows.map(wire) };
  },
};

/** AcknowledgeAlert (Keyhold's own): marks an alert seen, with who and when (audited). */
export const acknowledgeAlert: Operation<{ alertId: string }, Record<string, never>> = {
  name: 'AcknowledgeAlert',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'AcknowledgeAlert', audit);
    audit.detail('alertId', input.alertId);
    if (!(await svc.audit.ackAlert(input.alertId, call.accountId, call.principal.arn))) {
      throw new NotFoundException(`Alert '${input.alertId}' does not exist`);
    }
    return {};
  },
};

function wire(a: StoredAlert) {
  return {
    alertId: a.alertId, time: new Date(a.time), severity: a.severity, rule: a.rule, summary: a.summary,
    ...(a.principalArn ? { principalArn: a.principalArn } : {}),
    ...(a.accessKeyId ? { accessKeyId: a.accessKeyId } : {}),
    ...(a.keyArn ? { keyArn: a.keyArn } : {}),
    eventIds: a.eventIds,
    acknowledged: a.acknowledgedAt !== null,
    ...(a.acknowledgedAt ? { acknowledgedAt: new Date(a.acknowledgedAt), acknowledgedBy: a.acknowledgedBy! } : {}),
  };
}
