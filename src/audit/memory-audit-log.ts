import { randomUUID } from 'node:crypto';
import type { AuditEvent, AuditHealth, AuditLog } from './event.js';

/** Keeps events in memory: for in-process tests and embedding. Not durable, not chained. */
export class MemoryAuditLog implements AuditLog {
  readonly events: AuditEvent[] = [];
  async record(event: AuditEvent): Promise<void> {
    this.events.push(event.eventId ? event : { eventId: randomUUID(), ...event });
  }
  health(): AuditHealth {
    return { healthy: true, problems: [] };
  }
  async close(): Promise<void> {}
}
