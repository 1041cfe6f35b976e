/**
 * The audit log's intake journal: how an event becomes durable before its request is answered,
 * without the audit database's commit, checkpoint and thread hand-offs on the request path.
 *
 * The request thread (sqlite-audit-log.ts) appends each batch of events to a journal file of its own,
 * DATA_DIR/audit/intake/<pid>-<instance>-<gen>.jsonl, one event JSON per line, exactly the bytes that will
 * be hashed, with one write per batch (group commit) to a file opened O_DSYNC (the write returns
 * once its data is on disk, as write + fdatasync would), and answers the batch's callers only after
 * that write. The file is zero-filled ahead of the events (JOURNAL_PREFILL_BYTES), so after the last
 * event line come zero bytes, never part of an event. The audit writer thread (audit-writer.ts) then moves the
 * journal's events into the hash-chained audit database (audit-db.ts) in larger transactions,
 * every INGEST_EVERY_MS and before it answers any query, and deletes a journal once all its events
 * are in the database and the database's WAL is fsynced. The database stays the log of record:
 * verification, queries, retention and digests read it; the journal only carries events across the
 * gap of a few milliseconds, and across a crash: on start, the journals of processes that are gone
 * are moved in first.
 *
 * The writer never reads past what the request thread has durably written: the journal's durable length is
 * shared through a SharedArrayBuffer (packDurable). A batch whose write fails is refused
 * (its callers fail closed) and its bytes are never moved in: the journal is sealed at the length
 * before the batch and a new one is started. How far each journal has been moved in is kept in the
 * database's meta table (`intake:<file name>`), in the same transaction as the events, so a crash
 * at any point neither loses nor repeats an event; several processes may move in the same orphaned
 * journal at once (the watermark is read under the write lock).
 */
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';

/** How often the writer thread moves new journal events into the database. */
export const INGEST_EVERY_MS = 50;
/** A journal is sealed and a new one started once it holds this many bytes. */
export const JOURNAL_ROTATE_BYTES = 64 * 1024 * 1024;
/**
 * The journal is zero-filled this far ahead of its events (in the background, on libuv's thread
 * pool), so that an event write overwrites blocks that are already allocated, written and counted
 * in the file's size: an O_DSYNC write then flushes the data alone, where an append must also
 * commit the file system's journal (the new size and blocks). Measured on this VM's ext4: about half
 * the kernel CPU per write and a shorter flush. The zeros are never moved in: the writer reads only
 * to the durable length, and a journal left by a crash is read up to its first zero byte (no event
 * line holds one: JSON escapes control characters).
 */
export const JOURNAL_PREFILL_BYTES = 1024 * 1024;
/**
 * The zero fill runs only while the journal's file system has this much free space (statfs), so it
 * never takes the last space of a filling disk: there events are appended, and fail closed when
 * the disk is full, as without the fill.
 */
export const PREFILL_MIN_FREE_BYTES = 64 * 1024 * 1024;
/** Bytes of journal moved in per database transaction at most. */
export const INGEST_CHUNK_BYTES = 8 * 1024 * 1024;

export function intakeDirOf(dbFile: string): string {
  return join(dirname(dbFile), 'intake');
}

/** A journal's file name: the writing process, its audit log instance and the journal generation. */
export function journalName(instance: string, gen: number): string {
  return `${process.pid}-${instance}-${gen}.jsonl`;
}

export function newInstanceId(): string {
  return randomUUID();
}

/** The pid and audit log instance in a journal's file name, or undefined if it is not one. */
export function parseJournalName(name: string): { pid: number; instance: string } | undefined {
  const m = /^(\d+)-([0-9a-f-]{36})-\d+\.jsonl$/.exec(name);
  return m ? { pid: Number(m[1]), instance: m[2]! } : undefined;
}

export function watermarkKey(name: string): string {
  return `intake:${name}`;
}

/**
 * The journal generation and its durable length in one 64-bit value, so the writer reads both
 * at once: generation in the top 16 bits, length (up to 2^47 bytes) below.
 */
const LENGTH_BITS = 47n;
export function packDurable(gen: number, length: number): bigint {
  return (BigInt(gen & 0xffff) << LENGTH_BITS) | BigInt(length);
}
export function unpackDurable(v: bigint): { gen: number; length: number } {
  return { gen: Number(v >> LENGTH_BITS), length: Number(v & ((1n << LENGTH_BITS) - 1n)) };
}

/** Messages the request thread sends the writer about its journals. */
export interface JournalAnnouncement {
  /** The new current journal (absolute path) and its generation. */
  path: string;
  gen: number;
  /** The journal it replaces, with the length that was durably written (nothing after it is moved in). */
  sealed?: { gen: number; length: number };
}
