/**
 * The audit writer thread: owns the audit database connection, so that SQLite's work never stops
 * the request thread. It answers one message at a time, in order.
 *
 * Its main job is moving events from the request thread's intake journals into the hash-chained
 * database (intake.ts says why and how): every INGEST_EVERY_MS, and before it answers any other
 * request, so a query, a digest or a verification sees every event whose request was answered.
 * It never reads past a journal's durable length (shared by the request thread). On start, and
 * every ORPHAN_SCAN_MS, it also moves in the journals of processes that are gone (a crash, or a
 * sibling worker that stopped), then deletes them.
 *
 * After the moves, and off their path, it indexes what they wrote (AuditDb.indexPending) at most
 * every INDEX_EVERY_MS. Queries index whatever is still missing before they read.
 *
 * If moving events in fails (the disk is full or read-only), it tells the request thread, which
 * refuses new events (fail closed) until a later move succeeds.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { AuditDb, INDEX_CHUNK } from './audit-db.js';
import { INGEST_CHUNK_BYTES, INGEST_EVERY_MS, intakeDirOf, parseJournalName, unpackDurable, type JournalAnnouncement } from './intake.js';
import { lowerThreadPriority } from './thread-priority.js';
import { handleAuditRequest, type WriterData, type WriterRequest, type WriterReply, type WriterNotice } from './writer-protocol.js';

const { file, durable: durableBuffer, instance, journals: known, failing: failingBefore } = workerData as WriterData;
const durable = new BigInt64Array(durableBuffer);
const intakeDir = intakeDirOf(file);
/** Nice value of this thread and the checkpointer's: below the request thread's (thread-priority.ts). */
const WRITER_NICE = 10;
lowerThreadPriority(WRITER_NICE);
let db: AuditDb | undefined;
/** How long committed events may wait to be indexed (queries do not wait for this: they catch up). */
const INDEX_EVERY_MS = 200;
/** How often journals of processes that are gone are looked for. */
const ORPHAN_SCAN_MS = 5_000;
let indexTimer: NodeJS.Timeout | undefined;

function indexSoon(delayMs = INDEX_EVERY_MS): void {
  indexTimer ??= setTimeout(() => {
    indexTimer = undefined;
    try {
      // One chunk per turn: moves that arrive meanwhile are not held up by a long catch-up.
      if (db && db.indexPending() === INDEX_CHUNK) indexSoon(0);
    } catch {
      // Tried again after the next move; queries catch up by themselves.
    }
  }, delayMs);
}

/** Checkpoints run in their own thread (audit-checkpointer.ts), off the writer's path. */
const CHECKPOINT_EVERY_MS = 100;
/** The writer's own automatic checkpoint, a bound on the WAL (~64 MB) if the checkpointer falls behind. */
const WRITER_AUTOCHECKPOINT_PAGES = 16384;
let checkpointer: Worker | undefined;

function open(): AuditDb {
  // Opened lazily and again after a failure to open: the writer recovers when the disk does.
  if (!db) {
    db = AuditDb.open(file);
    db.setWalAutoCheckpoint(WRITER_AUTOCHECKPOINT_PAGES);
    checkpointer ??= new Worker(new URL('./audit-checkpointer.js', import.meta.url), { workerData: { file, everyMs: CHECKPOINT_EVERY_MS, nice: WRITER_NICE } });
  }
  return db;
}

/** A journal being moved in. */
interface Journal {
  path: string;
  name: string;
  /** This process's journal generation; undefined for another process's (orphaned) journal. */
  gen?: number;
  /** Where moving in stops: the sealed length of this process's journal; undefined while it is current. */
  sealedLength?: number;
  fd?: number;
  /** Bytes moved in so far (the database's watermark, as last seen). */
  offset?: number;
}

/**
 * This process's journals (the last one current) and orphaned ones, in the order they are moved in.
 * A thread started again after the previous one exited begins with every journal of this instance
 * that is still on disk (WriterData.journals): the sealed ones its predecessor had not finished are
 * moved in from their watermarks, then deleted, as any other.
 */
const journals: Journal[] = known.map((j) => ({ path: j.path, name: basename(j.path), gen: j.gen, sealedLength: j.sealedLength }));
let lastOrphanScan = 0;
/** Started as failing when the previous thread had reported so: the first move that works says so. */
let failing = failingBefore;

function notice(n: WriterNotice): void {
  parentPort!.postMessage(n);
}

function scanOrphans(): void {
  lastOrphanScan = Date.now();
  let names: string[];
  try {
    names = readdirSync(intakeDir);
  } catch {
    return;
  }
  for (const name of names) {
    const owner = parseJournalName(name);
    if (owner === undefined || owner.instance === instance || journals.some((j) => j.name === name)) continue;
    // A process that is gone, or an earlier life of this one (the pid came back).
    if (owner.pid !== process.pid && alive(owner.pid)) continue;
    journals.unshift({ path: join(intakeDir, name), name });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The byte offset up to which journal `j` may be moved in now. */
function limitOf(j: Journal): number | undefined {
  if (j.gen === undefined) {
    // An orphan: everything in it (complete lines only; a torn last line was never acknowledged).
    return fstatSync(j.fd!).size;
  }
  if (j.sealedLength !== undefined) return j.sealedLength;
  const d = unpackDurable(Atomics.load(durable, 0));
  return d.gen === (j.gen & 0xffff) ? d.length : undefined;
}

/**
 * Moves every event that may be moved in now into the database. Throws if the database cannot
 * take them (they stay in their journals and are moved in later).
 */
function ingestAll(): void {
  if (Date.now() - lastOrphanScan > ORPHAN_SCAN_MS) scanOrphans();
  if (journals.length === 0) return;
  const d = open();
  let moved = false;
  for (let i = 0; i < journals.length; ) {
    const j = journals[i]!;
    if (j.fd === undefined) {
      try {
        j.fd = openSync(j.path, 'r');
      } catch (e) {
        // A journal nobody writes to any more, already moved in and deleted (by another process, for
        // an orphan; by an earlier writer thread that exited before forgetting it): nothing is left.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || (j.gen !== undefined && j.sealedLength === undefined)) throw e;
        d.forgetIntake(j.name);
        journals.splice(i, 1);
        continue;
      }
    }
    j.offset ??= d.intakeWatermark(j.name);
    const limit = limitOf(j);
    while (limit !== undefined && j.offset < limit) {
      const n = Math.min(limit - j.offset, INGEST_CHUNK_BYTES);
      const buf = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const r = readSync(j.fd, buf, got, n - got, j.offset + got);
        if (r === 0) break;
        got += r;
      }
      // The journal is zero-filled ahead of its events (intake.ts): an orphan's events end at its
      // first zero byte (none is in an event line; anything after it was never answered).
      const zero = buf.subarray(0, got).indexOf(0);
      if (zero !== -1) got = zero;
      const lines: { body: string; end: number }[] = [];
      let start = 0;
      for (let nl = buf.indexOf(10, 0); nl !== -1 && nl < got; nl = buf.indexOf(10, start)) {
        if (nl > start) lines.push({ body: buf.toString('utf8', start, nl), end: j.offset + nl + 1 });
        start = nl + 1;
      }
      if (lines.length === 0) break; // A torn line at an orphan's end, or a line longer than a chunk.
      j.offset = d.ingest(j.name, lines);
      moved = true;
    }
    const finished = j.gen === undefined || j.sealedLength !== undefined;
    if (finished && (limit === undefined || j.offset >= limit || j.gen === undefined)) {
      // Every event of a journal nobody writes to any more is in the database: make that durable,
      // then the journal can go.
      d.syncWal();
      closeSync(j.fd);
      try {
        unlinkSync(j.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      d.forgetIntake(j.name);
      journals.splice(i, 1);
      continue;
    }
    i++;
  }
  if (moved) indexSoon();
}

/** ingestAll, telling the request thread when moving in starts or stops failing. */
function ingestReporting(): void {
  try {
    ingestAll();
    if (failing) {
      failing = false;
      notice({ notice: 'ingest', ok: true });
    }
  } catch (e) {
    const err = e as { message?: string; code?: string };
    if (!failing) notice({ notice: 'ingest', ok: false, error: err.message ?? String(e), code: err.code });
    failing = true;
    throw e;
  }
}

const ingestTimer = setInterval(() => {
  try {
    ingestReporting();
  } catch {
    // Reported; tried again on the next tick.
  }
}, INGEST_EVERY_MS);

/** Idempotent: a thread started again may learn of a journal both from WriterData and from an announcement. */
function announce(a: JournalAnnouncement): void {
  if (a.sealed) {
    const old = journals.find((j) => j.gen === a.sealed!.gen);
    if (old) old.sealedLength = a.sealed.length;
  }
  if (!journals.some((j) => j.gen === a.gen)) journals.push({ path: a.path, name: basename(a.path), gen: a.gen });
}

parentPort!.on('message', (m: WriterRequest) => {
  let reply: WriterReply;
  try {
    if (m.kind === 'journal') {
      announce(m.journal);
      reply = { id: m.id, ok: true, result: null };
    } else if (m.kind === 'close') {
      // The request thread has stopped writing: its current journal ends at its durable length.
      const current = journals.find((j) => j.gen !== undefined && j.sealedLength === undefined);
      if (current) current.sealedLength = limitOf(current) ?? 0;
      let error: unknown;
      try {
        ingestReporting();
      } catch (e) {
        error = e;
      }
      clearInterval(ingestTimer);
      if (indexTimer) clearTimeout(indexTimer);
      indexTimer = undefined;
      void checkpointer?.terminate();
      checkpointer = undefined;
      for (const j of journals) if (j.fd !== undefined) closeSync(j.fd);
      db?.close();
      db = undefined;
      if (error) throw error;
      reply = { id: m.id, ok: true, result: null };
    } else {
      // Every event whose request was answered is in the database before anything reads it.
      ingestReporting();
      reply = { id: m.id, ok: true, result: handleAuditRequest(open(), m) };
    }
  } catch (e) {
    const err = e as { message?: string; code?: string };
    reply = { id: m.id, ok: false, error: err.message ?? String(e), code: err.code };
  }
  parentPort!.postMessage(reply);
});
