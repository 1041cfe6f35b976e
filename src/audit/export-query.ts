/**
 * Reading the audit log in chain order for export (SIEM): JSON Lines files, stdout, syslog. Each
 * event comes as the CloudTrail record LookupEvents' CloudTrailEvent carries, with its position in
 * the chain, so that an exporter can resume after the last position it wrote.
 */
import type { AuditDb } from './audit-db.js';
import { toCloudTrailRecord } from './cloudtrail.js';
import type { AuditEvent, ExportPage, ExportQuery } from './event.js';

export type { ExportPage, ExportQuery };

/** The largest page an exporter may ask for. */
export const MAX_EXPORT_PAGE = 1000;

export function exportRecord(e: AuditEvent): string {
  return JSON.stringify(toCloudTrailRecord(e));
}

export function readExportPage(adb: AuditDb, q: ExportQuery): ExportPage {
  const where = ['seq > ?'];
  const args: unknown[] = [q.afterSeq];
  if (q.accountId !== undefined) {
    where.push('(account_id = ? OR account_id IS NULL)');
    args.push(q.accountId);
  }
  if (q.startMs !== undefined) {
    where.push('time_ms >= ?');
    args.push(q.startMs);
  }
  if (q.endMs !== undefined) {
    where.push('time_ms <= ?');
    args.push(q.endMs);
  }
  const range = adb.seqRangeForTime(q.startMs, q.endMs, 'seq');
  if (range) {
    where.push(range.sql);
    args.push(...range.args);
  }
  args.push(Math.max(1, Math.min(MAX_EXPORT_PAGE, q.limit)));
  return adb.db.transaction(() => {
    const rows = adb.db.prepare(`SELECT seq, body FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`).all(...args) as { seq: number; body: string }[];
    const bounds = adb.db.prepare('SELECT MIN(seq) AS first, MAX(seq) AS last FROM events').get() as { first: number | null; last: number | null };
    return {
      events: rows.map((r) => ({ seq: r.seq, record: exportRecord(JSON.parse(r.body) as AuditEvent) })),
      headSeq: bounds.last ?? adb.head().seq,
      firstSeq: bounds.first ?? 0,
    };
  }).deferred();
}
