import { MAX_EXPORT_PAGE } from '../audit/index.js';
import { ValidationException } from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { KEYHOLD_EVENT_SOURCE } from './verify-audit-log.js';

/**
 * ExportAuditEvents (Keyhold's own): the caller's account's audit events (every region, and the
 * unattributed authentication failures) in chain order after a position, as the CloudTrail records
 * LookupEvents carries, for `keyhold audit export` (JSON Lines files, stdout, syslog). HeadSeq is
 * the newest position when the page was read: an exporter stops there, so that the events its own
 * calls add do not keep it going. The account root may call it.
 */
export const exportAuditEvents: Operation<
  { afterSeq?: number; startTime?: Date; endTime?: Date; limit?: number },
  { accountId: string; events: { seq: number; cloudTrailEvent: string }[]; headSeq: number; firstSeq: number }
> = {
  name: 'ExportAuditEvents',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: true,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'ExportAuditEvents', audit);
    if (input.startTime && input.endTime && input.startTime.getTime() > input.endTime.getTime()) {
      throw new ValidationException('StartTime is after EndTime.');
    }
    const page = await svc.audit.exportEvents({
      afterSeq: input.afterSeq ?? 0,
      accountId: call.accountId,
      ...(input.startTime ? { startMs: input.startTime.getTime() } : {}),
      ...(input.endTime ? { endMs: input.endTime.getTime() } : {}),
      limit: input.limit ?? MAX_EXPORT_PAGE,
    });
    audit.detail('export', { afterSeq: input.afterSeq ?? 0, events: page.events.length });
    return { accountId: call.accountId, events: page.events.map((e) => ({ seq: e.seq, cloudTrailEvent: e.record })), headSeq: page.headSeq, firstSeq: page.firstSeq };
  },
};
