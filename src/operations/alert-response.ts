import { randomUUID } from 'node:crypto';
import type { Alert } from '../audit/index.js';
import type { Services } from './context.js';
import { KEYHOLD_EVENT_SOURCE } from './verify-audit-log.js';

/** The audit event of the response (Keyhold's own event; its principal is Keyhold itself). */
export const ALERT_RESPONSE_EVENT = 'DeactivateAccessKeyForAlert';

/**
 * The optional response to a critical alert, off unless the account turned it on
 * (PutAlertSettings AutoDeactivateOnCritical): deactivate the access key that triggered it (or
 * end the role session), and record that as an audit event naming the alert, the key and the
 * outcome. The root's keys are kept (recorded as `root-kept`). Keys already inactive (the
 * revoked-credentials alert) need nothing and record nothing.
 */
export async function respondToAlert(svc: Services, alert: Alert): Promise<void> {
  if (alert.severity !== 'critical' || !alert.accountId || !alert.accessKeyId) return;
  const settings = await svc.identity.accountSettings(alert.accountId);
  if (settings.alertAutoDeactivate !== true) return;
  const r = await svc.identity.deactivateForAlert(alert.accessKeyId, alert.accountId, svc.clock.now());
  if (r.outcome === 'unknown' || r.outcome === 'already-inactive') return;
  if (r.outcome === 'deactivated') {
    svc.log('warn', 'critical alert: access key deactivated (account setting AutoDeactivateOnCritical)', { alertId: alert.alertId, accessKeyId: alert.accessKeyId, principalArn: r.principalArn });
  }
  await svc.audit.record({
    eventTime: new Date(svc.clock.now()).toISOString(),
    eventName: ALERT_RESPONSE_EVENT,
    eventSource: KEYHOLD_EVENT_SOURCE,
    awsRegion: '',
    requestId: randomUUID(),
    sourceIPAddress: 'keyhold',
    userAgent: 'keyhold-alert-response',
    readOnly: false,
    principal: { type: 'KeyholdService', arn: 'keyhold:alert-response', accountId: alert.accountId, accessKeyId: '', isRoot: false },
    resources: r.principalArn ? [{ arn: r.principalArn }] : [],
    details: {
      alertId: alert.alertId, rule: alert.rule, deactivatedAccessKeyId: alert.accessKeyId, owner: r.principalArn, outcome: r.outcome,
      ...(r.outcome === 'root-kept' ? { reason: "the account root's access key is not deactivated automatically" } : {}),
    },
  });
}
