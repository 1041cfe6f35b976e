import type { AuditDb, DigestRow, LastUseQuery, LookupQuery } from './audit-db.js';

/** Requests the request thread sends to the audit writer thread (audit-writer.ts). */
export type WriterRequest =
  | { id: number; kind: 'append'; bodies: string[] }
  | { id: number; kind: 'probe' }
  | { id: number; kind: 'head' }
  | { id: number; kind: 'lookup'; query: LookupQuery }
  | { id: number; kind: 'lastUse'; query: LastUseQuery }
  | { id: number; kind: 'addDigest'; row: DigestRow }
  | { id: number; kind: 'close' };

export type WriterReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string; code?: string };

export function handleAuditRequest(db: AuditDb, m: WriterRequest): unknown {
  switch (m.kind) {
    case 'append':
      return db.append(m.bodies);
    case 'lastUse':
      return db.lastUse(m.query);
    case 'lookup':
      return db.lookup(m.query);
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
