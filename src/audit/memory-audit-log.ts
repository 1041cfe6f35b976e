import { randomUUID } from 'node:crypto';
import type { AuditEvent, AuditHealth, AuditLog, StoredAlert } from './event.js';
import type { AuditVerification } from './verify.js';
import { exportRecord, type ExportPage, type ExportQuery } from './export-query.js';
import { fieldsOf, type LastUseQuery, type LastUseRow, type LookupQuery } from './audit-db.js';

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
  async lookup(q: LookupQuery): Promise<{ seq: number; event: AuditEvent }[]> {
    const out: { seq: number; event: AuditEvent }[] = [];
    for (let i = this.events.length - 1; i >= 0 && out.length < q.limit; i--) {
      const seq = i + 1;
      const event = this.events[i]!;
      const f = fieldsOf(JSON.stringify(event));
      if (q.beforeSeq !== undefined && seq >= q.beforeSeq) continue;
      if ((f.accountId !== null && f.accountId !== q.accountId) || (f.region !== '' && f.region !== q.region)) continue;
      if ((q.startMs !== undefined && f.timeMs < q.startMs) || (q.endMs !== undefined && f.timeMs > q.endMs)) continue;
      if (q.attribute && !matches(f, q.attribute)) continue;
      if (q.eventNames && !q.eventNames.includes(f.eventName)) continue;
      if (q.succeededOnly && f.errorCode !== null) continue;
      out.push({ seq, event });
    }
    return out;
  }
  async exportEvents(q: ExportQuery): Promise<ExportPage> {
    const events: ExportPage['events'] = [];
    for (let i = q.afterSeq; i < this.events.length && events.length < q.limit; i++) {
      const e = this.events[i]!;
      const f = fieldsOf(JSON.stringify(e));
      if (q.accountId !== undefined && f.accountId !== null && f.accountId !== q.accountId) continue;
      if ((q.startMs !== undefined && f.timeMs < q.startMs) || (q.endMs !== undefined && f.timeMs > q.endMs)) continue;
      events.push({ seq: i + 1, record: exportRecord(e) });
    }
    return { events, headSeq: this.events.length, firstSeq: this.events.length ? 1 : 0 };
  }
  async lastUse(q: LastUseQuery): Promise<LastUseRow[]> {
    const by = new Map<string, LastUseRow>();
    for (const e of this.events) {
      if (e.errorCode || !q.eventNames.includes(e.eventName) || e.principal?.accountId !== q.accountId || e.awsRegion !== q.region) continue;
      if (q.principalArn && e.principal.arn !== q.principalArn) continue;
      for (const r of e.resources) {
        if (!r.arn.includes(':key/') || (q.keyArn && r.arn !== q.keyArn)) continue;
        const k = `${e.principal.arn} ${r.arn}`;
        by.set(k, { principalArn: e.principal.arn, keyArn: r.arn, eventName: e.eventName, eventTime: e.eventTime, eventId: e.eventId!, count: (by.get(k)?.count ?? 0) + 1 });
      }
    }
    return [...by.values()].reverse().slice(0, q.limit);
  }
  /** No detectors run on the memory log. */
  async listAlerts(): Promise<StoredAlert[]> {
    return [];
  }
  async ackAlert(): Promise<boolean> {
    return false;
  }
  async close(): Promise<void> {}
}

function matches(f: ReturnType<typeof fieldsOf>, a: { key: string; value: string }): boolean {
  switch (a.key) {
    case 'EventId': return f.eventId === a.value;
    case 'EventName': return f.eventName === a.value;
    case 'Username': return f.username === a.value;
    case 'AccessKeyId': return f.accessKeyId === a.value;
    case 'EventSource': return f.eventSource === a.value;
    case 'ReadOnly': return f.readOnly === (a.value === 'true');
    case 'ResourceName': return f.resources.some((r) => r.name === a.value);
    case 'ResourceType': return f.resources.some((r) => r.type === a.value);
    default: return false;
  }
}
