/**
 * The audit writer thread: owns the audit database connection, so that SQLite's commits and their
 * fsyncs never stop the request thread. It answers one message at a time, in order; the request
 * thread sends one batch of events at a time (group commit: whatever arrived while the previous
 * commit was on its way to disk goes into the next one).
 *
 * Appends are committed without waiting for the disk and answered twice: `committed` at once, so
 * the request thread can send the next batch, and finally once an fdatasync of the WAL file that
 * began after the commit has completed (on libuv's thread pool). So the next batch is committed
 * while the previous one's fsync runs, and each caller is answered only after an fsync that
 * covers its event, as durable as synchronous=FULL.
 *
 * After the commits, and off their path, it indexes what they wrote (AuditDb.indexPending) at most
 * every INDEX_EVERY_MS, so that the index grows in a few large transactions instead of one per
 * commit. Queries index whatever is still missing before they read.
 */
import { fdatasync } from 'node:fs';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { AuditDb, INDEX_CHUNK } from './audit-db.js';
import { handleAuditRequest, type WriterRequest, type WriterReply } from './writer-protocol.js';

const file = (workerData as { file: string }).file;
let db: AuditDb | undefined;
/** How long committed events may wait to be indexed (queries do not wait for this: they catch up). */
const INDEX_EVERY_MS = 200;
let indexTimer: NodeJS.Timeout | undefined;

function indexSoon(delayMs = INDEX_EVERY_MS): void {
  indexTimer ??= setTimeout(() => {
    indexTimer = undefined;
    try {
      // One chunk per turn: appends that arrive meanwhile are not held up by a long catch-up.
      if (db && db.indexPending() === INDEX_CHUNK) indexSoon(0);
    } catch {
      // Tried again after the next commit; queries catch up by themselves.
    }
  }, delayMs);
}

/** Checkpoints run in their own thread (audit-checkpointer.ts), off the commit path. */
const CHECKPOINT_EVERY_MS = 100;
/** The writer's own automatic checkpoint, a bound on the WAL (~64 MB) if the checkpointer falls behind. */
const WRITER_AUTOCHECKPOINT_PAGES = 16384;
let checkpointer: Worker | undefined;

function open(): AuditDb {
  // Opened lazily and again after a failure to open: the writer recovers when the disk does.
  if (!db) {
    db = AuditDb.open(file);
    db.setWalAutoCheckpoint(WRITER_AUTOCHECKPOINT_PAGES);
    checkpointer ??= new Worker(new URL('./audit-checkpointer.js', import.meta.url), { workerData: { file, everyMs: CHECKPOINT_EVERY_MS } });
  }
  return db;
}

parentPort!.on('message', (m: WriterRequest) => {
  let reply: WriterReply;
  try {
    if (m.kind === 'append') {
      const d = open();
      const result = d.appendUnsynced(m.bodies);
      const fd = d.walFd();
      parentPort!.postMessage({ id: m.id, ok: true, result, committed: true } satisfies WriterReply);
      fdatasync(fd, (e) => {
        const err = e as (NodeJS.ErrnoException | null);
        parentPort!.postMessage((err ? { id: m.id, ok: false, error: `fsync of the audit log failed: ${err.message}`, code: err.code } : { id: m.id, ok: true, result }) satisfies WriterReply);
      });
      indexSoon();
      return;
    }
    if (m.kind === 'close') {
      if (indexTimer) clearTimeout(indexTimer);
      indexTimer = undefined;
      void checkpointer?.terminate();
      checkpointer = undefined;
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
