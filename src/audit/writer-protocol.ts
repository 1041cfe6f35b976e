import type { AuditDb, DigestRow, LastUseQuery, LookupQuery } from './audit-db.js';
import { readExportPage, type ExportQuery } from './export-query.js';
import { planRetention, pruneEvents } from './retention.js';
import { ProfileDetectors } from './profiles.js';
import type { JournalAnnouncement } from './intake.js';

/** What the audit writer thread (audit-writer.ts) starts with. */
export interface WriterData {
  file: string;
  /** The current journal's generation and durable length (packDurable), written by the request thread. */
  durable: SharedArrayBuffer;
  instance: string;
  /**
   * This instance's journals still on disk, oldest first: sealed ones (with their sealed length) and
   * the current one last. Empty at the first start; a thread started after one exited resumes them.
   */
  journals: { path: string; gen: number; sealedLength?: number }[];
  /** The previous thread had reported that moving events in fails (the request thread refuses events). */
  failing: boolean;
}

/** Requests the request thread sends to the audit writer thread (audit-writer.ts). */
export type WriterRequest =
  | { id: number; kind: 'journal'; journal: JournalAnnouncement }
  | { id: number; kind: 'catchUp' }
  | { id: number; kind: 'probe' }
  | { id: number; kind: 'head' }
  | { id: number; kind: 'accessKeySeen'; accessKeyId: string }
  | { id: number; kind: 'accessKeyOwner'; accessKeyId: string }
  | { id: number; kind: 'expandDelivery'; deliveryId: number; targets: { url: string; webhookId: string }[]; nowMs: number; note: string | null }
  | { id: number; kind: 'runProfiles'; nowMs: number; limit: number; webhooks: string[] }
  | { id: number; kind: 'addAlerts'; alerts: { alertId: string; timeMs: number; accountId: string | null; body: string }[]; webhooks: string[]; nowMs: number }
  | { id: number; kind: 'listAlerts'; accountId: string; includeAcknowledged: boolean; limit: number }
  | { id: number; kind: 'ackAlert'; alertId: string; accountId: string; by: string; at: string }
  | { id: number; kind: 'claimDeliveries'; nowMs: number; leaseMs: number; limit: number }
  | { id: number; kind: 'deliveryResult'; deliveryId: number; ok: boolean; nowMs: number; nextAt: number; error: string | null }
  | { id: number; kind: 'lookup'; query: LookupQuery }
  | { id: number; kind: 'lastUse'; query: LastUseQuery }
  | { id: number; kind: 'addDigest'; row: DigestRow }
  | { id: number; kind: 'export'; query: ExportQuery }
  | { id: number; kind: 'retentionPlan'; cutoffMs: number }
  | { id: number; kind: 'prune'; throughSeq: number; limit: number }
  | { id: number; kind: 'close' };

/** One reply per request. */
export type WriterReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string; code?: string };

/** Unasked: moving journal events into the database started failing, or works again. */
export type WriterNotice = { notice: 'ingest'; ok: true } | { notice: 'ingest'; ok: false; error: string; code?: string };

const profiles = new WeakMap<AuditDb, ProfileDetectors>();

export function handleAuditRequest(db: AuditDb, m: WriterRequest): unknown {
  switch (m.kind) {
    case 'runProfiles': {
      let p = profiles.get(db);
      if (!p) profiles.set(db, (p = new ProfileDetectors(db)));
      return p.run(m.nowMs, m.limit, m.webhooks);
    }
    case 'catchUp':
      return null;
    case 'lastUse':
      return db.lastUse(m.query);
    case 'lookup':
      return db.lookup(m.query);
    case 'export':
      return readExportPage(db, m.query);
    case 'retentionPlan':
      return planRetention(db, m.cutoffMs);
    case 'prune':
      return pruneEvents(db, m.throughSeq, m.limit);
    case 'accessKeySeen':
      return db.accessKeySeenBefore(m.accessKeyId);
    case 'expandDelivery':
      return db.expandDelivery(m.deliveryId, m.targets, m.nowMs, m.note);
    case 'accessKeyOwner':
      return db.accessKeyOwner(m.accessKeyId) ?? null;
    case 'addAlerts':
      return db.addAlerts(m.alerts, m.webhooks, m.nowMs);
    case 'listAlerts':
      return db.listAlerts(m);
    case 'ackAlert':
      return db.ackAlert(m.alertId, m.accountId, m.by, m.at);
    case 'claimDeliveries':
      return db.claimDeliveries(m.nowMs, m.leaseMs, m.limit);
    case 'deliveryResult':
      return db.deliveryResult(m.deliveryId, m.ok, m.nowMs, m.nextAt, m.error);
    case 'head':
      return { head: db.head(), last: db.lastDigest() };
    case 'addDigest':
      return db.addDigest(m.row);
    case 'probe':
      db.probe();
      return null;
    default:
      throw new Error(`unknown audit writer request ${(m as { kind: string }).kind}`);
  }
}
