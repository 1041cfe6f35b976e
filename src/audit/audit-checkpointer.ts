/**
 * The audit log's checkpointer thread (started by the writer thread): copies committed WAL frames
 * into the database file with PASSIVE checkpoints every CHECKPOINT_EVERY_MS. Without it SQLite
 * checkpoints automatically inside a commit once the WAL holds ~1000 pages, copying and fsyncing
 * megabytes while the writer, and every caller waiting for a durable event, waits: most of the
 * durable log's p99 tail. A PASSIVE checkpoint never blocks the writer or readers; in WAL mode a
 * checkpoint syncs the WAL before copying and the database after, so no durable event depends on
 * frames that a later WAL restart overwrites. The writer keeps an automatic checkpoint at a much
 * larger WAL size (WRITER_AUTOCHECKPOINT_PAGES) as a bound, should this thread fall behind.
 */
import Database from 'better-sqlite3';
import { workerData } from 'node:worker_threads';
import { lowerThreadPriority } from './thread-priority.js';

const { file, everyMs, nice } = workerData as { file: string; everyMs: number; nice: number };
lowerThreadPriority(nice);
let db: Database.Database | undefined;

setInterval(() => {
  try {
    db ??= new Database(file, { fileMustExist: true });
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // The file is not there yet, the disk fails, or another checkpoint is running: the next tick
    // tries again, and the writer's own bound still holds.
    try {
      db?.close();
    } catch {
      // already unusable
    }
    db = undefined;
  }
}, everyMs);
