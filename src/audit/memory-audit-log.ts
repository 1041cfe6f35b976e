import { randomUUID } from 'node:crypto';
import type { AuditEvent, AuditHealth, AuditLog } from './event.js';
import type { AuditVerification } from './verify.js';

/** Keeps events in memory: for in-process tests and embedding. Not durable, not chained. */
export class MemoryAuditLog implements AuditLog {
  readonly events: AuditEvent[] = [];
  async record(event: AuditEvent): Promise<void> {
    this.events.push(event.eventId ? event : { eventId: randomUUID(), ...event });
  }
  health(): AuditHealth {
    return { healthy: true, problems: [] };
  }
  /** Nothing to check: memory holds no chain and no digests. */
  async verify(): Promise<AuditVerification> {
    const n = this.events.length;
    return { valid: true, eventsChecked: n, digestsChecked: 0, firstSeq: n ? 1 : 0, lastSeq: n, signedThroughSeq: 0, retainedThroughSeq: 0, publicKeyFingerprint: '' };
  }
  async close(): Promise<void> {}
}
