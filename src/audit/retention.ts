/**
 * Retention: events older than a cutoff are removed only together with a signed digest that says
 * so. The removal ends at a digest boundary (an event position a signed digest ends at), so the
 * chain of what remains starts from a hash that a signature vouches for, and `keyhold audit
 * verify` checks the rest as before: an altered or removed kept event still fails. The
 * statement itself rides in the next digest, `retention: { removedThroughSeq, cutoff }`, which
 * covers at least one new event (the retention event the log records first).
 */
import type { AuditDb, DigestBody } from './audit-db.js';

export interface RetentionPlan {
  /** Remove events 1..removeThroughSeq (a digest boundary); 0 or <= retainedThroughSeq: nothing to do. */
  removeThroughSeq: number;
  /** What earlier retention digests already removed. */
  retainedThroughSeq: number;
}

/** The furthest removal every signed digest allows: the last digest boundary before the first event at or after the cutoff. */
export function planRetention(adb: AuditDb, cutoffMs: number): RetentionPlan {
  const firstKept = adb.firstSeqAtOrAfter(cutoffMs) ?? adb.head().seq + 1;
  const boundary = (adb.db.prepare('SELECT MAX(to_seq) AS s FROM digests WHERE to_seq < ?').get(firstKept) as { s: number | null }).s ?? 0;
  return { removeThroughSeq: boundary, retainedThroughSeq: retainedThrough(adb) };
}

export function retainedThrough(adb: AuditDb): number {
  let through = 0;
  for (const r of adb.db.prepare("SELECT body FROM digests WHERE body LIKE '%\"retention\":%'").all() as { body: string }[]) {
    const b = JSON.parse(r.body) as DigestBody;
    if (b.retention && b.retention.removedThroughSeq > through) through = b.retention.removedThroughSeq;
  }
  return through;
}

/**
 * Removes up to `limit` events at or below `throughSeq`, but only what a signed retention digest
 * allows (never on a plan alone). Small batches: appends wait for each one, not for the whole removal.
 */
export function pruneEvents(adb: AuditDb, throughSeq: number, limit: number): number {
  return adb.db.transaction(() => {
    const allowed = Math.min(throughSeq, retainedThrough(adb));
    const rows = adb.db.prepare('SELECT seq, body FROM events WHERE seq <= ? ORDER BY seq LIMIT ?').all(allowed, limit) as { seq: number; body: string }[];
    const delEvent = adb.db.prepare('DELETE FROM events WHERE seq = ?');
    for (const r of rows) {
      adb.unindex(r.seq, r.body);
      delEvent.run(r.seq);
    }
    if (rows.length > 0) adb.db.prepare('DELETE FROM event_minutes WHERE last_seq <= ?').run(rows[rows.length - 1]!.seq);
    return rows.length;
  }).immediate();
}
