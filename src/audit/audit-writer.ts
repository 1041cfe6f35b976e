/**
 * The audit writer thread: owns the audit database connection, so that SQLite's commits and their
 * fsyncs never stop the request thread. It answers one message at a time, in order; the request
 * thread sends one batch of events at a time (group commit: whatever arrived while the previous
 * commit was on its way to disk goes into the next one).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AuditDb } from './audit-db.js';
import { handleAuditRequest, type WriterRequest, type WriterReply } from './writer-protocol.js';

const file = (workerData as { file: string }).file;
let db: AuditDb | undefined;

function open(): AuditDb {
  // Opened lazily and again after a failure to open: the writer recovers when the disk does.
  return (db ??= AuditDb.open(file));
}

parentPort!.on('message', (m: WriterRequest) => {
  let reply: WriterReply;
  try {
    if (m.kind === 'close') {
      db?.close();
      db = undefined;
      reply = { id: m.id, ok: true, result: null };
    } else {
      reply = { id: m.id, ok: true, result: handleAuditRequest(open(), m) };
    }
  } catch (e) {
    const err = e as { message?: string; code?: string };
    reply = { id: m.id, ok: false, error: err.message ?? String(e), code: err.code };
  }
  parentPort!.postMessage(reply);
});
