import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { storageContract } from '../contract.js';
import type { StorageWriter } from '../storage.js';
import { SQLITE_SCHEMA_VERSION, SqliteStorage } from './sqlite-storage.js';

const dir = mkdtempSync(join(tmpdir(), 'keyhold-sqlite-'));
let n = 0;
const freshFile = () => join(dir, `db-${++n}.sqlite`);
const b = (s: string) => Buffer.from(s, 'utf8');
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const T = { timeout: 30_000 };

after(() => rmSync(dir, { recursive: true, force: true }));

storageContract('SqliteStorage', async () => {
  const storage = SqliteStorage.open(freshFile());
  return { storage, cleanup: () => storage.close() };
});

storageContract('SqliteStorage (synchronous FULL)', async () => {
  const storage = SqliteStorage.open(freshFile(), { synchronous: 'FULL' });
  return { storage, cleanup: () => storage.close() };
});

describe('SqliteStorage on a shared file', () => {
  it('data persists after close and reopen', T, async () => {
    const file = freshFile();
    const first = SqliteStorage.open(file);
    await first.put('persist/a', b('A'));
    await first.transaction(async (tx) => { await tx.put('persist/b', Buffer.from([0, 255, 0])); });
    assert.equal(await first.tryAcquireLease('persist-job', 'n1', 60_000, 1000), true);
    await first.close();
    const again = SqliteStorage.open(file);
    try {
      assert.deepEqual(await again.get('persist/a'), b('A'));
      assert.deepEqual(await again.get('persist/b'), Buffer.from([0, 255, 0]));
      assert.equal(await again.tryAcquireLease('persist-job', 'n2', 60_000, 2000), false);
    } finally {
      await again.close();
    }
  });

  it('the file is in WAL mode and records schema version 1 in meta', T, async () => {
    const file = freshFile();
    await SqliteStorage.open(file).close();
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").pluck().get(), String(SQLITE_SCHEMA_VERSION));
      const plan = db.prepare("EXPLAIN QUERY PLAN SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k ASC LIMIT ?").all('a/', 'a0', -1);
      assert.match(JSON.stringify(plan), /SEARCH kv USING PRIMARY KEY \(k>\? AND k<\?\)/);
    } finally {
      db.close();
    }
  });

  it('synchronous is NORMAL by default and FULL on request', T, async () => {
    const level = (st: SqliteStorage) => (st as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true });
    const normal = SqliteStorage.open(freshFile());
    const full = SqliteStorage.open(freshFile(), { synchronous: 'FULL' });
    try {
      assert.equal(level(normal), 1);
      assert.equal(level(full), 2);
    } finally {
      await normal.close();
      await full.close();
    }
    assert.throws(() => SqliteStorage.open(freshFile(), { synchronous: 'OFF' as 'FULL' }), Error);
  });

  it('a file written by a newer schema version is refused', T, async () => {
    const file = freshFile();
    await SqliteStorage.open(file).close();
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = '2' WHERE name = 'schema_version'").run();
    db.close();
    assert.throws(() => SqliteStorage.open(file), /schema version 2/);
  });

  describe('two instances on one file (as two processes would)', () => {
    let file: string;
    let p1: SqliteStorage;
    let p2: SqliteStorage;
    before(() => {
      file = freshFile();
      p1 = SqliteStorage.open(file);
      p2 = SqliteStorage.open(file);
    });
    after(async () => {
      await p1.close();
      await p2.close();
    });

    it("each sees the other's committed writes, and not its uncommitted ones", T, async () => {
      await p1.put('shared/a', b('from p1'));
      assert.deepEqual(await p2.get('shared/a'), b('from p1'));
      let release!: () => void;
      const open = new Promise<void>((resolve) => { release = resolve; });
      let finish!: () => void;
      const hold = new Promise<void>((resolve) => { finish = resolve; });
      const tx = p2.transaction(async (t) => {
        await t.put('shared/b', b('from p2'));
        release();
        await hold;
      });
      await open;
      // p1 reads the committed snapshot at once (WAL readers do not wait for the writer).
      assert.equal(await p1.get('shared/b'), undefined);
      finish();
      await tx;
      assert.deepEqual(await p1.get('shared/b'), b('from p2'));
      assert.deepEqual((await p1.list('shared/')).map((e) => e.key), ['shared/a', 'shared/b']);
    });

    it("getCached sees the other's commits within cachedReadStalenessMs, and at once with 0", T, async () => {
      const file = freshFile();
      const writer = SqliteStorage.open(file);
      const bounded = SqliteStorage.open(file, { cachedReadStalenessMs: 200 });
      const exact = SqliteStorage.open(file, { cachedReadStalenessMs: 0 });
      try {
        await writer.put('stale/k', b('v1'));
        assert.deepEqual(await bounded.getCached('stale/k'), b('v1'));
        assert.deepEqual(await exact.getCached('stale/k'), b('v1'));
        await writer.put('stale/k', b('v2'));
        assert.deepEqual(await exact.getCached('stale/k'), b('v2'), 'staleness 0 checks on every read');
        assert.deepEqual(await bounded.get('stale/k'), b('v2'), 'get is always fresh');
        // Within the bound the cached value may be served; after it, the change must show.
        await new Promise((r) => setTimeout(r, 250));
        assert.deepEqual(await bounded.getCached('stale/k'), b('v2'));
        await writer.delete('stale/k');
        await new Promise((r) => setTimeout(r, 250));
        assert.equal(await bounded.getCached('stale/k'), undefined);
      } finally {
        await writer.close();
        await bounded.close();
        await exact.close();
      }
      assert.throws(() => SqliteStorage.open(freshFile(), { cachedReadStalenessMs: -1 }), /cachedReadStalenessMs/);
    });

    it('their concurrent counter increments (transactions on both) total exactly', T, async () => {
      const increment = (tx: StorageWriter) => async () => {
        const cur = await tx.get('shared/ctr');
        await tick();
        await tx.put('shared/ctr', b(String(Number(cur?.toString() ?? '0') + 1)));
      };
      const runs = [];
      for (let i = 0; i < 30; i++) {
        runs.push(p1.transaction((tx) => increment(tx)()));
        runs.push(p2.transaction((tx) => increment(tx)()));
        runs.push(i % 2 === 0 ? p1.putIfAbsent(`shared/one-off/${i}`, b('x')) : p2.put(`shared/one-off/${i}`, b('y')));
      }
      await Promise.all(runs);
      assert.equal((await p1.get('shared/ctr'))!.toString(), '60');
      assert.equal(await p2.count('shared/one-off/'), 30);
    });

    it('a lease taken by one is refused to the other until it expires or is released', T, async () => {
      const now = 1_800_000_000_000;
      assert.equal(await p1.tryAcquireLease('jobs/rotation', 'p1', 10_000, now), true);
      assert.equal(await p2.tryAcquireLease('jobs/rotation', 'p2', 10_000, now + 1), false);
      assert.equal(await p1.tryAcquireLease('jobs/rotation', 'p1', 10_000, now + 5_000), true);
      assert.equal(await p2.tryAcquireLease('jobs/rotation', 'p2', 10_000, now + 12_000), false);
      assert.equal(await p2.tryAcquireLease('jobs/rotation', 'p2', 10_000, now + 15_000), true);
      await p2.releaseLease('jobs/rotation', 'p2');
      assert.equal(await p1.tryAcquireLease('jobs/rotation', 'p1', 10_000, now + 15_001), true);
    });

    it('waiting for the other writer does not block the event loop, and gives up with SQLITE_BUSY after busyTimeoutMs', T, async () => {
      const impatient = SqliteStorage.open(file, { busyTimeoutMs: 200 });
      try {
        let release!: () => void;
        const open = new Promise<void>((resolve) => { release = resolve; });
        let finish!: () => void;
        const hold = new Promise<void>((resolve) => { finish = resolve; });
        const tx = p1.transaction(async (t) => {
          await t.put('busy/k', b('p1'));
          release();
          await hold;
        });
        await open;
        let timerFired = false;
        const timer = setTimeout(() => { timerFired = true; }, 20);
        const started = Date.now();
        await assert.rejects(impatient.transaction(async (t) => t.put('busy/k', b('late'))), (e: Error & { code?: string }) => {
          assert.match(String(e.code), /^SQLITE_BUSY/);
          return true;
        });
        await assert.rejects(impatient.put('busy/other', b('late')), /write lock/);
        const waited = Date.now() - started;
        clearTimeout(timer);
        assert.ok(timerFired, 'the event loop kept running while waiting for the lock');
        assert.ok(waited >= 150, `gave up after ${waited} ms`);
        assert.equal(await impatient.get('busy/k'), undefined); // reads never wait
        finish();
        await tx;
        await impatient.put('busy/other', b('now'));
        assert.deepEqual(await p2.get('busy/k'), b('p1'));
        assert.deepEqual(await p2.get('busy/other'), b('now'));
      } finally {
        await impatient.close();
      }
    });
  });
});
