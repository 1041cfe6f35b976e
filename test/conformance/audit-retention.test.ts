/**
 * Conformance: audit retention (issue 5). `--audit-retention-days N` removes events older than N
 * days only together with a signed digest that covers the removal and anchors the chain of what
 * remains: `keyhold audit verify` passes afterwards (offline and through the API), and still
 * names a kept event that was altered or removed. The clock is moved with libfaketime.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { auditDbPath, readAuditEvents } from '../helpers/audit.js';
import { faketimeWrapper, libfaketime, offsetClient } from '../helpers/faketime.js';
import { cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';

interface Report { valid: boolean; eventsChecked: number; firstSeq: number; lastSeq: number; signedThroughSeq: number; retainedThroughSeq: number; problem?: { kind: string; seq?: number; eventId?: string; message: string } }

async function verifyOffline(dataDir: string): Promise<{ code: number | null; report: Report; stderr: string }> {
  const r = await runCli(['audit', 'verify', '--data-dir', dataDir, '--json']);
  return { code: r.code, report: r.stdout ? (JSON.parse(r.stdout) as Report) : (undefined as unknown as Report), stderr: r.stderr };
}

async function waitFor(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('audit retention under a signed digest', () => {
  const root = tempDir();
  const dataDir = join(root, 'data');
  let lib: string | undefined;
  let oldIds: string[] = [];
  let keyId = '';
  let creds: TestServer['credentials'];
  let copies = 0;

  function tampered(sql: (db: Database.Database) => void): string {
    const dir = join(root, `copy-${copies++}`);
    cpSync(dataDir, dir, { recursive: true });
    const db = new Database(auditDbPath(dir));
    try {
      sql(db);
    } finally {
      db.close();
    }
    return dir;
  }

  before(async () => {
    lib = libfaketime();
    if (!lib) return;
    // Today: a key and some use; the clean shutdown signs every event.
    const s = await startServer({ dataDir, args: ['--audit-digest-seconds', '1'] });
    creds = s.credentials;
    try {
      const kms = s.kms();
      keyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
      for (let i = 0; i < 8; i++) await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from(`old ${i}`) });
    } finally {
      assert.equal(await s.stop(), 0);
    }
    oldIds = readAuditEvents(dataDir).map((e) => e.eventId);
    // 40 days later with 30 days' retention: the old events go at start.
    const later = await startServer({ dataDir, credentials: creds, wrapper: faketimeWrapper(lib, 40), args: ['--audit-digest-seconds', '1', '--audit-retention-days', '30'] });
    try {
      await waitFor('retention', () => readAuditEvents(dataDir).some((e) => e.eventName === 'ApplyAuditRetention'));
      const kms = offsetClient(later, creds, 40);
      for (let i = 0; i < 6; i++) await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from(`new ${i}`) });
    } finally {
      assert.equal(await later.stop(), 0);
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('removes the old events and records why', () => {
    if (!lib) return;
    const kept = readAuditEvents(dataDir);
    const keptIds = new Set(kept.map((e) => e.eventId));
    assert.ok(oldIds.every((id) => !keptIds.has(id)), 'every event from 40 days ago was removed');
    const marker = kept.find((e) => e.eventName === 'ApplyAuditRetention')!;
    assert.equal((marker.details as { retentionDays: number }).retentionDays, 30);
    assert.equal((marker.details as { removedThroughSeq: number }).removedThroughSeq, oldIds.length);
    assert.equal(kept[0]!.seq, oldIds.length + 1, 'the kept events keep their positions');
    assert.equal(kept.filter((e) => e.eventName === 'Encrypt').length, 6);
  });

  it('verify passes on what remains, offline and through the API', async () => {
    if (!lib) return;
    const r = await verifyOffline(dataDir);
    assert.equal(r.code, 0, r.stderr + JSON.stringify(r.report));
    assert.equal(r.report.valid, true);
    assert.equal(r.report.retainedThroughSeq, oldIds.length);
    assert.equal(r.report.firstSeq, oldIds.length + 1);
    assert.equal(r.report.signedThroughSeq, r.report.lastSeq);
    const human = await runCli(['audit', 'verify', '--data-dir', dataDir]);
    assert.match(human.stdout, new RegExp(`events 1\\.\\.${oldIds.length} removed by retention under a signed digest`));
    // Back on today's clock (nothing is 30 days old for it): the API agrees.
    const s = await startServer({ dataDir: tampered(() => {}), credentials: creds, args: ['--audit-retention-days', '30'] });
    try {
      const api = await runCli(['audit', 'verify', '--json'], cliEnv(s, creds));
      assert.equal(api.code, 0, api.stdout + api.stderr);
      assert.equal((JSON.parse(api.stdout) as Report).retainedThroughSeq, oldIds.length);
    } finally {
      await s.stop();
    }
  });

  it('still names an altered kept event', async () => {
    if (!lib) return;
    const target = readAuditEvents(dataDir).filter((e) => e.eventName === 'Encrypt')[2]!;
    const r = await verifyOffline(tampered((db) => db.prepare("UPDATE events SET body = replace(body, '\"Encrypt\"', '\"Decrypt\"') WHERE seq = ?").run(target.seq)));
    assert.equal(r.code, 3);
    assert.deepEqual([r.report.problem!.kind, r.report.problem!.seq, r.report.problem!.eventId], ['altered', target.seq, target.eventId]);
  });

  it('still names a removed kept event (the first one kept, and one later)', async () => {
    if (!lib) return;
    const first = oldIds.length + 1;
    const r1 = await verifyOffline(tampered((db) => db.prepare('DELETE FROM events WHERE seq = ?').run(first)));
    assert.equal(r1.code, 3);
    assert.deepEqual([r1.report.problem!.kind, r1.report.problem!.seq], ['removed', first]);
    const r2 = await verifyOffline(tampered((db) => db.prepare('DELETE FROM events WHERE seq = ?').run(first + 3)));
    assert.equal(r2.code, 3);
    assert.deepEqual([r2.report.problem!.kind, r2.report.problem!.seq], ['removed', first + 3]);
  });

  it('a removal no retention digest states is caught', async () => {
    if (!lib) return;
    // Removing kept events as if retention had gone further, without a signed statement.
    const first = oldIds.length + 1;
    const r = await verifyOffline(tampered((db) => db.prepare('DELETE FROM events WHERE seq <= ?').run(first + 2)));
    assert.equal(r.code, 3);
    assert.deepEqual([r.report.problem!.kind, r.report.problem!.seq], ['removed', first]);
  });
});
