import type { AuditEvent, AuditHealth, AuditLog, ExportPage, StoredAlert } from './event.js';
import type { AuditVerification } from './verify.js';
import type { LastUseRow } from './audit-db.js';

/**
 * UNSAFE: records nothing. It exists only so that the benchmark can measure what the durable
 * audit log costs (`keyhold server --audit-log none`, accepted on the command line only, with a
 * warning at start and in /healthz). A server running with it has no access log, no tamper
 * evidence, no last-use data and no alerts; never run one that holds real keys.
 */
export class DiscardingAuditLog implements AuditLog {
  static readonly WARNING =
    'the audit log is OFF (--audit-log none): no call is recorded, nothing is tamper-evident, no alert fires; for benchmarks only';

  async record(_event: AuditEvent): Promise<void> {}

  /** Serving works, so it is "healthy"; the problem line says why nothing is audited. */
  health(): AuditHealth {
    return { healthy: true, problems: [DiscardingAuditLog.WARNING] };
  }

  verify(): Promise<AuditVerification> {
    return Promise.reject(new Error('the audit log is off (--audit-log none): there is nothing to verify'));
  }

  async lookup(): Promise<{ seq: number; event: AuditEvent }[]> {
    return [];
  }

  async exportEvents(): Promise<ExportPage> {
    return { events: [], headSeq: 0, firstSeq: 0 };
  }

  async lastUse(): Promise<LastUseRow[]> {
    return [];
  }

  async listAlerts(): Promise<StoredAlert[]> {
    return [];
  }

  async ackAlert(): Promise<boolean> {
    return false;
  }

  async close(): Promise<void> {}
}
