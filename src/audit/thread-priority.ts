/**
 * Lowers the calling thread's scheduling priority (Linux nice value; per thread there). The audit
 * log's database threads (writer, checkpointer) do work that may lag by design (moving journal
 * events in, indexing, checkpoints); when the machine's cores are all busy they yield to the
 * request thread, which every caller waits for, and catch up in the gaps. Elsewhere, or if the
 * thread id cannot be read, it does nothing.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

export function lowerThreadPriority(nice: number): boolean {
  try {
    // /proc/thread-self -> "<pid>/task/<tid>"; setpriority(PRIO_PROCESS, tid) applies to that thread alone.
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
