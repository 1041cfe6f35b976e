import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { eventHash, GENESIS_HASH } from './audit-db.js';
import type { AuditEvent } from './event.js';
import { intakeDirOf } from './intake.js';
import { SqliteAuditLog } from './sqlite-audit-log.js';

function event(name: string, i: number): AuditEvent {
  return {
    eventId: randomUUID(), eventTime: new Date(Date.UTC(2026, 11, 1, 10, 0, i)).toISOString(), eventName: name, eventSource: 'kms.amazonaws.com',
    awsRegion: 'us-east-1', requestId: `req-${name}-${i}`, sourceIPAddress: '127.0.0.1', userAgent: 'unit', readOnly: false, resources: [],
  };
}

/** The stored events in chain order, after checking the chain link by link. */
function chain(file: string): AuditEvent[] {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare('SELECT seq, body, prev_hash AS prevHash, hash FROM events ORDER BY seq').all() as { seq: number; body: string; prevHash: string; hash: string }[];
    let prev = GENESIS_HASH;
    rows.forEach((r, i) => {
      assert.equal(r.seq, i + 1);
      assert.equal(r.prevHash, prev);
      assert.equal(r.hash, eventHash(r.seq, prev, r.body));
      prev = r.hash;
    });
    return rows.map((r) => JSON.parse(r.body) as AuditEvent);
  } finally {
    db.close();
  }
}

/** A pid no process has now (one that just exited). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

describe('audit intake journal', () => {
  it('answers only after the journal fsync, moves every event into the chain in order, and seals full journals for new ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-intake-'));
    try {
      const file = join(dir, 'audit', 'audit.db');
      const log = await SqliteAuditLog.open(file, { journalRotateBytes: 2000 });
      const recorded: string[] = [];
      for (let round = 0; round < 10; round++) {
        // Concurrent records form one batch (one write, one fsync).
        await Promise.all(Array.from({ length: 5 }, (_, i) => {
          const e = event('Encrypt', round * 5 + i);
          recorded.push(e.requestId);
          return log.record(e);
        }));
      }
      // A query sees every answered event (the writer moves them in first).
      const rows = await log.lookup({ accountId: '111122223333', region: 'us-east-1', limit: 1000 });
      assert.equal(rows.length, 50);
      await log.close();
      assert.deepEqual(chain(file).map((e) => e.requestId), recorded);
      // ~300 bytes per event and 2000 per journal: several journals were used, and none is left.
      assert.deepEqual(readdirSync(intakeDirOf(file)), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on start moves in the journals of processes that are gone, once, skipping a torn last line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-intake-'));
    try {
      const file = join(dir, 'audit', 'audit.db');
      const intake = intakeDirOf(file);
      // A log with two events, closed cleanly.
      let log = await SqliteAuditLog.open(file);
      await log.record(event('CreateKey', 0));
      await log.record(event('CreateKey', 1));
      await log.close();
      // A crashed process's journal: three complete events, then a line cut short (never answered).
      mkdirSync(intake, { recursive: true });
      const orphan = join(intake, `${deadPid()}-${randomUUID()}-1.jsonl`);
      const lines = [event('Decrypt', 2), event('Decrypt', 3), event('Decrypt', 4)].map((e) => JSON.stringify(e) + '\n');
      writeFileSync(orphan, lines.join('') + JSON.stringify(event('Decrypt', 5)).slice(0, 40));
      // A journal of another live process (this test runner's parent) is left alone.
      const alive = join(intake, `${process.ppid}-${randomUUID()}-1.jsonl`);
      writeFileSync(alive, JSON.stringify(event('Sign', 9)) + '\n');

      log = await SqliteAuditLog.open(file);
      await log.record(event('Encrypt', 6));
      const names = (await log.lookup({ accountId: '111122223333', region: 'us-east-1', limit: 100 })).map((r) => r.event.requestId).reverse();
      assert.deepEqual(names, ['req-CreateKey-0', 'req-CreateKey-1', 'req-Decrypt-2', 'req-Decrypt-3', 'req-Decrypt-4', 'req-Encrypt-6']);
      assert.equal(existsSync(orphan), false, 'a moved-in orphan journal is deleted');
      assert.equal(existsSync(alive), true);
      await log.close();
      rmSync(alive);
      // Opened again: nothing is moved in twice.
      log = await SqliteAuditLog.open(file);
      await log.close();
      assert.deepEqual(chain(file).map((e) => e.requestId), ['req-CreateKey-0', 'req-CreateKey-1', 'req-Decrypt-2', 'req-Decrypt-3', 'req-Decrypt-4', 'req-Encrypt-6']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
