/**
 * Conformance: tamper evidence (issue 5). Digests over ranges of events are signed with the
 * Ed25519 key the keystore holds; `keyhold audit verify` (through the API, and offline with
 * --data-dir) checks chain and signatures and names the first event that was altered, removed or
 * reordered. Each way of tampering is done to a copy of a real server's data dir with SQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { eventHash } from '../../src/audit/audit-db.js';
import { auditDbPath, readAuditEvents } from '../helpers/audit.js';
import { cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';

interface Report { valid: boolean; eventsChecked: number; digestsChecked: number; lastSeq: number; signedThroughSeq: number; problem?: { kind: string; seq?: number; eventId?: string; message: string } }

async function verifyOffline(dataDir: string): Promise<{ code: number | null; report: Report; stderr: string }> {
  const r = await runCli(['audit', 'verify', '--data-dir', dataDir, '--json']);
  return { code: r.code, report: r.stdout ? (JSON.parse(r.stdout) as Report) : (undefined as unknown as Report), stderr: r.stderr };
}

describe('audit log: signed digests and verify', () => {
  const root = tempDir();
  let pristine = '';
  let events: ReturnType<typeof readAuditEvents> = [];
  let copies = 0;
  let creds: TestServer['credentials'];

  /** A fresh copy of the stopped server's data dir, with `sql` applied to its audit database. */
  function tampered(sql: (db: Database.Database) => void): string {
    const dir = join(root, `copy-${copies++}`);
    cpSync(pristine, dir, { recursive: true });
    const db = new Database(auditDbPath(dir));
    try {
      sql(db);
    } finally {
      db.close();
    }
    return dir;
  }

  before(async () => {
    const s = await startServer({ args: ['--audit-digest-seconds', '1'] });
    try {
      const kms = s.kms();
      const keyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
      for (let i = 0; i < 20; i++) await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from(`m${i}`) });
      await new Promise((r) => setTimeout(r, 1500));
      // Through the API: intact.
      const api = await runCli(['audit', 'verify', '--json'], cliEnv(s));
      assert.equal(api.code, 0, api.stdout + api.stderr);
      const report = JSON.parse(api.stdout) as Report;
      assert.equal(report.valid, true);
      assert.ok(report.digestsChecked >= 1, 'a digest was signed within the interval');
      assert.ok(report.signedThroughSeq >= 21, `signed through ${report.signedThroughSeq}`);
      const human = await runCli(['audit', 'verify'], cliEnv(s));
      assert.equal(human.code, 0);
      assert.match(human.stdout, /^audit log OK: \d+ events/);
      // Offline, while the server runs.
      const off = await verifyOffline(s.dataDir);
      assert.equal(off.code, 0, off.stderr);
      assert.equal(off.report.valid, true);
    } finally {
      assert.equal(await s.stop(), 0);
    }
    pristine = s.dataDir;
    creds = s.credentials;
    events = readAuditEvents(pristine);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('an untouched log verifies offline, every event signed after a clean shutdown', async () => {
    const r = await verifyOffline(pristine);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.report.eventsChecked, events.length);
    assert.equal(r.report.signedThroughSeq, events.length, 'the shutdown signs the last events');
  });

  it('names an altered event', async () => {
    const dir = tampered((db) => db.prepare("UPDATE events SET body = replace(body, '\"Encrypt\"', '\"Decrypt\"') WHERE seq = 7").run());
    const r = await verifyOffline(dir);
    assert.equal(r.code, 3);
    assert.equal(r.report.valid, false);
    assert.deepEqual([r.report.problem!.kind, r.report.problem!.seq, r.report.problem!.eventId], ['altered', 7, events[6]!.eventId]);
    const human = await runCli(['audit', 'verify', '--data-dir', dir]);
    assert.equal(human.code, 3);
    assert.match(human.stdout, new RegExp(`FAILED verification: altered at event 7 \\(eventId ${events[6]!.eventId}\\)`));
  });

  it('names a removed event', async () => {
    const r = await verifyOffline(tampered((db) => db.prepare('DELETE FROM events WHERE seq = 5').run()));
    assert.equal(r.code, 3);
    assert.deepEqual([r.report.problem!.kind, r.report.problem!.seq], ['removed', 5]);
  });

  it('names a removed event when the rest were renumbered to close the gap', async () => {
    const r = await verifyOffline(tampered((db) => {
      db.prepare('DELETE FROM events WHERE seq = 5').run();
      db.prepare('UPDATE events SET seq = -(seq - 1) WHERE seq > 5').run();
      db.prepare('UPDATE events SET seq = -seq WHERE seq < 0').run();
    }));
    assert.equal(r.code, 3);
    assert.deepEqual([r.report.problem!.kind, r.report.problem!.seq], ['removed', 5]);
  });

  it('names removed events at the end that a signed digest covers', async () => {
    const last = events.length;
    const r = await verifyOffline(tampered((db) => db.prepare('DELETE FROM events WHERE seq > ?').run(last - 3)));
    assert.equal(r.code, 3);
    assert.deepEqual([r.report.problem!.kind, r.report.problem!.seq], ['removed', last - 2]);
  });

  it('names reordered events (bodies swapped, or whole rows swapped)', async () => {
    const swapBodies = await verifyOffline(tampered((db) => {
      const a = db.prepare('SELECT body FROM events WHERE seq = 9').get() as { body: string };
      const b = db.prepare('SELECT body FROM events WHERE seq = 10').get() as { body: string };
      db.prepare('UPDATE events SET body = ? WHERE seq = 9').run(b.body);
      db.prepare('UPDATE events SET body = ? WHERE seq = 10').run(a.body);
    }));
    assert.equal(swapBodies.code, 3);
    assert.deepEqual([swapBodies.report.problem!.kind, swapBodies.report.problem!.seq, swapBodies.report.problem!.eventId], ['reordered', 9, events[9]!.eventId]);

    const swapRows = await verifyOffline(tampered((db) => {
      db.prepare('UPDATE events SET seq = -1 WHERE seq = 9').run();
      db.prepare('UPDATE events SET seq = 9 WHERE seq = 10').run();
      db.prepare('UPDATE events SET seq = 10 WHERE seq = -1').run();
    }));
    assert.equal(swapRows.code, 3);
    assert.deepEqual([swapRows.report.problem!.kind, swapRows.report.problem!.seq], ['reordered', 9]);
  });

  it('catches an altered event whose chain was recomputed, through the signed digest', async () => {
    const r = await verifyOffline(tampered((db) => {
      db.prepare("UPDATE events SET body = replace(body, '\"Encrypt\"', '\"Decrypt\"') WHERE seq = 7").run();
      const rows = db.prepare('SELECT seq, body FROM events ORDER BY seq').all() as { seq: number; body: string }[];
      let prev = '0'.repeat(64);
      for (const row of rows) {
        const h = eventHash(row.seq, prev, row.body);
        db.prepare('UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?').run(prev, h, row.seq);
        prev = h;
      }
    }));
    assert.equal(r.code, 3);
    assert.equal(r.report.problem!.kind, 'altered');
    assert.match(r.report.problem!.message, /do not match signed digest/);
    assert.ok(r.report.problem!.seq! <= 7);
  });

  it('rejects a digest whose signature does not verify', async () => {
    const r = await verifyOffline(tampered((db) => db.prepare("UPDATE digests SET body = replace(body, '\"version\":1', '\"version\":1 ') WHERE digest_seq = 1").run()));
    assert.equal(r.code, 3);
    assert.equal(r.report.problem!.kind, 'digest');
    assert.match(r.report.problem!.message, /invalid signature/);
  });

  it('the API verification finds tampering too', async () => {
    const dir = tampered((db) => db.prepare("UPDATE events SET body = replace(body, '\"Encrypt\"', '\"Decrypt\"') WHERE seq = 12").run());
    const s = await startServer({ dataDir: dir, credentials: creds });
    try {
      const r = await runCli(['audit', 'verify', '--json'], cliEnv(s));
      assert.equal(r.code, 3, r.stderr);
      const report = JSON.parse(r.stdout) as Report;
      assert.deepEqual([report.problem!.kind, report.problem!.seq], ['altered', 12]);
    } finally {
      await s.stop();
    }
  });
});

