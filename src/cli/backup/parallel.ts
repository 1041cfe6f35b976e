/**
 * File-to-file encryption, decryption and verification on several cores.
 *
 * In an unsigned framed message every frame has a fixed place: frame i of a message with header
 * length H and frame length F starts at H + (i-1)(F + 32) and holds plaintext bytes (i-1)F onwards.
 * So when both ends are regular files, worker threads (frame-worker.ts) can each claim the next
 * frame, read it with a positional read, seal or open it, and write it at its place: the crypto of
 * one core overlaps the reads and writes of another. Only the writes keep frame order, one at a
 * time (frame-worker.ts says why). The main thread only reports progress and starts the
 * flush-behind fdatasyncs of the output.
 *
 * The stream path (message-stream.ts) stays the reference and handles everything else: stdin and
 * stdout, signed messages (their signature hashes every byte in order), small files. When a message
 * to decrypt does not fit the layout its size implies, or a frame fails, this path gives up with
 * ParallelMismatch and the caller runs the stream path, which names the exact fault; nothing from
 * the failed attempt is kept (the caller's temporary output is discarded).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { open, type FileHandle } from 'node:fs/promises';
import {
  BackupFormatError, IncompleteHeader, MAX_SEQUENCE_NUMBER, parseHeader, PUBLIC_KEY_CONTEXT_KEY, SUITES,
  type EncryptedDataKey, type ParsedHeader,
} from '../../format/backup-message/index.js';
import {
  beginMessage, checkHeader, decryptStream, DEFAULT_FRAME_LENGTH, MAX_DECRYPT_FRAME_LENGTH, openMessage,
  type DecryptOptions, type DecryptResult, type EncryptOptions, type EncryptResult, type Keyring,
} from './message-stream.js';
import {
  FINAL_OVERHEAD, REGULAR_OVERHEAD, SHARED_SLOTS, SLOT_PLAIN_DONE, SLOT_STOP, SLOT_WRITE_TURN,
  type FrameJob, type FrameWorkerReply,
} from './frame-worker.js';
import { AtomicFile, nullSink, source } from './files.js';

/** Files of fewer frames than this take the stream path (starting workers would cost more than it saves). */
export const PARALLEL_MIN_FRAMES = 4;
/** Worker threads: one per core, at most this many. */
const MAX_WORKERS = 8;
/** How often the main thread reports progress and starts flush-behind fdatasyncs. */
const TICK_MS = 50;

/**
 * The keyring for the stream path's retry: hands out the data key the failed attempt already
 * unwrapped, once. forget() zeroes it if it was never handed out (the retry failed before using
 * it); whoever catches a ParallelMismatch must call forget() once the retry is over, whatever its end.
 */
export interface RetryKeyring extends Keyring {
  forget(): void;
}

/** The parallel path could not be taken or did not match the message: run the stream path instead. */
export class ParallelMismatch extends Error {
  constructor(
    message: string,
    /** A keyring that hands out the data key already unwrapped (no second KMS call), then the caller's. */
    readonly keyring: RetryKeyring,
  ) {
    super(message);
  }
}

/** Worker threads started ahead of need (their start-up overlaps the KMS call), each good for one job. */
export class FramePool {
  private readonly workers: Worker[];
  private constructor(n: number) {
    this.workers = Array.from({ length: n }, () => new Worker(new URL('./frame-worker.js', import.meta.url)));
    // Until a job is posted, an error (e.g. the worker file missing) is reported by run().
    for (const w of this.workers) w.on('error', () => undefined);
  }

  static start(n?: number): FramePool {
    return new FramePool(n ?? Math.min(MAX_WORKERS, Math.max(1, availableParallelism())));
  }

  /**
   * Runs the job on every worker (they share its frame counter) and resolves when all are done;
   * onTick is called every TICK_MS with the plaintext bytes done so far.
   */
  async run(job: Omit<FrameJob, 'shared'>, onTick: (plainDone: number) => void): Promise<FrameWorkerReply> {
    const shared = new SharedArrayBuffer(8 * SHARED_SLOTS);
    const slots = new BigInt64Array(shared);
    slots[SLOT_WRITE_TURN] = 1n;
    const replies = this.workers.map(
      (w) =>
        new Promise<FrameWorkerReply>((resolve) => {
          w.once('message', (r: FrameWorkerReply) => resolve(r));
          w.once('error', (e) => {
            Atomics.store(slots, SLOT_STOP, 1n);
            Atomics.notify(slots, SLOT_WRITE_TURN);
            resolve({ ok: false, format: false, frame: 0, message: `frame worker failed: ${e.message}` });
          });
          w.once('exit', () => resolve({ ok: false, format: false, frame: 0, message: 'frame worker exited early' }));
        }),
    );
    for (const w of this.workers) w.postMessage({ ...job, shared } satisfies FrameJob);
    const tick = setInterval(() => onTick(Number(Atomics.load(slots, SLOT_PLAIN_DONE))), TICK_MS);
    try {
      const all = await Promise.all(replies);
      onTick(Number(Atomics.load(slots, SLOT_PLAIN_DONE)));
      return all.find((r) => !r.ok && r.format) ?? all.find((r) => !r.ok) ?? { ok: true };
    } finally {
      clearInterval(tick);
    }
  }

  /** Stops workers that were started but not used (or are still running after a failure). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** How a plaintext of a given size splits into frames (an empty one is one empty final frame). */
export function frameLayout(plainBytes: number, frameLength: number): { frames: number; lastLength: number } {
  if (plainBytes === 0) return { frames: 1, lastLength: 0 };
  const frames = Math.ceil(plainBytes / frameLength);
  return { frames, lastLength: plainBytes - (frames - 1) * frameLength };
}

/** The plaintext layout implied by a message's total size, or undefined if no layout fits it. */
export function messageLayout(messageBytes: number, headerLength: number, frameLength: number): { frames: number; lastLength: number } | undefined {
  const rest = messageBytes - headerLength - FINAL_OVERHEAD;
  if (rest < 0) return undefined;
  const regular = Math.floor(rest / (frameLength + REGULAR_OVERHEAD));
  const lastLength = rest - regular * (frameLength + REGULAR_OVERHEAD);
  if (lastLength > frameLength || regular + 1 > MAX_SEQUENCE_NUMBER) return undefined;
  return { frames: regular + 1, lastLength };
}

async function regularFile(path: string): Promise<{ fh: FileHandle; size: number } | undefined> {
  const fh = await open(path, 'r');
  const s = await fh.stat();
  if (!s.isFile()) {
    await fh.close();
    return undefined;
  }
  return { fh, size: s.size };
}

/** Whether encryptFileParallel takes a file of this size (unsigned suite only). */
export function parallelEncryptWorthIt(size: number | undefined, frameLength = DEFAULT_FRAME_LENGTH): boolean {
  return size !== undefined && size >= PARALLEL_MIN_FRAMES * frameLength && frameLayout(size, frameLength).frames <= MAX_SEQUENCE_NUMBER;
}

/**
 * Encrypts the regular file at inPath into out (unsigned suite). The input must not change while
 * it is read: if its size differs at the end, this fails and the caller's output is discarded.
 */
export async function encryptFileParallel(inPath: string, out: AtomicFile, o: EncryptOptions & { pool: FramePool }): Promise<EncryptResult> {
  const suiteId = o.suiteId!;
  if (SUITES[suiteId]?.signatureCurve) throw new RangeError('the parallel path does not sign: use encryptStream');
  const frameLength = o.frameLength ?? DEFAULT_FRAME_LENGTH;
  if (!Number.isInteger(frameLength) || frameLength < 1 || frameLength > MAX_DECRYPT_FRAME_LENGTH) throw new RangeError(`frame length must be 1..${MAX_DECRYPT_FRAME_LENGTH}`);
  const context: Record<string, string> = { ...(o.context ?? {}) };
  if (PUBLIC_KEY_CONTEXT_KEY in context) throw new BackupFormatError(`the context key ${PUBLIC_KEY_CONTEXT_KEY} is reserved`);
  const input = await regularFile(inPath);
  if (!input) throw new RangeError(`${inPath} is not a regular file`);
  try {
    const { frames, lastLength } = frameLayout(input.size, frameLength);
    const { encKey, messageId, body, authTag } = await beginMessage(o.keyring, context, suiteId, frameLength);
    try {
      const headerBytes = Buffer.concat([body, authTag]);
      await out.writeAt(headerBytes, 0);
      let written = 0;
      const r = await o.pool.run(
        { mode: 'encrypt', inFd: input.fh.fd, outFd: out.fd, encKey, messageId, frameLength, frames, lastLength, headerLength: headerBytes.length },
        (done) => {
          out.noteWritten(done - written);
          written = done;
          o.onProgress?.(done);
        },
      );
      if (!r.ok) throw new Error(r.format ? `${inPath}: ${r.message}` : r.message);
      const after = await input.fh.stat();
      const probe = await input.fh.read(Buffer.alloc(1), 0, 1, input.size);
      if (after.size !== input.size || probe.bytesRead !== 0) throw new Error(`${inPath} changed while it was being encrypted (its size went from ${input.size} to ${after.size} bytes); nothing was written`);
      const header = parseHeader(headerBytes);
      return { header, plaintextBytes: input.size, ciphertextBytes: headerBytes.length + (frames - 1) * (frameLength + REGULAR_OVERHEAD) + lastLength + FINAL_OVERHEAD, frames };
    } finally {
      encKey.fill(0);
    }
  } finally {
    await input.fh.close();
  }
}

/**
 * Wraps the caller's keyring for the parallel attempt: keeps the data key it unwraps (the attempt
 * gets a copy, which openMessage zeroes), so that if the attempt fails the stream path can start
 * again without a second KMS call (and a second Decrypt in the audit log). The kept key is zeroed
 * by forget() (the attempt succeeded or failed otherwise), or passes to handOver()'s keyring, which
 * either hands it to the retry (whose openMessage zeroes it) or zeroes it in its own forget().
 */
class KeepingKeyring implements Keyring {
  private kept: { dataKey: Buffer; keyArn: string } | undefined;
  constructor(private readonly inner: Keyring) {}
  generate(context: Record<string, string>) {
    return this.inner.generate(context);
  }
  async decrypt(edks: EncryptedDataKey[], context: Record<string, string>) {
    const r = await this.inner.decrypt(edks, context);
    this.forget();
    this.kept = { dataKey: r.dataKey, keyArn: r.keyArn };
    return { dataKey: Buffer.from(r.dataKey), keyArn: r.keyArn };
  }
  /** A keyring for the retry that hands out the kept data key once, then defers to the caller's. */
  handOver(): RetryKeyring {
    let kept = this.kept;
    this.kept = undefined;
    const inner = this.inner;
    return {
      generate: (context) => inner.generate(context),
      decrypt: async (edks, context) => {
        const k = kept;
        kept = undefined;
        return k ?? inner.decrypt(edks, context);
      },
      forget: () => {
        kept?.dataKey.fill(0);
        kept = undefined;
      },
    };
  }
  forget(): void {
    this.kept?.dataKey.fill(0);
    this.kept = undefined;
  }
}

async function readFileHeaderAt(fh: FileHandle, size: number): Promise<ParsedHeader | undefined> {
  for (let n = 4096; ; n *= 4) {
    const want = Math.min(n, size);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await fh.read(buf, 0, want, 0);
    try {
      return parseHeader(buf.subarray(0, bytesRead));
    } catch (e) {
      if (!(e instanceof IncompleteHeader) || want >= size) return undefined;
    }
  }
}

/**
 * Decrypts (out given) or verifies (out undefined) the regular file at inPath. Returns undefined
 * when the message is not one this path takes (signed, small, not a regular file, a size no layout
 * fits, or workers: 0), before any KMS call; throws ParallelMismatch when a frame does not verify
 * or sits where the layout does not expect it. In both cases the caller runs the stream path
 * (with the ParallelMismatch's keyring, then calling its forget()).
 */
export async function decryptFileParallel(inPath: string, out: AtomicFile | undefined, o: DecryptOptions & { workers?: number }): Promise<DecryptResult | undefined> {
  if (o.workers === 0) return undefined;
  const input = await regularFile(inPath);
  if (!input) return undefined;
  let pool: FramePool | undefined;
  let keeping: KeepingKeyring | undefined;
  try {
    const header = await readFileHeaderAt(input.fh, input.size);
    if (!header || SUITES[header.suiteId]?.signatureCurve) return undefined;
    const layout = messageLayout(input.size, header.length, header.frameLength);
    if (!layout || layout.frames < PARALLEL_MIN_FRAMES) return undefined;
    checkHeader(header, o);
    pool = FramePool.start(o.workers);
    keeping = new KeepingKeyring(o.keyring);
    const { encKey, keyArn } = await openMessage(header, { keyring: keeping, onHeader: o.onHeader });
    try {
      let written = 0;
      const r = await pool.run(
        {
          mode: 'decrypt', inFd: input.fh.fd, outFd: out ? out.fd : -1, encKey, messageId: header.messageId,
          frameLength: header.frameLength, frames: layout.frames, lastLength: layout.lastLength, headerLength: header.length,
        },
        (done) => {
          out?.noteWritten(done - written);
          written = done;
          o.onProgress?.(header.length + done + Math.ceil(done / header.frameLength) * REGULAR_OVERHEAD);
        },
      );
      const after = await input.fh.stat();
      if (!r.ok && !r.format) throw new Error(r.message);
      if (!r.ok || after.size !== input.size) {
        // The stream path reads the header again itself and re-derives everything from the data key.
        throw new ParallelMismatch(r.ok ? 'the file changed while it was read' : `frame ${r.frame}: ${r.message}`, keeping.handOver());
      }
      const plaintextBytes = (layout.frames - 1) * header.frameLength + layout.lastLength;
      return { header, keyArn, plaintextBytes, ciphertextBytes: input.size, frames: layout.frames, signed: false };
    } finally {
      encKey.fill(0);
    }
  } finally {
    keeping?.forget();
    await pool?.close();
    await input.fh.close();
  }
}

/**
 * Decrypts the message in a file to a file (output given) or verifies it without writing plaintext:
 * on every core when it can, else, or when that attempt gives up, on the stream path, which then
 * names the fault. The output appears only after the last frame verified; a dropped attempt's
 * temporary file is removed before the stream path starts its own.
 */
export async function decryptFile(inPath: string, o: DecryptOptions & { workers?: number }, output?: { path: string; durable: boolean }): Promise<DecryptResult> {
  const toFile = async (run: (f: AtomicFile | undefined) => Promise<DecryptResult | undefined>): Promise<DecryptResult | undefined> => {
    if (!output) return run(undefined);
    const f = await AtomicFile.create(output.path, { durable: output.durable });
    try {
      const r = await run(f);
      if (r) await f.commit();
      else await f.abort();
      return r;
    } catch (e) {
      try {
        await f.abort();
      } catch (abortError) {
        if (e instanceof ParallelMismatch) e.keyring.forget(); // no retry then
        throw abortError;
      }
      throw e;
    }
  };
  let retryKeyring: RetryKeyring | undefined;
  if (o.workers !== 0) {
    try {
      const r = await toFile((f) => decryptFileParallel(inPath, f, o));
      if (r) return r;
    } catch (e) {
      if (!(e instanceof ParallelMismatch)) throw e;
      retryKeyring = e.keyring;
    }
  }
  try {
    return (await toFile((f) => decryptStream(source(inPath), f ?? nullSink, retryKeyring ? { ...o, keyring: retryKeyring } : o)))!;
  } finally {
    // The retry may fail before it takes the kept data key (its output cannot be created, the file
    // changed and its header no longer parses or checks): zero it then.
    retryKeyring?.forget();
  }
}

/** Verifies the message in a file without writing plaintext (decryptFile without an output). */
export function verifyFile(path: string, o: DecryptOptions & { workers?: number }): Promise<DecryptResult> {
  return decryptFile(path, o);
}
