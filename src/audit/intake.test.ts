import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { eventHash, GENESIS_HASH } from './audit-db.js';
import type { AuditEvent } from './event.js';
import { intakeDirOf, JOURNAL_PREFILL_BYTES } from './intake.js';
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

/**
 * Ends the log's writer thread as a crash would (it is stopped, not asked to close), while `lock`
 * holds the database's write lock so that it moved nothing in since the lock was taken; then
 * releases the lock.
 */
async function endWriter(log: SqliteAuditLog, lock: Database.Database): Promise<void> {
  const stopped = (log as unknown as { worker: Worker }).worker.terminate();
  lock.exec('ROLLBACK');
  lock.close();
  await stopped;
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

  it('zero-fills the journal ahead of its events, and moves in only the events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-intake-'));
    try {
      const file = join(dir, 'audit', 'audit.db');
      const log = await SqliteAuditLog.open(file);
      const recorded: string[] = [];
      for (let i = 0; i < 3; i++) {
        const e = event('Encrypt', i);
        recorded.push(e.requestId);
        await log.record(e);
      }
      const [name] = readdirSync(intakeDirOf(file));
      let bytes = readFileSync(join(intakeDirOf(file), name!));
      for (let i = 0; i < 100 && bytes.length < JOURNAL_PREFILL_BYTES; i++) {
        await new Promise((r) => setTimeout(r, 20));
        bytes = readFileSync(join(intakeDirOf(file), name!));
      }
      assert.ok(bytes.length >= JOURNAL_PREFILL_BYTES, `the journal is filled ahead (${bytes.length} bytes)`);
      const end = bytes.lastIndexOf(10) + 1;
      assert.deepEqual(bytes.subarray(0, end).toString().split('\n').slice(0, -1).map((l) => (JSON.parse(l) as AuditEvent).requestId), recorded);
      assert.ok(bytes.subarray(end).every((b) => b === 0), 'only zeros after the last event');
      assert.equal((await log.lookup({ accountId: '111122223333', region: 'us-east-1', limit: 100 })).length, 3);
      await log.close();
      assert.deepEqual(chain(file).map((e) => e.requestId), recorded);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on start moves in the journals of processes that are gone, once, skipping a torn last line and stopping at the zero fill', async () => {
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
      // Another, zero-filled ahead as journals are: two events, a line cut short, zeros, and a complete
      // line after them (a write that was never answered, partly on disk): only the two are moved in.
      const prefilled = join(intake, `${deadPid()}-${randomUUID()}-1.jsonl`);
      writeFileSync(prefilled, Buffer.concat([
        Buffer.from([event('Verify', 7), event('Verify', 8)].map((e) => JSON.stringify(e) + '\n').join('') + JSON.stringify(event('Verify', 10)).slice(0, 50)),
        Buffer.alloc(4096),
        Buffer.from(JSON.stringify(event('Verify', 11)) + '\n'),
        Buffer.alloc(8192),
      ]));
      // A journal of another live process (this test runner's parent) is left alone.
      const alive = join(intake, `${process.ppid}-${randomUUID()}-1.jsonl`);
      writeFileSync(alive, JSON.stringify(event('Sign', 9)) + '\n');

      log = await SqliteAuditLog.open(file);
      await log.record(event('Encrypt', 6));
      const names = (await log.lookup({ accountId: '111122223333', region: 'us-east-1', limit: 100 })).map((r) => r.event.requestId).reverse();
      // The two orphans are moved in in either order (directory order); each one's events stay together and in order.
      const orphanEvents = names.slice(2, 7);
      const decrypts = ['req-Decrypt-2', 'req-Decrypt-3', 'req-Decrypt-4'];
      const verifies = ['req-Verify-7', 'req-Verify-8'];
      assert.ok([[...decrypts, ...verifies], [...verifies, ...decrypts]].some((o) => JSON.stringify(o) === JSON.stringify(orphanEvents)), orphanEvents.join(' '));
      assert.deepEqual([...names.slice(0, 2), ...names.slice(7)], ['req-CreateKey-0', 'req-CreateKey-1', 'req-Encrypt-6']);
      assert.equal(existsSync(orphan), false, 'a moved-in orphan journal is deleted');
      assert.equal(existsSync(prefilled), false, 'a moved-in zero-filled orphan journal is deleted');
      assert.equal(existsSync(alive), true);
      await log.close();
      rmSync(alive);
      // Opened again: nothing is moved in twice.
      log = await SqliteAuditLog.open(file);
      await log.close();
      assert.deepEqual(chain(file).map((e) => e.requestId), names);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a writer thread that exits mid-run is replaced by one that moves in every journal of this log still on disk, the sealed ones too, once, deletes them, and answers the requests left pending', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-intake-'));
    try {
      const file = join(dir, 'audit', 'audit.db');
      const intake = intakeDirOf(file);
      const log = await SqliteAuditLog.open(file, { journalRotateBytes: 2000 });
      const recorded: string[] = [];
      const record = (n: number): Promise<void[]> => Promise.all(Array.from({ length: n }, () => {
        const e = event('Encrypt', recorded.length);
        recorded.push(e.requestId);
        return log.record(e);
      }));
      const all = async (): Promise<string[]> => (await log.lookup({ accountId: '111122223333', region: 'us-east-1', limit: 1000 })).map((r) => r.event.requestId).reverse();
      // Three events, moved in: the first journal's watermark is past them.
      await record(3);
      assert.equal((await all()).length, 3);
      // While another connection holds the database's write lock, the writer thread can move nothing in.
      const lock = new Database(file);
      lock.exec('BEGIN IMMEDIATE');
      // One batch of ~3000 bytes: answered (it is in the journal), and the journal is sealed for a new one.
      await record(10);
      const before = readdirSync(intake);
      assert.equal(before.length, 2, `a sealed journal and the current one: ${before.join(' ')}`);
      // A query and a batch that reach the writer thread before it exits (or the new one after).
      const query = all();
      const more = record(8);
      await endWriter(log, lock);
      await more;
      assert.ok((await query).length >= 3, 'the query pending at the exit is answered');
      assert.deepEqual(await all(), recorded, 'every answered event is in the log, in order, once');
      const left = readdirSync(intake);
      assert.deepEqual(left.filter((n) => before.includes(n)), [], 'the sealed journals are deleted once moved in');
      assert.equal(left.length, 1, `only the current journal is left: ${left.join(' ')}`);
      for (let i = 0; i < 100 && !log.health().healthy; i++) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(log.health(), { healthy: true, problems: [] });
      await log.close();
      assert.deepEqual(chain(file).map((e) => e.requestId), recorded);
      assert.deepEqual(readdirSync(intake), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a writer thread that exits while moving events in fails is replaced by one that lifts the refusal once it can move them', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-intake-'));
    try {
      const file = join(dir, 'audit', 'audit.db');
      const log = await SqliteAuditLog.open(file);
      const recorded: string[] = [];
      const record = (): Promise<void> => {
        const e = event('Decrypt', recorded.length);
        return log.record(e).then(() => void recorded.push(e.requestId));
      };
      await record();
      const lock = new Database(file);
      lock.exec('BEGIN IMMEDIATE');
      await record();
      // The writer gives up on the lock after the database's busy timeout (10 s) and reports it.
      for (let i = 0; i < 300 && log.health().healthy; i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(log.health().problems.join(' '), /cannot be moved into/);
      await assert.rejects(record(), /cannot be moved into/, 'refused while events cannot be moved in');
      await endWriter(log, lock);
      let accepted = false;
      for (let i = 0; i < 100 && !accepted; i++) {
        accepted = await record().then(() => true, () => false);
        if (!accepted) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(accepted, 'events are accepted again once the new thread moves them in');
      await log.close();
      assert.deepEqual(chain(file).map((e) => e.requestId), recorded);
      assert.deepEqual(readdirSync(intakeDirOf(file)), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
