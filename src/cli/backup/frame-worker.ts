/**
 * A worker thread of the parallel file-to-file path (parallel.ts): it waits for one job, then
 * claims frames one at a time from a shared counter until none are left. Each frame is read with a
 * positional read, sealed or opened with AES-256-GCM, and written with a positional write at the
 * place the message layout fixes for it; the writes go in frame order, one at a time (takeTurn).
 * A decrypted frame is written only after its tag verifies (into the caller's temporary file,
 * which is renamed only after every frame verified).
 */
import { parentPort } from 'node:worker_threads';
import { readSync, writeSync, writevSync } from 'node:fs';
import { createDecipheriv } from 'node:crypto';
import { FINAL_FRAME_MARKER, frameAad, frameIv, IV_BYTES, TAG_BYTES } from '../../format/backup-message/index.js';
import { CRYPTO_SLICE, sealFrame } from './message-stream.js';

/** What a worker is given (shared memory and file descriptors are process-wide). */
export interface FrameJob {
  mode: 'encrypt' | 'decrypt';
  inFd: number;
  /** -1: decrypt only to verify, nothing written. */
  outFd: number;
  /** The frame key. Each worker receives its own copy (structured clone) and zeroes it when done. */
  encKey: Uint8Array;
  messageId: Uint8Array;
  frameLength: number;
  /** Frames in the message (at least 1; the last is the final frame). */
  frames: number;
  /** Content length of the final frame. */
  lastLength: number;
  /** Where frame 1 starts in the ciphertext (the header length); plaintext starts at 0. */
  headerLength: number;
  /** BigInt64 slots: see SLOT_*. */
  shared: SharedArrayBuffer;
}

export type FrameWorkerReply = { ok: true } | { ok: false; format: boolean; frame: number; message: string };

/** Bytes of frame overhead: a regular frame is seq(4) + IV + content + tag; the final frame adds a marker and a length. */
export const REGULAR_OVERHEAD = 4 + IV_BYTES + TAG_BYTES;
export const FINAL_OVERHEAD = 8 + IV_BYTES + 4 + TAG_BYTES;

/** BigInt64 slots of the shared buffer. */
export const SLOT_NEXT_FRAME = 0;
export const SLOT_STOP = 1;
export const SLOT_PLAIN_DONE = 2;
/** The frame whose turn it is to be written (writes go in order: see takeTurn). */
export const SLOT_WRITE_TURN = 3;
export const SHARED_SLOTS = 4;

/**
 * Waits until frame seq may be written. Buffered writes to one file serialize on its inode lock in
 * the kernel, and a writer waiting for that lock spins on a core while the holder runs: two workers
 * writing at once burned more CPU spinning than they spent on AES. So frames are written strictly
 * in order, one at a time, while the other workers seal or open the next ones; a waiting worker
 * sleeps. Returns false if the job was stopped meanwhile.
 */
function takeTurn(slots: BigInt64Array, seq: number): boolean {
  const want = BigInt(seq);
  for (;;) {
    const turn = Atomics.load(slots, SLOT_WRITE_TURN);
    if (turn === want) return true;
    if (Atomics.load(slots, SLOT_STOP) !== 0n) return false;
    Atomics.wait(slots, SLOT_WRITE_TURN, turn, 100);
  }
}

function passTurn(slots: BigInt64Array, seq: number): void {
  Atomics.store(slots, SLOT_WRITE_TURN, BigInt(seq + 1));
  Atomics.notify(slots, SLOT_WRITE_TURN);
}

class FrameFormatError extends Error {}

function readFully(fd: number, buf: Buffer, len: number, position: number): void {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, position + got);
    if (n === 0) throw new FrameFormatError('the input ended early (it changed while being read)');
    got += n;
  }
}

function writeFully(fd: number, parts: Buffer[], position: number): void {
  let total = 0;
  for (const p of parts) total += p.length;
  const done = writevSync(fd, parts, position);
  if (done === total) return;
  // A short writev (rare: a signal, a nearly full disk): the rest in plain writes.
  const rest = Buffer.concat(parts).subarray(done);
  let at = 0;
  while (at < rest.length) at += writeSync(fd, rest, at, rest.length - at, position + done + at);
}

function run(job: FrameJob): FrameWorkerReply {
  const slots = new BigInt64Array(job.shared);
  // A view of this worker's copy of the key, not another copy: zeroed in finally.
  const key = Buffer.from(job.encKey.buffer, job.encKey.byteOffset, job.encKey.byteLength);
  const messageId = Buffer.from(job.messageId);
  const F = job.frameLength;
  const buf = Buffer.allocUnsafeSlow(F + FINAL_OVERHEAD);
  let seq = 0;
  try {
    for (;;) {
      if (Atomics.load(slots, SLOT_STOP) !== 0n) return { ok: true };
      seq = Number(Atomics.add(slots, SLOT_NEXT_FRAME, 1n)) + 1;
      if (seq > job.frames) return { ok: true };
      const final = seq === job.frames;
      const len = final ? job.lastLength : F;
      if (job.mode === 'encrypt') {
        readFully(job.inFd, buf, len, (seq - 1) * F);
        const parts = sealFrame(key, messageId, seq, buf.subarray(0, len), final);
        if (!takeTurn(slots, seq)) return { ok: true };
        writeFully(job.outFd, parts, job.headerLength + (seq - 1) * (F + REGULAR_OVERHEAD));
        passTurn(slots, seq);
      } else {
        const at = job.headerLength + (seq - 1) * (F + REGULAR_OVERHEAD);
        const size = final ? len + FINAL_OVERHEAD : F + REGULAR_OVERHEAD;
        readFully(job.inFd, buf, size, at);
        let p = 0;
        if (final) {
          if (buf.readUInt32BE(0) !== FINAL_FRAME_MARKER) throw new FrameFormatError('no final-frame marker where the layout puts it');
          p = 4;
        }
        if (buf.readUInt32BE(p) !== seq) throw new FrameFormatError('sequence number out of place');
        p += 4;
        const iv = buf.subarray(p, p + IV_BYTES);
        if (!iv.equals(frameIv(seq))) throw new FrameFormatError('IV is not the sequence number');
        p += IV_BYTES;
        if (final) {
          if (buf.readUInt32BE(p) !== len) throw new FrameFormatError('final frame length does not match the file size');
          p += 4;
        }
        const d = createDecipheriv('aes-256-gcm', key, iv);
        d.setAAD(frameAad(messageId, final, seq, len));
        d.setAuthTag(buf.subarray(p + len, p + len + TAG_BYTES));
        const plain: Buffer[] = [];
        for (let at = p; at < p + len; at += CRYPTO_SLICE) plain.push(d.update(buf.subarray(at, Math.min(p + len, at + CRYPTO_SLICE))));
        try {
          d.final();
        } catch {
          for (const b of plain) b.fill(0);
          throw new FrameFormatError('frame fails authentication');
        }
        if (job.outFd >= 0) {
          if (!takeTurn(slots, seq)) {
            for (const b of plain) b.fill(0);
            return { ok: true };
          }
          if (len > 0) writeFully(job.outFd, plain, (seq - 1) * F);
          passTurn(slots, seq);
        }
      }
      Atomics.add(slots, SLOT_PLAIN_DONE, BigInt(len));
    }
  } catch (e) {
    Atomics.store(slots, SLOT_STOP, 1n);
    Atomics.notify(slots, SLOT_WRITE_TURN);
    return { ok: false, format: e instanceof FrameFormatError, frame: seq, message: (e as Error).message };
  } finally {
    key.fill(0);
    buf.fill(0);
  }
}

parentPort?.once('message', (job: FrameJob) => {
  parentPort!.postMessage(run(job));
});
