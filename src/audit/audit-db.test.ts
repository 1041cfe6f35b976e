import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AuditDb, fieldsOf, type LookupQuery } from './audit-db.js';
import type { AuditEvent } from './event.js';

const ACCOUNTS = ['111122223333', '444455556666'];
const KEYS = ACCOUNTS.flatMap((a) => [1, 2].map((i) => `arn:aws:kms:us-east-1:${a}:key/0000000${i}-12ab-34cd-56ef-1234567890ab`));
const T0 = Date.parse('2026-11-30T10:00:00Z');

/** Varied events: accounts, users, roots, failed authentications without a principal, aliases, times a little out of order. */
function events(n: number, offset = 0): string[] {
  return Array.from({ length: n }, (_, j) => {
    const i = j + offset;
    const account = ACCOUNTS[i % 2]!;
    const user = ['alice', 'bob', 'carol'][i % 3]!;
    const root = i % 7 === 0;
    const anonymous = i % 11 === 0;
    const e: AuditEvent = {
      eventId: randomUUID(),
      // Minutes apart, every fifth event a little in the past (as commits of concurrent calls are).
      eventTime: new Date(T0 + i * 20_000 - (i % 5 === 0 ? 70_000 : 0)).toISOString(),
      eventName: ['Encrypt', 'Decrypt', 'CreateKey', 'ListKeys'][i % 4]!,
      eventSource: i % 9 === 0 ? 'iam.amazonaws.com' : 'kms.amazonaws.com',
      awsRegion: i % 6 === 0 ? 'eu-west-1' : 'us-east-1',
      requestId: randomUUID(), sourceIPAddress: '127.0.0.1', userAgent: 'unit', readOnly: i % 4 === 3,
      ...(anonymous ? {} : {
        principal: root
          ? { type: 'Root', arn: `arn:aws:iam::${account}:root`, accountId: account, accessKeyId: `AKIAROOT${account}`, isRoot: true }
          : { type: 'IAMUser', arn: `arn:aws:iam::${account}:user/${user}`, accountId: account, accessKeyId: `AKIA${user.toUpperCase()}`, userName: user, isRoot: false },
      }),
      accessKeyId: root ? `AKIAROOT${account}` : `AKIA${user.toUpperCase()}`,
      resources: i % 4 === 3 ? [] : [{ arn: KEYS[i % KEYS.length]! }, ...(i % 8 === 1 ? [{ arn: `arn:aws:kms:us-east-1:${account}:alias/app:key/x` }] : [])],
      ...(i % 10 === 4 ? { errorCode: 'AccessDeniedException' } : {}),
    };
    return JSON.stringify(e);
  });
}

/** What a query must answer, computed from the bodies alone. */
function expected(all: { seq: number; body: string }[], q: LookupQuery): number[] {
  return all.filter(({ seq, body }) => {
    const f = fieldsOf(body);
    if (!(f.accountId === q.accountId || f.accountId === null) || !(f.region === q.region || f.region === '')) return false;
    if (q.startMs !== undefined && !(f.timeMs >= q.startMs)) return false;
    if (q.endMs !== undefined && !(f.timeMs <= q.endMs)) return false;
    if (q.beforeSeq !== undefined && !(seq < q.beforeSeq)) return false;
    if (q.eventNames && !q.eventNames.includes(f.eventName)) return false;
    if (q.succeededOnly && f.errorCode !== null) return false;
    const a = q.attribute;
    if (a) {
      const v = a.value;
      const ok = {
        EventId: f.eventId === v, EventName: f.eventName === v, Username: f.username === v, AccessKeyId: f.accessKeyId === v,
        EventSource: f.eventSource === v, ReadOnly: f.readOnly === (v === 'true'),
        ResourceName: f.resources.some((r) => r.name === v), ResourceType: f.resources.some((r) => r.type === v),
      }[a.key];
      if (!ok) return false;
    }
    return true;
  }).map((r) => r.seq).reverse().slice(0, q.limit);
}

function queries(all: { seq: number; body: string }[]): LookupQuery[] {
  const some = fieldsOf(all[17]!.body);
  const attrs = [
    undefined,
    { key: 'EventId', value: some.eventId }, { key: 'EventName', value: 'Decrypt' }, { key: 'Username', value: 'bob' },
    { key: 'Username', value: 'root' }, { key: 'AccessKeyId', value: 'AKIACAROL' }, { key: 'EventSource', value: 'iam.amazonaws.com' },
    { key: 'ReadOnly', value: 'true' }, { key: 'ResourceName', value: KEYS[1]! }, { key: 'ResourceName', value: KEYS[2]!.split('/')[1]! },
    { key: 'ResourceType', value: 'AWS::KMS::Key' }, { key: 'ResourceType', value: 'AWS::KMS::Alias' }, { key: 'ResourceName', value: 'nothing' },
  ];
  const out: LookupQuery[] = [];
  for (const attribute of attrs) {
    for (const accountId of ACCOUNTS) {
      out.push({ accountId, region: 'us-east-1', attribute, limit: 1000 });
      out.push({ accountId, region: 'us-east-1', attribute, limit: 7, beforeSeq: 150 });
      out.push({ accountId, region: 'eu-west-1', attribute, limit: 50, startMs: T0 + 600_000, endMs: T0 + 1_800_000 });
      out.push({ accountId, region: 'us-east-1', attribute, limit: 50, startMs: T0 + 3_000_000 });
      out.push({ accountId, region: 'us-east-1', attribute, limit: 50, endMs: T0 + 59_999 });
      out.push({ accountId, region: 'us-east-1', attribute, limit: 50, eventNames: ['Encrypt', 'Decrypt'], succeededOnly: true });
    }
  }
  return out;
}

function checkAll(db: AuditDb): void {
  const all = db.eventsAfter(0, 100_000);
  for (const q of queries(all)) {
    assert.deepEqual(db.lookup(q).map((r) => r.seq), expected(all, q), JSON.stringify(q));
  }
  // Last use: per principal and KMS key (alias ARNs are not keys), successful key use only.
  for (const accountId of ACCOUNTS) {
    const names = ['Encrypt', 'Decrypt'];
    const want = new Map<string, { last: number; count: number }>();
    for (const { seq, body } of all) {
      const f = fieldsOf(body);
      const p = (JSON.parse(body) as AuditEvent).principal;
      if (f.accountId !== accountId || f.region !== 'us-east-1' || f.errorCode !== null || !names.includes(f.eventName) || !p) continue;
      for (const r of f.resources) {
        if (r.type !== 'AWS::KMS::Key' || !r.name.startsWith('arn:')) continue;
        const k = `${p.arn} ${r.name}`;
        want.set(k, { last: seq, count: (want.get(k)?.count ?? 0) + 1 });
      }
    }
    const got = db.lastUse({ accountId, region: 'us-east-1', eventNames: names, limit: 100 });
    assert.deepEqual(
      new Map(got.map((r) => [`${r.principalArn} ${r.keyArn}`, r.count])),
      new Map([...want].map(([k, v]) => [k, v.count])),
    );
    assert.deepEqual(got.map((r) => r.eventId), [...want.values()].sort((a, b) => b.last - a.last).map((v) => fieldsOf(all.find((x) => x.seq === v.last)!.body).eventId));
    const one = db.lastUse({ accountId, region: 'us-east-1', eventNames: names, limit: 100, keyArn: KEYS[accountId === ACCOUNTS[0] ? 0 : 1]! });
    assert.ok(one.length > 0 && one.every((r) => r.keyArn === KEYS[accountId === ACCOUNTS[0] ? 0 : 1]));
  }
  assert.equal(db.accessKeySeenBefore('AKIABOB'), true);
  assert.equal(db.accessKeySeenBefore('AKIANOBODY'), false);
  assert.equal(db.accessKeyOwner('AKIACAROL')?.principalArn.endsWith(':user/carol'), true);
  // Retention's "first event at or after" (times are not in seq order).
  for (const t of [T0 - 1, T0 + 600_000, T0 + 600_001, T0 + 10_000_000]) {
    const want = all.filter((r) => fieldsOf(r.body).timeMs >= t).map((r) => r.seq);
    assert.equal(db.firstSeqAtOrAfter(t), want.length ? Math.min(...want) : undefined, `first at or after ${t}`);
  }
}

describe('audit database: lookups through the index built after the commits', () => {
  it('answers as the events say, whether the index is behind, partly built, or caught up', () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-db-'));
    try {
      const db = AuditDb.open(join(dir, 'audit.db'));
      for (let i = 0; i < 10; i++) db.append(events(24, i * 24));
      // Nothing indexed yet: the first query catches up.
      checkAll(db);
      for (let i = 10; i < 14; i++) db.append(events(24, i * 24));
      assert.equal(db.indexPending(30), 30);
      checkAll(db);
      assert.equal(db.indexPending(), 0, 'the queries indexed the rest');
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('moves a schema-1 file (indexes kept in the commit) to the index built after it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-db-'));
    try {
      const file = join(dir, 'audit.db');
      const db = AuditDb.open(file);
      db.append(events(100));
      db.close();
      // Make it look as schema 1 left it.
      const raw = new Database(file);
      raw.exec(`DROP TABLE event_keys; DROP TABLE event_minutes; DELETE FROM meta WHERE key = 'index_seq';
        CREATE INDEX events_name ON events (event_name, seq); CREATE INDEX events_id ON events (event_id);
        CREATE TABLE event_resources (name TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, PRIMARY KEY (name, seq)) WITHOUT ROWID;`);
      raw.close();
      const again = AuditDb.open(file);
      const names = (again.db.prepare("SELECT name FROM sqlite_master WHERE type IN ('index', 'table')").pluck().all() as string[]);
      assert.ok(!names.includes('events_name') && !names.includes('events_id') && !names.includes('event_resources'), names.join(','));
      again.append(events(30, 100));
      checkAll(again);
      again.close();
      // Read-only (offline export): time ranges still right, with the index or without.
      const ro = AuditDb.open(file, { readonly: true });
      const all = ro.eventsAfter(0, 1000);
      const range = ro.seqRangeForTime(T0 + 600_000, T0 + 1_200_000, 'seq');
      const inRange = all.filter((r) => { const t = fieldsOf(r.body).timeMs; return t >= T0 + 600_000 && t <= T0 + 1_200_000; }).map((r) => r.seq);
      const got = ro.db.prepare(`SELECT seq FROM events WHERE time_ms >= ? AND time_ms <= ? AND ${range!.sql} ORDER BY seq`).pluck().all(T0 + 600_000, T0 + 1_200_000, ...range!.args);
      assert.deepEqual(got, inRange);
      ro.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('audit database: the parsed events the writer keeps for the profile detectors', () => {
  it('gives exactly the stored events after a position, and nothing when another writer or a gap is in between', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-auditdb-'));
    try {
      const file = join(dir, 'audit.db');
      const adb = AuditDb.open(file);
      const stored = (from: number, limit: number) =>
        (adb.db.prepare('SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT ?').all(from, limit) as { body: string }[]).map((r) => JSON.parse(r.body) as unknown);
      const lines = (bodies: string[], start: number) => {
        let end = start;
        return bodies.map((body) => ({ body, end: (end += body.length + 1) }));
      };
      const a = events(30);
      let end = adb.ingest('j1', lines(a, 0));
      assert.deepEqual(adb.recentParsed(0, 1000), { events: stored(0, 1000), lastSeq: 30 });
      assert.deepEqual(adb.recentParsed(10, 5), { events: stored(10, 5), lastSeq: 15 });
      const b = events(20, 30);
      end = adb.ingest('j1', lines(b, end));
      assert.deepEqual(adb.recentParsed(15, 1000), { events: stored(15, 1000), lastSeq: 50 });
      assert.equal(adb.recentParsed(50, 1000), undefined, 'nothing after the head');
      // Another process's events after ours: read from the database instead.
      adb.ingest('j1', lines(events(5, 50), end));
      const other = AuditDb.open(file);
      other.append(events(3, 55));
      other.close();
      assert.equal(adb.recentParsed(50, 1000), undefined);
      assert.equal(stored(50, 1000).length, 8);
      // More than it keeps at once: the newest are kept; what is before them is read from the database.
      const many = events(5000, 58);
      adb.ingest('j2', lines(many, 0));
      assert.equal(adb.recentParsed(58, 100), undefined);
      const kept = 58 + 5000 - 4096;
      assert.deepEqual(adb.recentParsed(kept, 100), { events: stored(kept, 100), lastSeq: kept + 100 });
      adb.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('audit database: alerts', () => {
  it('stores and queues an alert once, when it is added again (a request repeated after the writer thread exited)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-auditdb-'));
    const db = AuditDb.open(join(dir, 'audit.db'));
    try {
      const alert = { alertId: randomUUID(), timeMs: T0, accountId: ACCOUNTS[0]!, body: '{}' };
      const hooks = ['https://a.example/hook', 'https://b.example/hook'];
      db.addAlerts([alert], hooks, T0);
      db.addAlerts([alert], hooks, T0);
      assert.equal(db.listAlerts({ accountId: ACCOUNTS[0]!, includeAcknowledged: true, limit: 10 }).length, 1);
      // One row per server webhook and one account placeholder, not twice that.
      assert.deepEqual(db.claimDeliveries(T0, 60_000, 100).map((r) => r.url).sort(), [...hooks, `account-webhooks:${ACCOUNTS[0]}`].sort());
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
