import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

/**
 * Waits (up to `timeoutMs`) until every event in the intake journals (src/audit/intake.ts) has been
 * moved into the audit database, as the writer thread does within moments. Returns whether it
 * got there. A running server's answered requests are then all in audit.db.
 */
export function waitForIntake(dataDir: string, timeoutMs = 5000): boolean {
  const dir = join(dataDir, 'audit', 'intake');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (intakeDone(dir, auditDbPath(dataDir))) return true;
    if (Date.now() > deadline) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

function intakeDone(dir: string, dbFile: string): boolean {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.jsonl'));
  } catch {
    return true;
  }
  if (names.length === 0) return true;
  if (!existsSync(dbFile)) return false;
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    for (const name of names) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(dir, name));
      } catch {
        continue; // deleted meanwhile: all moved in
      }
      const complete = bytes.lastIndexOf(10) + 1;
      const w = Number((db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(`intake:${name}`) as string | undefined) ?? '0');
      if (w < complete) return false;
    }
    return true;
  } finally {
    db.close();
  }
}

/** Every event in the audit log, in chain order (read-only; the server may be running: waits for its intake first). */
export function readAuditEvents(dataDir: string): StoredAuditEvent[] {
  const file = auditDbPath(dataDir);
  waitForIntake(dataDir);
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
  waitForIntake(dataDir);
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
