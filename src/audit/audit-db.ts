/**
 * The durable, hash-chained audit log: one SQLite file (DATA_DIR/audit/audit.db), apart from the
 * key store, so that a full audit disk or a copied key database does not take the other along.
 *
 * Each event row holds the event JSON exactly as it was hashed and the chain link:
 *   hash(seq) = SHA-256("keyhold-audit/v1\n" || seq || "\n" || hash(seq-1) || "\n" || body)
 * (hex, decimal seq; hash(0) is 64 zeros). The sequence number is inside the hash, so moving an
 * event to another position breaks the chain as much as changing it does. Appends run in
 * BEGIN IMMEDIATE transactions: SQLite's write lock serializes every writer process sharing the
 * file, so several server processes extend one chain. synchronous=FULL: a commit is on disk
 * (the WAL is fsynced) before it returns; callers batch many events into one commit. The writer
 * thread moves events in from the intake journals with ingest() instead (intake.ts): the journal
 * holds them durably, so those commits do not wait for the disk.
 *
 * The commit writes the event rows only (their primary key grows at the end). What the queries
 * look events up by (LookupEvents' attributes, resources, time) is indexed after the commit, in
 * larger batches and without an fsync of its own (indexPending): `event_keys` (one row per
 * attribute value and event) and `event_minutes` (the sequence numbers each minute of event time
 * spans). A watermark (meta `index_seq`) says how far that went, and every query first indexes
 * what is missing, so answers are the same as with indexes kept in the commit. The index is
 * derived data: lost in a power cut together with the watermark (WAL keeps transactions whole),
 * it is rebuilt from the events, and `keyhold audit verify` never reads it.
 *
 * Used by the writer thread (audit-writer.ts), by offline tools (`keyhold audit verify
 * --data-dir`) and by tests; never on the request thread.
 */
import Database from 'better-sqlite3';
import { hash } from 'node:crypto';
import { closeSync, fdatasyncSync, fstatSync, openSync, statSync } from 'node:fs';
import { watermarkKey } from './intake.js';

export const AUDIT_SCHEMA_VERSION = 1;
export const GENESIS_HASH = '0'.repeat(64);
const HASH_DOMAIN = 'keyhold-audit/v1\n';

/** The outbox placeholder for "this account's webhooks" (resolved at delivery). */
export const ACCOUNT_WEBHOOKS_PREFIX = 'account-webhooks:';

/** A due outbox row: the URL (or an account placeholder), the webhook id for account webhooks, the alert. */
export interface OutboxRow {
  id: number;
  url: string;
  attempts: number;
  body: string;
  accountId: string | null;
  webhookId: string | null;
}

export function eventHash(seq: number, prevHash: string, body: string): string {
  // One-shot: the same bytes as hashing the parts in turn, without a Hash object per event.
  return hash('sha256', HASH_DOMAIN + seq + '\n' + prevHash + '\n' + body, 'hex');
}

/** Columns extracted from an event for lookups (LookupEvents' attributes). */
export interface IndexedFields {
  eventId: string;
  timeMs: number;
  eventName: string;
  eventSource: string;
  username: string | null;
  accessKeyId: string | null;
  readOnly: boolean;
  errorCode: string | null;
  /** The caller's account and region: LookupEvents answers each account and region with its own events. */
  accountId: string | null;
  region: string;
  resources: { name: string; type: string }[];
}

/** One LookupEvents query (attribute names as CloudTrail's LookupAttributeKey). */
export interface LookupQuery {
  accountId: string;
  region: string;
  attribute?: { key: string; value: string };
  startMs?: number;
  endMs?: number;
  /** Only events before this sequence number (the page token). */
  beforeSeq?: number;
  /** Only these event names (e.g. the cryptographic operations, for last use). */
  eventNames?: readonly string[];
  /** Only calls that succeeded (no error code). */
  succeededOnly?: boolean;
  limit: number;
}

/** Last successful use of keys by principals (access review, offboarding). */
export interface LastUseQuery {
  accountId: string;
  region: string;
  principalArn?: string;
  keyArn?: string;
  eventNames: readonly string[];
  limit: number;
}

export interface LastUseRow {
  principalArn: string;
  keyArn: string;
  eventName: string;
  eventTime: string;
  eventId: string;
  count: number;
}

export interface StoredEvent {
  seq: number;
  body: string;
  prevHash: string;
  hash: string;
}

/** A signed statement over events fromSeq..toSeq: the hash at toSeq and the digest before it. */
export interface DigestRow {
  digestSeq: number;
  fromSeq: number;
  toSeq: number;
  /** Canonical JSON of DigestBody; what the signature covers. */
  body: string;
  /** base64 Ed25519 signature over `body`. */
  signature: string;
}

export interface DigestBody {
  version: 1;
  digestSeq: number;
  fromSeq: number;
  toSeq: number;
  /** hash(toSeq): every event up to toSeq is bound by it. */
  headHash: string;
  /** hash(fromSeq - 1): where the range starts in the chain. */
  prevHash: string;
  /** SHA-256 of the previous digest's body ('' for the first). */
  prevDigest: string;
  time: string;
  /** Set on a retention anchor: events up to toSeq were removed on purpose at `time`. */
  retention?: { removedThroughSeq: number; cutoff: string };
}

export function fieldsOf(body: string): IndexedFields {
  return fieldsOfParsed(JSON.parse(body));
}

/** fieldsOf for an event body already parsed (JSON.parse of the stored text). */
function fieldsOfParsed(parsed: unknown): IndexedFields {
  const e = parsed as {
    eventId: string; eventTime: string; eventName: string; eventSource: string; readOnly?: boolean; errorCode?: string;
    accessKeyId?: string; principal?: { userName?: string; arn?: string; type?: string };
    resources?: { arn: string }[]; awsRegion?: string;
  };
  const principal = e.principal as { accountId?: string } | undefined;
  return {
    eventId: e.eventId,
    timeMs: Date.parse(e.eventTime),
    eventName: e.eventName,
    eventSource: e.eventSource,
    username: usernameOf(e.principal),
    accessKeyId: e.accessKeyId ?? null,
    readOnly: e.readOnly === true,
    errorCode: e.errorCode ?? null,
    accountId: principal?.accountId ?? null,
    region: e.awsRegion ?? '',
    // A key is found by its ARN and by its bare id (CloudTrail's ResourceName for KMS is either).
    resources: (e.resources ?? []).flatMap((r) => {
      const type = resourceTypeOf(r.arn);
      const id = type === 'AWS::KMS::Key' ? r.arn.slice(r.arn.indexOf(':key/') + 5) : undefined;
      return id ? [{ name: r.arn, type }, { name: id, type }] : [{ name: r.arn, type }];
    }),
  };
}

/** CloudTrail's `Username`: the IAM user name, `root` for the account root, else the ARN's last part. */
export function usernameOf(p: { userName?: string; arn?: string; type?: string } | undefined): string | null {
  if (!p) return null;
  if (p.type === 'Root') return 'root';
  if (p.userName) return p.userName;
  if (p.arn) return p.arn.split('/').pop() ?? p.arn;
  return null;
}

export function resourceTypeOf(arn: string): string {
  if (/^arn:[^:]+:kms:[^:]*:[^:]*:key\//.test(arn)) return 'AWS::KMS::Key';
  if (/^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(arn)) return 'AWS::KMS::Alias';
  if (/^arn:[^:]+:iam::[^:]*:user\//.test(arn)) return 'AWS::IAM::User';
  if (/^arn:[^:]+:iam::[^:]*:role\//.test(arn)) return 'AWS::IAM::Role';
  return 'Other';
}

/** LookupEvents attributes found through `event_keys`: the prefix of their key text. */
const ATTRIBUTE_KEYS: Record<string, string> = {
  EventId: 'id:', EventName: 'name:', Username: 'user:', AccessKeyId: 'akid:', EventSource: 'source:',
  ResourceName: 'res:', ResourceType: 'type:',
};

/** The `event_keys` texts of one event (each LookupEvents attribute value it can be found by). */
export function lookupKeysOf(f: IndexedFields): string[] {
  const keys = new Set<string>([`id:${f.eventId}`, `name:${f.eventName}`, `source:${f.eventSource}`]);
  if (f.username !== null) keys.add(`user:${f.username}`);
  if (f.accessKeyId !== null) keys.add(`akid:${f.accessKeyId}`);
  for (const r of f.resources) {
    keys.add(`res:${r.name}`);
    keys.add(`type:${r.type}`);
  }
  return [...keys];
}

/**
 * Parsed events the writer keeps for the profile detectors at most (recentParsed): a few MB. The
 * detectors run every 100 ms and take up to 2000 events a run; past this they read the log.
 */
const RECENT_PARSED_MAX = 4096;

/** Events indexed per transaction after the commits (and before a query). */
export const INDEX_CHUNK = 2000;
const MINUTE_MS = 60_000;

/** Indexes on the event rows that schema 1 kept in the commit; dropped when such a file is opened. */
const COMMIT_PATH_INDEXES = ['events_time', 'events_account', 'events_name', 'events_user', 'events_akid', 'events_source', 'events_id'];

export class AuditDb {
  readonly db: Database.Database;
  private readonly insertEvent: Database.Statement;
  private readonly headStmt: Database.Statement;
  /** Whether event_keys/event_minutes exist (a schema-1 file opened read-only has neither). */
  private readonly hasIndex: boolean;

  private constructor(db: Database.Database) {
    this.db = db;
    this.insertEvent = db.prepare(
      `INSERT INTO events (seq, event_id, time_ms, event_name, event_source, username, access_key_id, read_only, error_code, account_id, region, body, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.headStmt = db.prepare('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1');
    this.hasIndex = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_minutes'").get() !== undefined;
    if (this.hasIndex && !db.readonly) {
      db.function('keyhold_resource_type', { deterministic: true }, (arn: unknown) => (typeof arn === 'string' ? resourceTypeOf(arn) : null));
      // The same keys as lookupKeysOf, for the events @lo < seq <= @hi.
      this.indexKeys = db.prepare(`
        WITH r AS MATERIALIZED (
          SELECT e.seq AS seq, j.value ->> 'arn' AS arn, keyhold_resource_type(j.value ->> 'arn') AS type
          FROM events e, json_each(e.body, '$.resources') j WHERE e.seq > @lo AND e.seq <= @hi
        )
        INSERT OR IGNORE INTO event_keys (k, s)
        SELECT 'id:' || event_id, seq FROM events WHERE seq > @lo AND seq <= @hi
        UNION ALL SELECT 'name:' || event_name, seq FROM events WHERE seq > @lo AND seq <= @hi
        UNION ALL SELECT 'source:' || event_source, seq FROM events WHERE seq > @lo AND seq <= @hi
        UNION ALL SELECT 'user:' || username, seq FROM events WHERE seq > @lo AND seq <= @hi AND username IS NOT NULL
        UNION ALL SELECT 'akid:' || access_key_id, seq FROM events WHERE seq > @lo AND seq <= @hi AND access_key_id IS NOT NULL
        UNION ALL SELECT 'res:' || arn, seq FROM r WHERE arn IS NOT NULL
        UNION ALL SELECT 'res:' || substr(arn, instr(arn, ':key/') + 5), seq FROM r WHERE type = 'AWS::KMS::Key'
        UNION ALL SELECT 'type:' || type, seq FROM r WHERE type IS NOT NULL`);
      this.indexMinutes = db.prepare(`
        INSERT INTO event_minutes (minute, first_seq, last_seq)
        SELECT time_ms / ${MINUTE_MS}, MIN(seq), MAX(seq) FROM events WHERE seq > @lo AND seq <= @hi AND time_ms IS NOT NULL GROUP BY time_ms / ${MINUTE_MS}
        ON CONFLICT (minute) DO UPDATE SET first_seq = MIN(first_seq, excluded.first_seq), last_seq = MAX(last_seq, excluded.last_seq)`);
    }
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** A statement prepared once per connection (for the fixed SQL run on every move and index pass). */
  cached(sql: string, pluck = false): Database.Statement {
    const key = pluck ? `pluck:${sql}` : sql;
    let st = this.statements.get(key);
    if (!st) {
      st = this.db.prepare(sql);
      if (pluck) st.pluck();
      this.statements.set(key, st);
    }
    return st;
  }

  private readonly indexKeys: Database.Statement | undefined;
  private readonly indexMinutes: Database.Statement | undefined;

  /** Opens (creating when `create`) the audit database. */
  static open(file: string, opts: { readonly?: boolean } = {}): AuditDb {
    const db = new Database(file, { readonly: opts.readonly === true, fileMustExist: opts.readonly === true });
    db.pragma('busy_timeout = 10000');
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      // The schema check, creation and migrations run under the write lock: several server processes
      // (--workers) open the same file at once, and a column check followed by ALTER TABLE would race.
      db.transaction(() => {
        const cols = db.prepare("SELECT name FROM pragma_table_info('events')").all() as { name: string }[];
        if (cols.length > 0 && !cols.some((c) => c.name === 'account_id')) {
          // Files written before LookupEvents: the columns are filled from the bodies.
          db.transaction(() => {
            db.exec("ALTER TABLE events ADD COLUMN account_id TEXT; ALTER TABLE events ADD COLUMN region TEXT NOT NULL DEFAULT ''");
            const upd = db.prepare('UPDATE events SET account_id = ?, region = ? WHERE seq = ?');
            for (const r of db.prepare('SELECT seq, body FROM events').all() as { seq: number; body: string }[]) {
              const f = fieldsOf(r.body);
              upd.run(f.accountId, f.region, r.seq);
            }
          }).immediate();
        }
        db.exec(`
          CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
          CREATE TABLE IF NOT EXISTS events (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            time_ms INTEGER NOT NULL,
            event_name TEXT NOT NULL,
            event_source TEXT NOT NULL,
            username TEXT,
            access_key_id TEXT,
            read_only INTEGER NOT NULL,
            error_code TEXT,
            account_id TEXT,
            region TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
          );
          ${COMMIT_PATH_INDEXES.map((i) => `DROP INDEX IF EXISTS ${i};`).join('\n')}
          DROP TABLE IF EXISTS event_resources;
          CREATE TABLE IF NOT EXISTS event_keys (k TEXT NOT NULL, s INTEGER NOT NULL, PRIMARY KEY (k, s)) WITHOUT ROWID;
          CREATE TABLE IF NOT EXISTS event_minutes (minute INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL);
          INSERT OR IGNORE INTO meta (key, value) VALUES ('index_seq', '0');
          CREATE TABLE IF NOT EXISTS digests (
            digest_seq INTEGER PRIMARY KEY,
            from_seq INTEGER NOT NULL UNIQUE,
            to_seq INTEGER NOT NULL,
            body TEXT NOT NULL,
            signature TEXT NOT NULL
          );
          CREATE TABLE IF NOT EXISTS alerts (
            alert_id TEXT PRIMARY KEY, time_ms INTEGER NOT NULL, account_id TEXT, body TEXT NOT NULL, acked_at TEXT, acked_by TEXT
          );
          CREATE INDEX IF NOT EXISTS alerts_time ON alerts (time_ms);
          CREATE TABLE IF NOT EXISTS alert_outbox (
            id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, url TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_at INTEGER NOT NULL, delivered_at INTEGER, last_error TEXT
          );
          CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (delivered_at, next_at);
          INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '${AUDIT_SCHEMA_VERSION}');
          INSERT OR IGNORE INTO meta (key, value) VALUES ('probe', '0');
        `);
        // Per-account webhooks (alert-webhooks in the API): the outbox row names the webhook whose secret signs it.
        if (!(db.prepare("SELECT name FROM pragma_table_info('alert_outbox')").all() as { name: string }[]).some((c) => c.name === 'webhook_id')) {
          db.exec('ALTER TABLE alert_outbox ADD COLUMN webhook_id TEXT');
        }
      }).immediate();
    }
    return new AuditDb(db);
  }

  head(): { seq: number; hash: string } {
    const row = this.headStmt.get() as { seq: number; hash: string } | undefined;
    if (row) return row;
    // Everything was removed by retention: the chain continues from the anchor digest.
    const anchor = this.lastDigest();
    if (anchor) {
      const b = JSON.parse(anchor.body) as DigestBody;
      return { seq: b.toSeq, hash: b.headHash };
    }
    return { seq: 0, hash: GENESIS_HASH };
  }

  /**
   * Appends events in one transaction, extending the chain from the current head (whoever wrote
   * it: BEGIN IMMEDIATE holds the write lock from reading the head to the commit).
   */
  append(bodies: readonly string[]): { firstSeq: number; lastSeq: number } {
    return this.db.transaction(() => this.appendInTransaction(bodies)).immediate();
  }

  private appendInTransaction(bodies: readonly string[], parsed?: unknown[]): { firstSeq: number; lastSeq: number } {
    let { seq, hash } = this.head();
    const firstSeq = seq + 1;
    for (const body of bodies) {
      const e: unknown = JSON.parse(body);
      parsed?.push(e);
      const f = fieldsOfParsed(e);
      seq += 1;
      const next = eventHash(seq, hash, body);
      this.insertEvent.run(seq, f.eventId, f.timeMs, f.eventName, f.eventSource, f.username, f.accessKeyId, f.readOnly ? 1 : 0, f.errorCode, f.accountId, f.region, body, hash, next);
      hash = next;
    }
    return { firstSeq, lastSeq: seq };
  }

  /**
   * How far the intake journal `name` has been moved into the log (intake.ts), in bytes: 0 for a
   * journal never seen.
   */
  intakeWatermark(name: string): number {
    return Number((this.cached('SELECT value FROM meta WHERE key = ?', true).get(watermarkKey(name)) as string | undefined) ?? '0');
  }

  /**
   * Moves events of an intake journal into the log: `lines` are the events that end at the given
   * byte offsets of journal `name`, in order. Under the write lock the journal's watermark is read
   * again, so events another process has already moved in are skipped, and it is advanced in the
   * same transaction as the events. Without an fsync of its own (synchronous=NORMAL): the journal
   * holds the events durably until the WAL is synced (a checkpoint, or syncWal before a journal is
   * deleted); lost in a power cut, events and watermark go back together. Returns the new watermark.
   */
  ingest(name: string, lines: readonly { body: string; end: number }[]): number {
    const key = watermarkKey(name);
    this.db.pragma('synchronous = NORMAL');
    const parsed: unknown[] = [];
    let firstSeq = 0;
    try {
      const end = this.db.transaction(() => {
        const w = this.intakeWatermark(name);
        const fresh = w === 0 ? lines : lines.filter((l) => l.end > w);
        if (fresh.length === 0) return w;
        firstSeq = this.appendInTransaction(fresh.map((l) => l.body), parsed).firstSeq;
        const end = fresh[fresh.length - 1]!.end;
        this.cached('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, String(end));
        return end;
      }).immediate();
      // Committed: the profile detectors may take these parsed events instead of reading them back.
      if (parsed.length > 0) this.rememberParsed(firstSeq, parsed);
      return end;
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /** Forgets a journal's watermark (once the journal file is deleted). */
  forgetIntake(name: string): void {
    this.db.prepare('DELETE FROM meta WHERE key = ?').run(watermarkKey(name));
  }

  /** Makes every commit so far durable: fdatasync of the WAL (before a journal that fed them is deleted). */
  syncWal(): void {
    fdatasyncSync(this.walFd());
  }

  /** Events this connection committed last, parsed, as a run of consecutive seqs (recentParsed). */
  private recent: { firstSeq: number; events: unknown[] } | undefined;

  private rememberParsed(firstSeq: number, events: unknown[]): void {
    const r = this.recent;
    if (r && r.firstSeq + r.events.length === firstSeq && r.events.length + events.length <= RECENT_PARSED_MAX) {
      for (const e of events) r.events.push(e);
    } else {
      this.recent = { firstSeq, events: events.slice(-RECENT_PARSED_MAX) };
      this.recent.firstSeq = firstSeq + events.length - this.recent.events.length;
    }
  }

  /**
   * The stored events after `fromSeq` (up to `limit`), parsed, if this connection committed them
   * itself moments ago and still holds them: exactly what `SELECT seq, body FROM events WHERE seq >
   * fromSeq ORDER BY seq LIMIT limit` and JSON.parse of each body would give (checked: the first
   * stored seq after fromSeq is fromSeq + 1 and the newest stored seq is the last one held, so no
   * other process's events and no removed ones are in between). Otherwise undefined, and the
   * caller reads them. Call it inside the transaction that reads the watermark. Events up to
   * fromSeq are dropped (examined already).
   */
  recentParsed(fromSeq: number, limit: number): { events: unknown[]; lastSeq: number } | undefined {
    const r = this.recent;
    if (!r) return undefined;
    const held = r.firstSeq + r.events.length - 1;
    if (fromSeq + 1 < r.firstSeq || fromSeq >= held) {
      if (fromSeq >= held) this.recent = undefined;
      return undefined;
    }
    if (fromSeq >= r.firstSeq) {
      r.events.splice(0, fromSeq + 1 - r.firstSeq);
      r.firstSeq = fromSeq + 1;
    }
    const next = this.cached('SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT 1', true).get(fromSeq) as number | undefined;
    if (next !== fromSeq + 1 || this.head().seq !== held) return undefined;
    const events = r.events.slice(0, limit);
    return { events, lastSeq: fromSeq + events.length };
  }

  /**
   * Indexes up to `limit` committed events after the watermark, in one transaction without an
   * fsync of its own (the next event commit, FULL, syncs it too; lost in a power cut, index and
   * watermark go back together and the events are indexed again). Returns how many it indexed.
   */
  indexPending(limit = INDEX_CHUNK): number {
    const db = this.db;
    db.pragma('synchronous = NORMAL');
    try {
      return db.transaction(() => {
        const from = Number(this.cached("SELECT value FROM meta WHERE key = 'index_seq'", true).get() ?? '0');
        const range = this.cached('SELECT COUNT(*) AS n, MAX(seq) AS last FROM (SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?)')
          .get(from, limit) as { n: number; last: number | null };
        if (range.n === 0 || range.last === null) return 0;
        // All in SQL, from the columns the commit stored and the body's resources: no event is
        // parsed in JavaScript, and each statement covers the whole chunk.
        this.indexKeys!.run({ lo: from, hi: range.last });
        this.indexMinutes!.run({ lo: from, hi: range.last });
        this.cached("UPDATE meta SET value = ? WHERE key = 'index_seq'").run(String(range.last));
        return range.n;
      }).immediate();
    } finally {
      db.pragma('synchronous = FULL');
    }
  }

  /** Indexes every committed event not indexed yet (before a query reads the index). */
  catchUpIndex(): void {
    if (this.db.readonly) return;
    while (this.indexPending() === INDEX_CHUNK);
  }

  /**
   * A condition on `seq` that every event with a time in [startMs, endMs] meets (from
   * event_minutes; events not indexed yet always meet it), or undefined when there is none to add.
   * The exact time filter is applied besides.
   */
  seqRangeForTime(startMs: number | undefined, endMs: number | undefined, column: string): { sql: string; args: unknown[] } | undefined {
    if (!this.hasIndex || (startMs === undefined && endMs === undefined)) return undefined;
    const wm = Number(this.db.prepare("SELECT value FROM meta WHERE key = 'index_seq'").pluck().get() ?? '0');
    const lo = startMs === undefined ? undefined
      : (this.db.prepare('SELECT MIN(first_seq) FROM event_minutes WHERE minute >= ?').pluck().get(Math.floor(startMs / MINUTE_MS)) as number | null) ?? wm + 1;
    const hi = endMs === undefined ? undefined
      : (this.db.prepare('SELECT MAX(last_seq) FROM event_minutes WHERE minute <= ?').pluck().get(Math.floor(endMs / MINUTE_MS)) as number | null) ?? 0;
    const parts: string[] = [];
    const args: unknown[] = [];
    if (lo !== undefined) {
      parts.push(`${column} >= ?`);
      args.push(lo);
    }
    if (hi !== undefined) {
      parts.push(`${column} <= ?`);
      args.push(hi);
    }
    return { sql: `((${parts.join(' AND ')}) OR ${column} > ?)`, args: [...args, wm] };
  }

  /** The first event at or after `timeMs` (retention), found through event_minutes. */
  firstSeqAtOrAfter(timeMs: number): number | undefined {
    this.catchUpIndex();
    const range = this.seqRangeForTime(timeMs, undefined, 'seq');
    const where = ['time_ms >= ?', ...(range ? [range.sql] : [])];
    return (this.db.prepare(`SELECT MIN(seq) AS s FROM events WHERE ${where.join(' AND ')}`).get(timeMs, ...(range?.args ?? [])) as { s: number | null }).s ?? undefined;
  }

  /** Removes the index rows of an event (retention), given its stored body. */
  unindex(seq: number, body: string): void {
    const del = this.db.prepare('DELETE FROM event_keys WHERE k = ? AND s = ?');
    for (const k of lookupKeysOf(fieldsOf(body))) del.run(k, seq);
  }

  private wal: { fd: number; ino: number; dev: number } | undefined;

  /**
   * A descriptor of the -wal file, to fsync ingest()'s commits (syncWal). SQLite keeps that file (the
   * same inode) while any connection is open, and this one is; reopened if it was replaced anyway.
   */
  walFd(): number {
    const path = `${this.db.name}-wal`;
    const st = statSync(path);
    if (this.wal && (this.wal.ino !== st.ino || this.wal.dev !== st.dev)) {
      closeSync(this.wal.fd);
      this.wal = undefined;
    }
    if (!this.wal) {
      const fd = openSync(path, 'r');
      const f = fstatSync(fd);
      this.wal = { fd, ino: f.ino, dev: f.dev };
    }
    return this.wal.fd;
  }

  /** SQLite's automatic checkpoint threshold for this connection, in WAL pages (0 turns it off). */
  setWalAutoCheckpoint(pages: number): void {
    this.db.pragma(`wal_autocheckpoint = ${Math.max(0, Math.floor(pages))}`);
  }

  /** A small durable write, to learn whether writing works again (the health probe). */
  probe(): void {
    this.db.transaction(() => {
      this.db.prepare("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'probe'").run();
    }).immediate();
  }

  lastDigest(): DigestRow | undefined {
    return this.db.prepare('SELECT digest_seq AS digestSeq, from_seq AS fromSeq, to_seq AS toSeq, body, signature FROM digests ORDER BY digest_seq DESC LIMIT 1').get() as DigestRow | undefined;
  }

  digests(): DigestRow[] {
    return this.db.prepare('SELECT digest_seq AS digestSeq, from_seq AS fromSeq, to_seq AS toSeq, body, signature FROM digests ORDER BY digest_seq').all() as DigestRow[];
  }

  /**
   * Events of one account and region (and unattributed ones: authentication failures with an
   * unknown access key), newest first, matching at most one attribute and the time range.
   */
  lookup(q: LookupQuery): { seq: number; body: string }[] {
    this.catchUpIndex();
    const where: string[] = ['(e.account_id = ? OR e.account_id IS NULL)', "(e.region = ? OR e.region = '')"];
    const args: unknown[] = [q.accountId, q.region];
    if (q.startMs !== undefined) {
      where.push('e.time_ms >= ?');
      args.push(q.startMs);
    }
    if (q.endMs !== undefined) {
      where.push('e.time_ms <= ?');
      args.push(q.endMs);
    }
    const range = this.seqRangeForTime(q.startMs, q.endMs, 'e.seq');
    if (range) {
      where.push(range.sql);
      args.push(...range.args);
    }
    if (q.beforeSeq !== undefined) {
      where.push('e.seq < ?');
      args.push(q.beforeSeq);
    }
    if (q.eventNames) {
      where.push(`e.event_name IN (${q.eventNames.map(() => '?').join(',')})`);
      args.push(...q.eventNames);
    }
    if (q.succeededOnly) where.push('e.error_code IS NULL');
    let from = 'events e';
    let order = 'e.seq';
    if (q.attribute) {
      const prefix = ATTRIBUTE_KEYS[q.attribute.key];
      if (prefix !== undefined) {
        // The key rows in descending order drive the query (CROSS JOIN keeps that order).
        from = 'event_keys k CROSS JOIN events e ON e.seq = k.s';
        order = 'k.s';
        where.unshift('k.k = ?');
        args.unshift(prefix + q.attribute.value);
        if (q.beforeSeq !== undefined) {
          where.push('k.s < ?');
          args.push(q.beforeSeq);
        }
      } else if (q.attribute.key === 'ReadOnly') {
        where.push('e.read_only = ?');
        args.push(q.attribute.value === 'true' ? 1 : 0);
      } else {
        throw new Error(`unknown lookup attribute ${q.attribute.key}`);
      }
    }
    args.push(q.limit);
    return this.db.prepare(`SELECT e.seq AS seq, e.body AS body FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${order} DESC LIMIT ?`).all(...args) as { seq: number; body: string }[];
  }

  /** Per principal and key: the last successful use among `eventNames`, and how many there were. */
  lastUse(q: LastUseQuery): LastUseRow[] {
    this.catchUpIndex();
    // Resource keys of ARNs ('res:arn:...'); which of them are KMS keys is decided below.
    const where = ["k.k >= 'res:arn:'", "k.k < 'res:arn;'", 'e.account_id = ?', 'e.region = ?', 'e.error_code IS NULL', `e.event_name IN (${q.eventNames.map(() => '?').join(',')})`];
    const args: unknown[] = [q.accountId, q.region, ...q.eventNames];
    if (q.principalArn) {
      where.push("json_extract(e.body, '$.principal.arn') = ?");
      args.push(q.principalArn);
    }
    if (q.keyArn) {
      where.push('k.k = ?');
      args.push(`res:${q.keyArn}`);
    }
    const groups = this.db.prepare(`
      SELECT json_extract(e.body, '$.principal.arn') AS principalArn, substr(k.k, 5) AS keyArn, MAX(e.seq) AS lastSeq, COUNT(*) AS count
      FROM event_keys k CROSS JOIN events e ON e.seq = k.s
      WHERE ${where.join(' AND ')}
      GROUP BY principalArn, keyArn ORDER BY lastSeq DESC`).all(...args) as { principalArn: string; keyArn: string; lastSeq: number; count: number }[];
    const rows = groups.filter((r) => resourceTypeOf(r.keyArn) === 'AWS::KMS::Key').slice(0, q.limit);
    const body = this.db.prepare('SELECT body FROM events WHERE seq = ?');
    return rows.map((r) => {
      const e = JSON.parse((body.get(r.lastSeq) as { body: string }).body) as { eventName: string; eventTime: string; eventId: string };
      return { principalArn: r.principalArn, keyArn: r.keyArn, eventName: e.eventName, eventTime: e.eventTime, eventId: e.eventId, count: r.count };
    });
  }

  /** The principal of the latest successful call with this access key (undefined if none). */
  accessKeyOwner(accessKeyId: string): { principalArn: string; accountId: string | null } | undefined {
    this.catchUpIndex();
    const row = this.db.prepare(`SELECT json_extract(e.body, '$.principal.arn') AS principalArn, e.account_id AS accountId
      FROM event_keys k CROSS JOIN events e ON e.seq = k.s WHERE k.k = ? AND e.error_code IS NULL ORDER BY k.s DESC LIMIT 1`)
      .get(`akid:${accessKeyId}`) as { principalArn: string | null; accountId: string | null } | undefined;
    return row?.principalArn ? { principalArn: row.principalArn, accountId: row.accountId } : undefined;
  }

  accessKeySeenBefore(accessKeyId: string): boolean {
    this.catchUpIndex();
    return this.db.prepare('SELECT 1 FROM event_keys k CROSS JOIN events e ON e.seq = k.s WHERE k.k = ? AND e.error_code IS NULL LIMIT 1').get(`akid:${accessKeyId}`) !== undefined;
  }

  /**
   * Stores alerts and queues each for every server webhook and, as one placeholder row
   * (`account-webhooks:<account>`), for its account's webhooks, in one transaction. Idempotent: an
   * alert already stored is not queued again (a request repeated after the writer thread exited).
   */
  addAlerts(alerts: { alertId: string; timeMs: number; accountId: string | null; body: string }[], webhooks: readonly string[], nowMs: number): void {
    this.db.transaction(() => {
      const a = this.db.prepare('INSERT OR IGNORE INTO alerts (alert_id, time_ms, account_id, body) VALUES (?, ?, ?, ?)');
      const o = this.db.prepare('INSERT INTO alert_outbox (alert_id, url, next_at) VALUES (?, ?, ?)');
      for (const x of alerts) {
        if (a.run(x.alertId, x.timeMs, x.accountId, x.body).changes === 0) continue;
        for (const url of webhooks) o.run(x.alertId, url, nowMs);
        // The account's own webhooks are looked up when this row is delivered (expandDelivery).
        if (x.accountId) o.run(x.alertId, ACCOUNT_WEBHOOKS_PREFIX + x.accountId, nowMs);
      }
    }).immediate();
  }

  listAlerts(q: { accountId: string; includeAcknowledged: boolean; limit: number }): { body: string; ackedAt: string | null; ackedBy: string | null }[] {
    return this.db.prepare(`SELECT body, acked_at AS ackedAt, acked_by AS ackedBy FROM alerts WHERE (account_id = ? OR account_id IS NULL)
      ${q.includeAcknowledged ? '' : 'AND acked_at IS NULL'} ORDER BY time_ms DESC LIMIT ?`).all(q.accountId, q.limit) as { body: string; ackedAt: string | null; ackedBy: string | null }[];
  }

  /** False when no such alert (of this account) exists. */
  ackAlert(alertId: string, accountId: string, by: string, at: string): boolean {
    return this.db.prepare('UPDATE alerts SET acked_at = COALESCE(acked_at, ?), acked_by = COALESCE(acked_by, ?) WHERE alert_id = ? AND (account_id = ? OR account_id IS NULL)')
      .run(at, by, alertId, accountId).changes > 0;
  }

  /** Claims due deliveries (pushing their next attempt out by leaseMs, so other processes skip them). */
  claimDeliveries(nowMs: number, leaseMs: number, limit: number): OutboxRow[] {
    return this.db.transaction(() => {
      const rows = this.db.prepare(`SELECT o.id, o.url, o.attempts, a.body, a.account_id AS accountId, o.webhook_id AS webhookId
        FROM alert_outbox o JOIN alerts a ON a.alert_id = o.alert_id
        WHERE o.delivered_at IS NULL AND o.next_at <= ? ORDER BY o.next_at LIMIT ?`).all(nowMs, limit) as OutboxRow[];
      const claim = this.db.prepare('UPDATE alert_outbox SET next_at = ? WHERE id = ?');
      for (const r of rows) claim.run(nowMs + leaseMs, r.id);
      return rows;
    }).immediate();
  }

  /**
   * Replaces an account placeholder row by one row per webhook the account has now (none: the
   * placeholder is simply done), or closes a row whose webhook was deleted (targets = []).
   */
  expandDelivery(id: number, targets: readonly { url: string; webhookId: string }[], nowMs: number, note: string | null): void {
    this.db.transaction(() => {
      const row = this.db.prepare('SELECT alert_id AS alertId FROM alert_outbox WHERE id = ? AND delivered_at IS NULL').get(id) as { alertId: string } | undefined;
      if (!row) return;
      const o = this.db.prepare('INSERT INTO alert_outbox (alert_id, url, next_at, webhook_id) VALUES (?, ?, ?, ?)');
      for (const t of targets) o.run(row.alertId, t.url, nowMs, t.webhookId);
      this.db.prepare('UPDATE alert_outbox SET delivered_at = ?, last_error = ? WHERE id = ?').run(nowMs, note, id);
    }).immediate();
  }

  deliveryResult(id: number, ok: boolean, nowMs: number, nextAt: number, error: string | null): void {
    if (ok) this.db.prepare('UPDATE alert_outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?').run(nowMs, id);
    else this.db.prepare('UPDATE alert_outbox SET next_at = ?, attempts = attempts + 1, last_error = ? WHERE id = ?').run(nextAt, error, id);
  }

  /** Adds the next digest, unless another process added digest `digestSeq` first (then false). */
  addDigest(row: DigestRow): boolean {
    return this.db.transaction(() => {
      const last = this.lastDigest();
      if ((last?.digestSeq ?? 0) !== row.digestSeq - 1) return false;
      this.db.prepare('INSERT INTO digests (digest_seq, from_seq, to_seq, body, signature) VALUES (?, ?, ?, ?, ?)')
        .run(row.digestSeq, row.fromSeq, row.toSeq, row.body, row.signature);
      return true;
    }).immediate();
  }

  /** Events in seq order, from `afterSeq` on, `limit` at a time (for verification and export). */
  eventsAfter(afterSeq: number, limit: number): StoredEvent[] {
    return this.db
      .prepare('SELECT seq, body, prev_hash AS prevHash, hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?')
      .all(afterSeq, limit) as StoredEvent[];
  }

  firstSeq(): number | undefined {
    return (this.db.prepare('SELECT MIN(seq) AS s FROM events').get() as { s: number | null }).s ?? undefined;
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  close(): void {
    if (this.wal) closeSync(this.wal.fd);
    this.wal = undefined;
    this.db.close();
  }
}
