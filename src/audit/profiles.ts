/**
 * Detectors that learn each principal's habits from the audit log itself: the keys it uses, the
 * source addresses and networks it calls from, the hours (UTC) it works in and its Decrypt
 * volume. They run on the audit writer thread, after the commit and off the request path, over
 * the events after a watermark kept in the same database: updating the profiles, storing the
 * alerts (and their outbox rows) and advancing the watermark happen in one transaction. So every
 * committed event is examined exactly once, also by a cluster of processes sharing the file, and
 * events committed just before a crash are examined after the restart.
 *
 * An event examined long after it happened (a first catch-up over an existing log, a restart
 * after a long stop) only trains the profiles: alerting on it would be noise, not news.
 */
import { isIP } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { AuditDb } from './audit-db.js';
import type { Alert, AuditEvent, Severity } from './event.js';

/** Cryptographic operations: "use" of a key (as GetKeyLastUsage tracks it). */
const KEY_USE = new Set([
  'Decrypt', 'DeriveSharedSecret', 'Encrypt', 'GenerateDataKey', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
  'GenerateDataKeyWithoutPlaintext', 'GenerateMac', 'ReEncrypt', 'Sign', 'Verify', 'VerifyMac',
]);
/** Events older than this when examined only train the profiles. */
export const LEARN_ONLY_AFTER_MS = 3_600_000;
/** Usual hours are judged only after this many successful calls on this many distinct days. */
export const MIN_HOURS_EVENTS = 50;
export const MIN_HOURS_DAYS = 5;
/** Decrypt volume: counted per minute; the baseline is the mean of the principal's active minutes of the last 7 days. */
const DECRYPT_BUCKET_MS = 60_000;
const DECRYPT_LOOKBACK_BUCKETS = 7 * 24 * 60;
/** At least this many earlier active minutes before the baseline is trusted. */
export const MIN_DECRYPT_HISTORY_MINUTES = 10;
/** "Far above": more than FACTOR times the baseline and more than EXCESS calls above it. */
export const DECRYPT_FACTOR = 10;
export const DECRYPT_EXCESS = 50;
const PRUNE_EVERY_MS = 3_600_000;

/** The network an address belongs to, for "never seen from this network": IPv4 /24, IPv6 /64. */
export function networkOf(ip: string): string {
  if (isIP(ip) === 4) return ip.split('.').slice(0, 3).join('.') + '.0/24';
  if (isIP(ip) === 6) {
    const full = expand6(ip);
    return full.slice(0, 4).join(':') + '::/64';
  }
  return ip;
}

function expand6(ip: string): string[] {
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((x) => x.toLowerCase().replace(/^0+(?=.)/, ''));
}

const hourOf = (ms: number) => new Date(ms).getUTCHours();
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

interface Touch { principal: string; kind: string; value: string; count: number; firstMs: number; lastMs: number; first: AuditEvent; last: AuditEvent }

export class ProfileDetectors {
  private readonly get;
  private readonly upsert;
  private readonly hours;
  private readonly days;
  private readonly decryptBaseline;
  private lastPrune = 0;

  constructor(private readonly audit: AuditDb) {
    const db = audit.db;
    db.exec(`
      CREATE TABLE IF NOT EXISTS principal_profile (
        principal TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
        n INTEGER NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
        PRIMARY KEY (principal, kind, value)
      ) WITHOUT ROWID;
      INSERT OR IGNORE INTO meta (key, value) VALUES ('profile_seq', '0');
    `);
    this.get = db.prepare('SELECT n FROM principal_profile WHERE principal = ? AND kind = ? AND value = ?').pluck();
    this.upsert = db.prepare(`INSERT INTO principal_profile (principal, kind, value, n, first_ms, last_ms) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (principal, kind, value) DO UPDATE SET n = n + excluded.n, first_ms = MIN(first_ms, excluded.first_ms), last_ms = MAX(last_ms, excluded.last_ms)`);
    this.hours = db.prepare("SELECT value, n FROM principal_profile WHERE principal = ? AND kind = 'hour'");
    this.days = db.prepare("SELECT COUNT(*) FROM principal_profile WHERE principal = ? AND kind = 'day'").pluck();
    this.decryptBaseline = db.prepare(`SELECT COUNT(*) AS buckets, COALESCE(AVG(n), 0) AS mean FROM principal_profile
      WHERE principal = ? AND kind = 'decrypt' AND CAST(value AS INTEGER) < ? AND CAST(value AS INTEGER) >= ?`);
  }

  /**
   * Examines up to `limit` events after the watermark. Alerts are stored and queued for `webhooks`
   * in the same transaction. Returns them, and whether more events are waiting.
   */
  run(nowMs: number, limit: number, webhooks: readonly string[]): { alerts: Alert[]; more: boolean } {
    // Without its own fsync: the events are already durable, and the next event commit (FULL)
    // syncs this one too. Lost in a power cut, profiles, alerts and watermark go back together
    // (WAL keeps transactions whole) and the same events are examined again.
    const db = this.audit.db;
    db.pragma('synchronous = NORMAL');
    try {
      return this.runChunk(nowMs, limit, webhooks);
    } finally {
      db.pragma('synchronous = FULL');
    }
  }

  private runChunk(nowMs: number, limit: number, webhooks: readonly string[]): { alerts: Alert[]; more: boolean } {
    const db = this.audit.db;
    return db.transaction(() => {
      const from = Number((this.audit.cached("SELECT value FROM meta WHERE key = 'profile_seq'", true).get() as string | undefined) ?? '0');
      // The events the writer just moved in are taken as it parsed them (the same objects
      // JSON.parse of the stored bodies gives), instead of being read back and parsed again.
      const recent = this.audit.recentParsed(from, limit) as { events: AuditEvent[]; lastSeq: number } | undefined;
      let events: AuditEvent[];
      let lastSeq: number;
      if (recent) {
        ({ events, lastSeq } = recent);
      } else {
        const rows = this.audit.cached('SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?').all(from, limit) as { seq: number; body: string }[];
        if (rows.length === 0) return { alerts: [], more: false };
        events = rows.map((r) => JSON.parse(r.body) as AuditEvent);
        lastSeq = rows[rows.length - 1]!.seq;
      }
      const alerts = this.examine(events, nowMs);
      if (alerts.length > 0) {
        this.audit.addAlerts(alerts.map((a) => ({ alertId: a.alertId, timeMs: Date.parse(a.time), accountId: a.accountId, body: JSON.stringify(a) })), webhooks, nowMs);
      }
      this.audit.cached("UPDATE meta SET value = ? WHERE key = 'profile_seq'").run(String(lastSeq));
      if (nowMs - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = nowMs;
        db.prepare("DELETE FROM principal_profile WHERE kind = 'decrypt' AND CAST(value AS INTEGER) < ?").run(Math.floor(nowMs / DECRYPT_BUCKET_MS) - DECRYPT_LOOKBACK_BUCKETS - 60);
      }
      return { alerts, more: events.length === limit };
    }).immediate();
  }

  private examine(events: AuditEvent[], nowMs: number): Alert[] {
    // Aggregate the chunk first: under load most events repeat a (principal, kind, value) and
    // cost one lookup and one upsert per chunk, not per event.
    const touches = new Map<string, Touch>();
    const touch = (principal: string, kind: string, value: string, t: number, e: AuditEvent) => {
      const k = `${principal}\u0000${kind}\u0000${value}`;
      const x = touches.get(k);
      if (x) {
        x.count++;
        x.last = e;
        x.lastMs = Math.max(x.lastMs, t);
        x.firstMs = Math.min(x.firstMs, t);
      } else {
        touches.set(k, { principal, kind, value, count: 1, firstMs: t, lastMs: t, first: e, last: e });
      }
    };
    for (const e of events) {
      const p = e.principal;
      if (!p || e.errorCode !== undefined) continue;
      const t = Date.parse(e.eventTime);
      if (isIP(e.sourceIPAddress)) {
        touch(p.arn, 'ip', e.sourceIPAddress, t, e);
        touch(p.arn, 'net', networkOf(e.sourceIPAddress), t, e);
      }
      const key = e.resources.find((r) => r.arn.includes(':key/'))?.arn;
      if (key && (KEY_USE.has(e.eventName) || e.eventName === 'CreateKey')) touch(p.arn, e.eventName === 'CreateKey' ? 'key-created' : 'key', key, t, e);
      touch(p.arn, 'hour', String(hourOf(t)), t, e);
      touch(p.arn, 'day', dayOf(t), t, e);
      if (e.eventName === 'Decrypt') touch(p.arn, 'decrypt', String(Math.floor(t / DECRYPT_BUCKET_MS)), t, e);
    }
    const alerts: Alert[] = [];
    const fresh = (t: number) => nowMs - t < LEARN_ONLY_AFTER_MS;
    const before = new Map<string, number>();
    const known = new Map<string, boolean>();
    /** Whether the principal had any history before this chunk (a first-ever call is not "new"). */
    const hasHistory = (principal: string) => {
      if (!known.has(principal)) known.set(principal, (this.hours.all(principal) as unknown[]).length > 0);
    };
    for (const [k, x] of touches) {
      before.set(k, (this.get.get(x.principal, x.kind, x.value) as number | undefined) ?? 0);
      hasHistory(x.principal);
    }
    // Creating a key counts as knowing it: a creator's own first Encrypt is not news.
    for (const [k, x] of touches) {
      if (x.kind !== 'key-created') continue;
      this.upsert.run(x.principal, 'key', x.value, 1, x.firstMs, x.lastMs);
      before.set(`${x.principal}\u0000key\u0000${x.value}`, Math.max(1, before.get(`${x.principal}\u0000key\u0000${x.value}`) ?? 0));
      before.delete(k);
    }
    const netsSeenNow = new Set<string>();
    const hourProfiles = new Map<string, { byHour: number[]; total: number; days: number }>();
    const profileOf = (principal: string) => {
      let h = hourProfiles.get(principal);
      if (!h) {
        const byHour = new Array<number>(24).fill(0);
        for (const r of this.hours.all(principal) as { value: string; n: number }[]) byHour[Number(r.value)] = r.n;
        h = { byHour, total: byHour.reduce((a, b) => a + b, 0), days: this.days.get(principal) as number };
        hourProfiles.set(principal, h);
      }
      return h;
    };
    for (const [k, x] of touches) {
      if (x.kind === 'key-created') continue;
      const was = before.get(k) ?? 0;
      const e = x.first;
      if (fresh(x.lastMs) && known.get(x.principal)) {
        if (x.kind === 'key' && was === 0) {
          alerts.push(this.alert(e, 'low', 'first-key-use', x.value, `${x.principal} used key ${x.value} for the first time (${e.eventName} from ${e.sourceIPAddress})`));
        }
        if (x.kind === 'ip' && was === 0) {
          const net = networkOf(x.value);
          // A network first seen earlier in this same chunk counts as known (events in order).
          const netNew = (before.get(`${x.principal}\u0000net\u0000${net}`) ?? 0) === 0 && !netsSeenNow.has(`${x.principal} ${net}`);
          netsSeenNow.add(`${x.principal} ${net}`);
          alerts.push(this.alert(e, netNew ? 'medium' : 'low', 'new-source-ip', null,
            `${x.principal} called from ${x.value}, never seen for it before` + (netNew ? ` (nor any address in ${net})` : ` (its network ${net} is known)`) + ` (${e.eventName})`));
        }
        if (x.kind === 'hour') {
          const prof = profileOf(x.principal);
          const h = Number(x.value);
          const near = prof.byHour[h]! + prof.byHour[(h + 23) % 24]! + prof.byHour[(h + 1) % 24]!;
          if (prof.total >= MIN_HOURS_EVENTS && prof.days >= MIN_HOURS_DAYS && near === 0) {
            const usual = prof.byHour.map((n, i) => (n > 0 ? i : -1)).filter((i) => i >= 0);
            alerts.push(this.alert(e, 'medium', 'unusual-hour', null,
              `${x.principal} called at ${String(h).padStart(2, '0')}:xx UTC (${e.eventName}); in ${prof.total} earlier calls over ${prof.days} days it worked only in the hours ${usual.join(', ')} UTC`));
          }
        }
        if (x.kind === 'decrypt') {
          const bucket = Number(x.value);
          const b = this.decryptBaseline.get(x.principal, bucket, bucket - DECRYPT_LOOKBACK_BUCKETS) as { buckets: number; mean: number };
          const threshold = Math.max(DECRYPT_FACTOR * b.mean, b.mean + DECRYPT_EXCESS);
          if (b.buckets >= MIN_DECRYPT_HISTORY_MINUTES && was <= threshold && was + x.count > threshold) {
            alerts.push(this.alert(x.last, 'high', 'decrypt-volume', null,
              `${x.principal} made ${was + x.count} Decrypt calls in the minute from ${new Date(bucket * DECRYPT_BUCKET_MS).toISOString()}; its baseline is ${b.mean.toFixed(1)} per active minute over ${b.buckets} minutes of the last 7 days`));
          }
        }
      }
      this.upsert.run(x.principal, x.kind, x.value, x.count, x.firstMs, x.lastMs);
    }
    return alerts;
  }

  private alert(e: AuditEvent, severity: Severity, rule: string, keyArn: string | null, summary: string): Alert {
    return {
      alertId: randomUUID(), time: new Date().toISOString(), severity, rule,
      accountId: e.principal?.accountId ?? null, principalArn: e.principal?.arn ?? null, accessKeyId: e.accessKeyId ?? null,
      keyArn: keyArn ?? e.resources.find((r) => r.arn.includes(':key/'))?.arn ?? null, summary, eventIds: [e.eventId!],
    };
  }
}
