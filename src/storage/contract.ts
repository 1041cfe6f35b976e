/**
 * The Storage contract, as a node:test suite every engine runs (memory, SQLite, PostgreSQL).
 * Test names state the rule they check. Each test works under its own key prefix, so the tests
 * share one store per engine and do not depend on each other's leftovers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_KEY_LENGTH, type Storage, type StorageEntry, type StorageWriter } from './storage.js';

export interface StorageFixture {
  storage: Storage;
  cleanup(): Promise<void>;
}

const b = (s: string) => Buffer.from(s, 'utf8');
const keysOf = (entries: StorageEntry[]) => entries.map((e) => e.key);
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A test that hangs (a deadlock is the typical failure here) fails instead of stalling the run. */
const T = { timeout: 20_000 };

export function storageContract(name: string, make: () => Promise<StorageFixture>): void {
  describe(`Storage contract: ${name}`, () => {
    let fx: StorageFixture;
    let s: Storage;

    before(async () => {
      fx = await make();
      s = fx.storage;
    });
    after(async () => {
      await fx.cleanup();
    });

    async function putAll(prefix: string, keys: string[]): Promise<void> {
      for (const k of keys) await s.put(prefix + k, b(k));
    }

    // ---- single operations ----

    it('get of a missing key resolves to undefined', T, async () => {
      assert.equal(await s.get('basic/missing'), undefined);
    });

    it('put stores a value, a second put overwrites it, delete removes it and says whether it did', T, async () => {
      await s.put('basic/k', b('one'));
      assert.deepEqual(await s.get('basic/k'), b('one'));
      await s.put('basic/k', b('two'));
      assert.deepEqual(await s.get('basic/k'), b('two'));
      assert.equal(await s.delete('basic/k'), true);
      assert.equal(await s.get('basic/k'), undefined);
      assert.equal(await s.delete('basic/k'), false);
    });

    it('getCached answers what get answers, and sees writes and transactions through the same store at once', T, async () => {
      assert.equal(await s.getCached('cached/a'), undefined);
      await s.put('cached/a', b('1'));
      assert.deepEqual(await s.getCached('cached/a'), b('1'));
      await s.transaction(async (tx) => {
        await tx.put('cached/a', b('2'));
        await tx.put('cached/b', b('B'));
      });
      assert.deepEqual(await s.getCached('cached/a'), b('2'));
      assert.deepEqual(await s.getCached('cached/b'), b('B'));
      await s.delete('cached/a');
      assert.equal(await s.getCached('cached/a'), undefined);
      assert.equal(await s.putIfAbsent('cached/a', b('3')), true);
      assert.deepEqual(await s.getCached('cached/a'), await s.get('cached/a'));
      // A transaction that fails leaves the cached view as it was.
      await assert.rejects(s.transaction(async (tx) => {
        await tx.put('cached/a', b('never'));
        throw new Error('abort');
      }));
      assert.deepEqual(await s.getCached('cached/a'), b('3'));
      assert.ok(Number.isSafeInteger(s.cachedReadStalenessMs) && s.cachedReadStalenessMs >= 0);
    });

    it('getCached during an open transaction waits for it and never sees its uncommitted writes', T, async () => {
      await s.put('cached-iso/k', b('before'));
      let release!: () => void;
      const hold = new Promise<void>((r) => (release = r));
      const txDone = s.transaction(async (tx) => {
        await tx.put('cached-iso/k', b('inside'));
        await hold;
        throw new Error('roll back');
      });
      await tick();
      const read = s.getCached('cached-iso/k');
      release();
      await assert.rejects(txDone);
      assert.deepEqual(await read, b('before'));
    });

    it('putIfAbsent writes only when the key has no value, and keeps an existing value', T, async () => {
      assert.equal(await s.putIfAbsent('pia/k', b('first')), true);
      assert.equal(await s.putIfAbsent('pia/k', b('second')), false);
      assert.deepEqual(await s.get('pia/k'), b('first'));
      await s.delete('pia/k');
      assert.equal(await s.putIfAbsent('pia/k', b('third')), true);
      assert.deepEqual(await s.get('pia/k'), b('third'));
    });

    it(`keys must be 1 to ${MAX_KEY_LENGTH} characters of well-formed text, values Buffers (plain Error otherwise)`, T, async () => {
      const longest = 'len/' + 'x'.repeat(MAX_KEY_LENGTH - 4);
      await s.put(longest, b('ok'));
      assert.deepEqual(await s.get(longest), b('ok'));
      for (const bad of ['', longest + 'x', 'len/\ud800']) {
        await assert.rejects(s.get(bad), Error);
        await assert.rejects(s.put(bad, b('v')), Error);
        await assert.rejects(s.putIfAbsent(bad, b('v')), Error);
        await assert.rejects(s.delete(bad), Error);
      }
      await assert.rejects(s.put('len/v', 'text' as unknown as Buffer), Error);
      await assert.rejects(s.list('len/', { limit: -1 }), Error);
      await assert.rejects(s.list('len/', { limit: 1.5 }), Error);
    });

    // ---- listing ----

    it('list returns the entries under a prefix in ascending key order, with their values', T, async () => {
      await putAll('order/', ['c', 'a', 'b/2', 'b', 'b/1']);
      const got = await s.list('order/');
      assert.deepEqual(keysOf(got), ['order/a', 'order/b', 'order/b/1', 'order/b/2', 'order/c']);
      assert.deepEqual(got[1], { key: 'order/b', value: b('b') });
    });

    it("prefix 'a/' matches the key 'a/' itself and keys below it, never 'a', 'a0' or 'a.'", T, async () => {
      for (const k of ['pb/a', 'pb/a0', 'pb/a.', 'pb/a/', 'pb/a/x', 'pb/a//y', 'pb/b/']) await s.put(k, b(k));
      assert.deepEqual(keysOf(await s.list('pb/a/')), ['pb/a/', 'pb/a//y', 'pb/a/x']);
      assert.equal(await s.count('pb/a/'), 3);
      assert.deepEqual(keysOf(await s.list('pb/a/', { reverse: true })), ['pb/a/x', 'pb/a//y', 'pb/a/']);
      assert.deepEqual(keysOf(await s.list('pb/nothing/')), []);
    });

    it('keys are ordered by code point (UTF-8 byte order), not by UTF-16 code unit', T, async () => {
      // U+E000 < U+1F600 as code points, but its UTF-16 unit 0xE000 > the surrogate 0xD83D.
      await putAll('cp/', ['\u{1F600}', '\uE000', 'z', '\u00e9']);
      assert.deepEqual(keysOf(await s.list('cp/')), ['cp/z', 'cp/\u00e9', 'cp/\uE000', 'cp/\u{1F600}']);
      assert.deepEqual(keysOf(await s.list('cp/', { after: 'cp/\uE000' })), ['cp/\u{1F600}']);
      // A prefix ending in the last code point has no simple successor.
      await putAll('cp/\u{10FFFF}', ['', 'x', '\u{10FFFF}']);
      await s.put('cq', b('outside'));
      assert.deepEqual(keysOf(await s.list('cp/\u{10FFFF}')), ['cp/\u{10FFFF}', 'cp/\u{10FFFF}x', 'cp/\u{10FFFF}\u{10FFFF}']);
      assert.equal(await s.count('cp/\u{10FFFF}'), 3);
    });

    it('after is an exclusive start key; it need not exist nor lie inside the prefix', T, async () => {
      await putAll('aft/', ['a', 'b', 'c', 'd']);
      assert.deepEqual(keysOf(await s.list('aft/', { after: 'aft/b' })), ['aft/c', 'aft/d']);
      assert.deepEqual(keysOf(await s.list('aft/', { after: 'aft/bb' })), ['aft/c', 'aft/d']);
      assert.deepEqual(keysOf(await s.list('aft/', { after: 'aft/d' })), []);
      assert.deepEqual(keysOf(await s.list('aft/', { after: 'aa' })), ['aft/a', 'aft/b', 'aft/c', 'aft/d']);
      assert.deepEqual(keysOf(await s.list('aft/', { after: 'aft0' })), []);
      assert.deepEqual(keysOf(await s.list('aft/', { after: '' })), ['aft/a', 'aft/b', 'aft/c', 'aft/d']);
    });

    it('limit caps the result, and limit with after pages through every entry once', T, async () => {
      const names = Array.from({ length: 23 }, (_, i) => String(i).padStart(2, '0'));
      await putAll('page/', names);
      assert.deepEqual(keysOf(await s.list('page/', { limit: 3 })), ['page/00', 'page/01', 'page/02']);
      assert.deepEqual(await s.list('page/', { limit: 0 }), []);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const chunk = await s.list('page/', { after: cursor, limit: 5 });
        if (chunk.length === 0) break;
        seen.push(...keysOf(chunk));
        cursor = chunk[chunk.length - 1]!.key;
      }
      assert.deepEqual(seen, names.map((n) => 'page/' + n));
    });

    it('reverse lists in descending order; after is then an exclusive end key', T, async () => {
      await putAll('rev/', ['a', 'b', 'c', 'd']);
      assert.deepEqual(keysOf(await s.list('rev/', { reverse: true })), ['rev/d', 'rev/c', 'rev/b', 'rev/a']);
      assert.deepEqual(keysOf(await s.list('rev/', { reverse: true, limit: 2 })), ['rev/d', 'rev/c']);
      assert.deepEqual(keysOf(await s.list('rev/', { reverse: true, after: 'rev/c' })), ['rev/b', 'rev/a']);
      assert.deepEqual(keysOf(await s.list('rev/', { reverse: true, after: 'rev/bz', limit: 1 })), ['rev/b']);
      assert.deepEqual(keysOf(await s.list('rev/', { reverse: true, after: 'rev0' })), ['rev/d', 'rev/c', 'rev/b', 'rev/a']);
      assert.deepEqual(keysOf(await s.list('rev/', { reverse: true, after: 'rev/a' })), []);
      assert.deepEqual(keysOf(await s.list('rev/', { reverse: true, after: 'rev' })), []);
    });

    it('count counts the keys under a prefix', T, async () => {
      await putAll('cnt/', ['x', 'y', 'z/1']);
      await s.put('cnt0', b('not under cnt/'));
      assert.equal(await s.count('cnt/'), 3);
      assert.equal(await s.count('cnt/z/'), 1);
      assert.equal(await s.count('cnt/none'), 0);
      assert.ok((await s.count('')) >= 4);
    });

    // ---- values ----

    it('binary values round-trip byte for byte, including empty, every byte value, large, and views', T, async () => {
      const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const large = Buffer.alloc(1 << 20);
      for (let i = 0; i < large.length; i++) large[i] = (i * 7919 + (i >>> 8)) & 0xff;
      const backing = Buffer.from('0123456789');
      const view = backing.subarray(3, 6);
      const cases: Array<[string, Buffer]> = [['bin/empty', Buffer.alloc(0)], ['bin/every', every], ['bin/large', large], ['bin/view', view]];
      for (const [k, v] of cases) await s.put(k, v);
      for (const [k, v] of cases) {
        const got = await s.get(k);
        assert.ok(Buffer.isBuffer(got), k);
        assert.equal(got.length, v.length, k);
        assert.ok(got.equals(v), k);
      }
      assert.deepEqual(await s.get('bin/view'), b('345'));
      const listed = await s.list('bin/');
      assert.ok(listed.find((e) => e.key === 'bin/every')!.value.equals(every));
      assert.equal(listed.find((e) => e.key === 'bin/empty')!.value.length, 0);
    });

    it('buffers handed back are copies the caller may change; buffers passed in may be reused after the call', T, async () => {
      const input = b('original');
      await s.put('copy/k', input);
      input.fill(0);
      const first = (await s.get('copy/k'))!;
      assert.deepEqual(first, b('original'));
      first.fill(1);
      (await s.list('copy/'))[0]!.value.fill(2);
      assert.deepEqual(await s.get('copy/k'), b('original'));
      await s.transaction(async (tx) => {
        const inTx = b('in tx');
        await tx.put('copy/t', inTx);
        inTx.fill(0);
        (await tx.get('copy/t'))!.fill(3);
        (await tx.list('copy/'))[1]!.value.fill(4);
        assert.deepEqual(await tx.get('copy/t'), b('in tx'));
      });
      assert.deepEqual(await s.get('copy/t'), b('in tx'));
    });

    // ---- transactions ----

    it('a transaction commits all its writes and resolves to what fn returned', T, async () => {
      await s.put('txc/gone', b('x'));
      const r = await s.transaction(async (tx) => {
        await tx.put('txc/a', b('1'));
        await tick();
        await tx.put('txc/b', b('2'));
        await tx.delete('txc/gone');
        return 'result';
      });
      assert.equal(r, 'result');
      assert.deepEqual(keysOf(await s.list('txc/')), ['txc/a', 'txc/b']);
    });

    it('a transaction whose fn throws keeps nothing it wrote and rejects with that same error', T, async () => {
      await s.put('txr/existing', b('old'));
      await s.put('txr/doomed', b('still here'));
      const boom = new Error('boom');
      await assert.rejects(
        s.transaction(async (tx) => {
          await tx.put('txr/new', b('n'));
          await tx.put('txr/existing', b('new'));
          assert.equal(await tx.delete('txr/doomed'), true);
          assert.equal(await tx.putIfAbsent('txr/pia', b('p')), true);
          await tick();
          throw boom;
        }),
        (e) => e === boom,
      );
      assert.equal(await s.get('txr/new'), undefined);
      assert.equal(await s.get('txr/pia'), undefined);
      assert.deepEqual(await s.get('txr/existing'), b('old'));
      assert.deepEqual(await s.get('txr/doomed'), b('still here'));
      // The store is usable afterwards.
      await s.transaction(async (tx) => tx.put('txr/after', b('a')));
      assert.deepEqual(await s.get('txr/after'), b('a'));
    });

    it('inside a transaction, reads see its own writes and deletes (get, list, count, putIfAbsent, delete)', T, async () => {
      await putAll('ryow/', ['a', 'c', 'e']);
      await s.transaction(async (tx) => {
        await tx.put('ryow/b', b('B'));
        await tx.put('ryow/c', b('C2'));
        assert.equal(await tx.delete('ryow/e'), true);
        assert.equal(await tx.delete('ryow/e'), false);
        await tx.put('ryow/f', b('F'));
        assert.equal(await tx.delete('ryow/f'), true);
        await tx.put('ryow/g', b('G'));
        assert.deepEqual(await tx.get('ryow/b'), b('B'));
        assert.deepEqual(await tx.get('ryow/c'), b('C2'));
        assert.equal(await tx.get('ryow/e'), undefined);
        assert.equal(await tx.putIfAbsent('ryow/b', b('x')), false);
        assert.equal(await tx.putIfAbsent('ryow/e', b('E2')), true);
        const all = await tx.list('ryow/');
        assert.deepEqual(keysOf(all), ['ryow/a', 'ryow/b', 'ryow/c', 'ryow/e', 'ryow/g']);
        assert.deepEqual(all.map((e) => e.value.toString()), ['a', 'B', 'C2', 'E2', 'G']);
        assert.deepEqual(keysOf(await tx.list('ryow/', { reverse: true, limit: 3 })), ['ryow/g', 'ryow/e', 'ryow/c']);
        assert.deepEqual(keysOf(await tx.list('ryow/', { after: 'ryow/b', limit: 2 })), ['ryow/c', 'ryow/e']);
        assert.equal(await tx.count('ryow/'), 5);
        // Not yet visible outside: checked after commit below, and in the isolation tests.
      });
      assert.deepEqual(keysOf(await s.list('ryow/')), ['ryow/a', 'ryow/b', 'ryow/c', 'ryow/e', 'ryow/g']);
      assert.deepEqual(await s.get('ryow/e'), b('E2'));
    });

    it('isolation: a read outside a running transaction never sees its uncommitted writes', T, async () => {
      await s.put('iso/k', b('committed'));
      let txOver = false;
      let seenDuringTx: Buffer | undefined | 'not yet' = 'not yet';
      let release!: () => void;
      const written = new Promise<void>((resolve) => { release = resolve; });
      const txDone = s.transaction(async (tx) => {
        await tx.put('iso/k', b('uncommitted'));
        await tx.put('iso/new', b('uncommitted'));
        release();
        await sleep(30);
        await tick();
        throw new Error('roll back');
      }).catch(() => { txOver = true; });
      await written;
      const outside = Promise.all([s.get('iso/k'), s.list('iso/'), s.count('iso/')]).then((r) => {
        if (!txOver) seenDuringTx = r[0];
        return r;
      });
      const [v, listed, n] = await outside;
      await txDone;
      assert.deepEqual(v, b('committed'));
      assert.deepEqual(keysOf(listed), ['iso/k']);
      assert.equal(n, 1);
      // An engine may answer during the transaction (snapshot) or after it (waiting); never in between.
      assert.ok(seenDuringTx === 'not yet' || b('committed').equals(seenDuringTx as Buffer));
    });

    it('isolation: one-off writes issued during a transaction are not part of it and survive its rollback', T, async () => {
      let release!: () => void;
      const started = new Promise<void>((resolve) => { release = resolve; });
      const txDone = s.transaction(async (tx) => {
        await tx.put('iso2/in-tx', b('x'));
        release();
        await sleep(20);
        throw new Error('roll back');
      });
      await started;
      const outside = s.put('iso2/outside', b('kept'));
      await assert.rejects(txDone, /roll back/);
      await outside;
      assert.deepEqual(await s.get('iso2/outside'), b('kept'));
      assert.equal(await s.get('iso2/in-tx'), undefined);
    });

    it('isolation: 50 concurrent transactions incrementing one counter end at exactly 50', T, async () => {
      const increment = (tx: StorageWriter) => async () => {
        const cur = await tx.get('ctr/n');
        await tick(); // give every other transaction a chance to interleave
        await tx.put('ctr/n', b(String(Number(cur?.toString() ?? '0') + 1)));
      };
      await Promise.all(Array.from({ length: 50 }, () => s.transaction((tx) => increment(tx)())));
      assert.equal((await s.get('ctr/n'))!.toString(), '50');
    });

    it('a nested transaction call rejects, and the outer transaction can still commit', T, async () => {
      const r = await s.transaction(async (tx) => {
        await tx.put('nest/outer', b('o'));
        await assert.rejects(s.transaction(async (inner) => inner.put('nest/inner', b('i'))), Error);
        return 'outer done';
      });
      assert.equal(r, 'outer done');
      assert.deepEqual(await s.get('nest/outer'), b('o'));
      assert.equal(await s.get('nest/inner'), undefined);
    });

    it("inside a transaction, calling the store itself instead of tx rejects (it cannot deadlock or escape the transaction)", T, async () => {
      await s.transaction(async (tx) => {
        await tx.put('self/k', b('v'));
        await assert.rejects(s.get('self/k'), Error);
        await assert.rejects(s.put('self/other', b('v')), Error);
        await assert.rejects(s.list('self/'), Error);
      });
      assert.deepEqual(await s.get('self/k'), b('v'));
      assert.equal(await s.get('self/other'), undefined);
    });

    it('a transaction handle cannot be used after its transaction settled', T, async () => {
      let kept!: StorageWriter;
      await s.transaction(async (tx) => { kept = tx; });
      await assert.rejects(kept.get('late/k'), Error);
      await assert.rejects(kept.put('late/k', b('v')), Error);
      assert.equal(await s.get('late/k'), undefined);
    });

    // ---- leases ----

    it('leases: acquire, renew by the holder, refuse others until expiry, take over after, release', T, async () => {
      const t0 = 1_800_000_000_000;
      assert.equal(await s.tryAcquireLease('job/a', 'node-1', 1000, t0), true);
      assert.equal(await s.tryAcquireLease('job/a', 'node-2', 1000, t0 + 500), false);
      assert.equal(await s.tryAcquireLease('job/a', 'node-1', 1000, t0 + 900), true); // renewed to t0 + 1900
      assert.equal(await s.tryAcquireLease('job/a', 'node-2', 1000, t0 + 1500), false);
      assert.equal(await s.tryAcquireLease('job/b', 'node-2', 1000, t0 + 1500), true); // names are independent
      assert.equal(await s.tryAcquireLease('job/a', 'node-2', 1000, t0 + 1900), true); // expired: taken over
      assert.equal(await s.tryAcquireLease('job/a', 'node-1', 1000, t0 + 1950), false);
      await s.releaseLease('job/a', 'node-1'); // not the holder: no effect
      assert.equal(await s.tryAcquireLease('job/a', 'node-3', 1000, t0 + 2000), false);
      await s.releaseLease('job/a', 'node-2');
      assert.equal(await s.tryAcquireLease('job/a', 'node-3', 1000, t0 + 2000), true);
      await s.releaseLease('job/never-taken', 'node-1');
      assert.equal(await s.get('job/a'), undefined); // leases are not entries
    });

    it('concurrent lease attempts by many owners: exactly one wins', T, async () => {
      const now = 1_800_000_000_000;
      const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => s.tryAcquireLease('race', `n${i}`, 5000, now)));
      assert.equal(wins.filter(Boolean).length, 1);
    });

    // ---- lifecycle ----

    it('close waits for a running transaction, is idempotent, and later calls reject', T, async () => {
      const other = await make();
      try {
        const st = other.storage;
        let release!: () => void;
        const inTx = new Promise<void>((resolve) => { release = resolve; });
        const tx = st.transaction(async (t) => {
          release();
          await sleep(10);
          await t.put('life/k', b('v'));
          return 'committed';
        });
        await inTx;
        const closing = st.close();
        assert.equal(await tx, 'committed');
        await closing;
        await st.close();
        await assert.rejects(st.get('life/k'), Error);
        await assert.rejects(st.put('life/k', b('v')), Error);
        await assert.rejects(st.transaction(async () => 1), Error);
      } finally {
        await other.cleanup();
      }
    });
  });
}
