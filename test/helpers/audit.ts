import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { AuditEvent } from '../../src/audit/index.js';

/** Where the server keeps its audit log under a data dir. */
export function auditDbPath(dataDir: string): string {
  return join(dataDir, 'audit', 'audit.db');
}

export interface StoredAuditEvent extends AuditEvent {
  eventId: string;
  /** The event's position in the hash chain. */
  seq: number;
}

/** Every event in the audit log, in chain order (read-only; the server may be running). */
export function readAuditEvents(dataDir: string): StoredAuditEvent[] {
  const file = auditDbPath(dataDir);
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT seq, body FROM events ORDER BY seq').all() as { seq: number; body: string }[];
    return rows.map((r) => ({ ...(JSON.parse(r.body) as StoredAuditEvent), seq: r.seq }));
  } finally {
    db.close();
  }
}

/** The events as JSON Lines, one per event in chain order (what the earlier events.jsonl held). */
export function readAuditText(dataDir: string): string {
  return readAuditEvents(dataDir)
    .map(({ seq: _seq, ...e }) => JSON.stringify(e) + '\n')
    .join('');
}

/**
 * Recomputes the hash chain from the stored bodies: sequence numbers 1..n without gaps, each
 * row's prev_hash the previous row's hash, each hash the hash of its own row. Returns the count.
 */
export function assertOneChain(dataDir: string, eventHash: (seq: number, prev: string, body: string) => string): number {
  const db = new Database(auditDbPath(dataDir), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT seq, body, prev_hash AS prevHash, hash FROM events ORDER BY seq').all() as { seq: number; body: string; prevHash: string; hash: string }[];
    let prev = '0'.repeat(64);
    rows.forEach((r, i) => {
      if (r.seq !== i + 1) throw new Error(`chain: expected seq ${i + 1}, found ${r.seq}`);
      if (r.prevHash !== prev) throw new Error(`chain: seq ${r.seq} does not link to seq ${r.seq - 1}`);
      if (eventHash(r.seq, prev, r.body) !== r.hash) throw new Error(`chain: seq ${r.seq} does not match its hash`);
      prev = r.hash;
    });
    return rows.length;
  } finally {
    db.close();
  }
}
