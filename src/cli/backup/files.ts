/** File plumbing for backups: sources, sinks, atomic outputs (the progress bar is in progress.ts). */
import { constants, createReadStream, unlinkSync } from 'node:fs';
import { open, rename, unlink, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Sink } from './message-stream.js';
import { FileBlocks, writeAll, type BlockSource } from './blocks.js';

/** Block size for reading messages to decrypt or verify (frames may straddle blocks: no copy). */
export const READ_BLOCK = 2 << 20;

/**
 * Input from a file (read ahead in blocks of blockSize bytes; encryption passes its frame length)
 * or stdin ("-" or no path).
 */
export function source(path: string | undefined, blockSize = READ_BLOCK): AsyncIterable<Buffer> | BlockSource {
  if (!path || path === '-') return process.stdin as AsyncIterable<Buffer>;
  return new FileBlocks(path, blockSize);
}

/** A chunk stream over a file, for callers that want a plain async iterable (the header reader). */
export function streamSource(path: string | undefined): AsyncIterable<Buffer> {
  if (!path || path === '-') return process.stdin as AsyncIterable<Buffer>;
  return createReadStream(path, { highWaterMark: 1 << 20 });
}

export async function sizeOf(path: string | undefined): Promise<number | undefined> {
  if (!path || path === '-') return undefined;
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/** A sink that writes to stdout, honouring back-pressure (resolves once the last part is flushed). */
export function stdoutSink(): Sink {
  const writev = (bs: Buffer[]) =>
    new Promise<void>((resolve, reject) => {
      if (!bs.length) return resolve();
      bs.forEach((b, i) => process.stdout.write(b, i === bs.length - 1 ? (err) => (err ? reject(err) : resolve()) : undefined));
    });
  return { write: (b) => writev([b]), writev };
}

/** Discards everything (verify). */
export const nullSink: Sink = { write: () => undefined };

/** Temporary files of AtomicFiles not yet committed or aborted: removed if a signal ends the process. */
const liveTemps = new Set<string>();
const CLEANUP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let signalsHooked = false;

/**
 * Ctrl-C or a kill while `backup decrypt -o FILE` runs must not leave the plaintext decrypted so far
 * behind in `.FILE.keyhold-tmp-*`: remove every live temporary file, then die of the same signal
 * (exit status 128+n, as without the handler).
 */
function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of CLEANUP_SIGNALS) {
    process.once(sig, () => {
      for (const t of liveTemps) {
        try {
          unlinkSync(t);
        } catch {
          /* already gone */
        }
      }
      liveTemps.clear();
      for (const other of CLEANUP_SIGNALS) process.removeAllListeners(other);
      process.kill(process.pid, sig);
    });
  }
}

/**
 * Bytes written between background fdatasync calls (flush-behind). The page cache would otherwise
 * hold the whole output dirty until the fsync in commit(), which then waits for all of it at
 * once (0.8-0.9 s for 1 GiB on the benchmark machine); flushing behind the writes lets the disk
 * work while later frames are encrypted, and leaves the final fsync only the tail.
 */
export const FLUSH_BEHIND_BYTES = 32 << 20;

/** Bytes per O_DIRECT write of AtomicFile (two such staging buffers: one filling, one being written). */
export const DIRECT_STAGE_BYTES = 4 << 20;
/** File offsets and lengths of O_DIRECT writes are multiples of this (the largest common block size). */
const DIRECT_ALIGN = 4096;
/** Staging buffers: one filling, the others' writes in flight (the virtual disk is faster with several). */
const DIRECT_STAGES = 4;

/**
 * Two staging buffers at page-aligned addresses, as O_DIRECT wants. Node has no aligned allocator;
 * WebAssembly memory is mapped by V8 at page-aligned addresses (64 KiB pages), and a Buffer over it
 * starts at offset 0. If the kernel still refuses an address, AtomicFile falls back to buffered writes.
 */
function alignedStages(): Buffer[] {
  const pages = (DIRECT_STAGES * DIRECT_STAGE_BYTES) / 65536;
  const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } }).WebAssembly;
  const mem = Buffer.from(new wasm.Memory({ initial: pages, maximum: pages }).buffer);
  return Array.from({ length: DIRECT_STAGES }, (_, i) => mem.subarray(i * DIRECT_STAGE_BYTES, (i + 1) * DIRECT_STAGE_BYTES));
}

/**
 * A file written under a temporary name in the target directory and renamed over the target only
 * by commit(): nothing at the target path is ever partial or unauthenticated. commit() fsyncs the
 * file before the rename and the directory after it. The temporary file is removed on abort() and
 * when SIGINT, SIGTERM or SIGHUP ends the process.
 *
 * Output goes to the disk with O_DIRECT where the file system allows it: what the caller hands over
 * is copied into one of two reused, page-aligned 4 MiB staging buffers and written from there while
 * the other fills, so the data never goes through the page cache. On the benchmark VM, copying into
 * newly allocated page-cache pages was the largest CPU cost of a 1 GiB decrypt (the kernel's
 * copy_folio_from_iter_atomic: a third of all samples), and the data had to be written back to the
 * disk before the fsync anyway. The tail that is not a multiple of 4 KiB is written through a second,
 * buffered handle. Without O_DIRECT (tmpfs, some network file systems, or an EINVAL on the first
 * write) the file is written buffered, with a background fdatasync every FLUSH_BEHIND_BYTES.
 */
export class AtomicFile implements Sink {
  private constructor(
    readonly target: string,
    readonly temp: string,
    private readonly fh: FileHandle,
    /** Whether fh was opened with O_DIRECT (and no write has been refused since). */
    private direct: boolean,
  ) {
    if (direct) this.stages = alignedStages();
  }
  private pending: Promise<unknown> = Promise.resolve();
  private failed: unknown;
  private unflushed = 0;
  private flushing: Promise<void> | undefined;
  /** Direct mode: the staging buffers, the one filling (index), its fill level, the file offset it goes to. */
  private stages: Buffer[] | undefined;
  /** The write in flight from each stage (resolves once that buffer may be refilled). */
  private stageWrites: Promise<unknown>[] = [];
  private stage = 0;
  private staged = 0;
  /** How much of each stage ever held data (only that is zeroed at the end: untouched pages stay so). */
  private stageUsed: number[] = [];
  private position = 0;
  /** A buffered handle on the same file: the unaligned tail, and everything after a refused O_DIRECT write. */
  private bfh: FileHandle | undefined;

  /** opts.direct: false writes through the page cache even where O_DIRECT works (tests). */
  static async create(target: string, mode = 0o600, opts: { direct?: boolean } = {}): Promise<AtomicFile> {
    const temp = join(dirname(target), `.${basename(target)}.keyhold-tmp-${randomBytes(6).toString('hex')}`);
    hookSignals();
    let fh: FileHandle;
    let direct = typeof constants.O_DIRECT === 'number' && opts.direct !== false;
    try {
      fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (direct ? constants.O_DIRECT : 0), mode);
    } catch (e) {
      if (!direct || (e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      direct = false; // the file system does not do O_DIRECT
      fh = await open(temp, 'wx', mode);
    }
    liveTemps.add(temp);
    return new AtomicFile(target, temp, fh, direct);
  }

  /** Writes overlap with the caller's next frame: at most one write is in flight. */
  async write(b: Buffer): Promise<void> {
    return this.writev([b]);
  }

  async writev(bs: Buffer[]): Promise<void> {
    if (this.stages) return this.stageParts(bs);
    await this.pending;
    if (this.failed) throw this.failed;
    let n = 0;
    for (const b of bs) n += b.length;
    this.pending = writeAll(this.fh, bs).then(
      () => this.flushBehind(n),
      (e) => {
        this.failed = e;
      },
    );
  }

  /** Direct mode: copies into the filling stage; each full stage is written while the other fills. */
  private async stageParts(bs: Buffer[]): Promise<void> {
    for (const b of bs) {
      let at = 0;
      while (at < b.length) {
        const buf = this.stages![this.stage]!;
        const k = b.copy(buf, this.staged, at);
        at += k;
        this.staged += k;
        if (this.staged === DIRECT_STAGE_BYTES) await this.writeStage();
      }
    }
    if (this.failed) throw this.failed;
  }

  /** Starts writing the filling stage (its first `len` bytes) and moves on to the next free one. */
  private async writeStage(len = this.staged): Promise<void> {
    if (this.failed) throw this.failed;
    const i = this.stage;
    const buf = this.stages![i]!.subarray(0, len);
    this.stageUsed[i] = Math.max(this.stageUsed[i] ?? 0, len);
    const pos = this.position;
    this.position += len;
    const w = this.writeAt(buf, pos).then(
      () => this.flushBehind(len),
      (e) => {
        this.failed ??= e;
      },
    );
    this.stageWrites[i] = w;
    this.pending = Promise.all(this.stageWrites);
    this.stage = (i + 1) % this.stages!.length;
    this.staged = 0;
    await this.stageWrites[this.stage]; // that buffer's previous write, before it is refilled
    if (this.failed) throw this.failed;
  }

  /** Whether output still goes with O_DIRECT (for tests and diagnostics). */
  get directIo(): boolean {
    return !!this.stages && this.direct;
  }

  /** Writes buf at pos: with O_DIRECT while allowed and aligned, else through the buffered handle. */
  private async writeAt(buf: Buffer, pos: number): Promise<void> {
    if (this.direct && buf.length % DIRECT_ALIGN === 0) {
      try {
        await writeFully(this.fh, buf, pos);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        this.direct = false; // refused (alignment): the rest goes through the page cache
      }
    }
    this.bfh ??= await open(this.temp, constants.O_WRONLY);
    await writeFully(this.bfh, buf, pos);
  }

  /** Starts an fdatasync of what is written so far, unless one is still running. Not awaited here. */
  private flushBehind(written: number): void {
    this.unflushed += written;
    if (this.unflushed < FLUSH_BEHIND_BYTES || this.flushing) return;
    this.unflushed = 0;
    this.flushing = this.fh.datasync().then(
      () => {
        this.flushing = undefined;
      },
      (e) => {
        this.flushing = undefined;
        this.failed ??= e;
      },
    );
  }

  async commit(): Promise<void> {
    if (this.stages && this.staged) {
      // The last stage: its 4 KiB-aligned part directly, the rest (under 4 KiB) buffered.
      const buf = this.stages[this.stage]!;
      const len = this.staged;
      this.stageUsed[this.stage] = Math.max(this.stageUsed[this.stage] ?? 0, len);
      const aligned = len - (len % DIRECT_ALIGN);
      if (aligned) await this.writeStage(aligned);
      await this.pending;
      if (this.failed) throw this.failed;
      if (len > aligned) {
        this.bfh ??= await open(this.temp, constants.O_WRONLY);
        await writeFully(this.bfh, buf.subarray(aligned, len), this.position);
        this.position += len - aligned;
      }
    }
    await this.pending;
    await this.flushing;
    if (this.failed) throw this.failed;
    // fsync is per file, not per handle: it covers what went through either handle.
    await this.fh.sync();
    await this.bfh?.close();
    this.bfh = undefined;
    await this.fh.close();
    this.wipeStages();
    await rename(this.temp, this.target);
    liveTemps.delete(this.temp);
    try {
      const dir = await open(dirname(this.target), 'r');
      await dir.sync().catch(() => undefined);
      await dir.close();
    } catch {
      /* directory fsync is best effort */
    }
  }

  async abort(): Promise<void> {
    await this.pending.catch(() => undefined);
    await this.flushing?.catch(() => undefined);
    await this.bfh?.close().catch(() => undefined);
    await this.fh.close().catch(() => undefined);
    this.wipeStages();
    await unlink(this.temp).catch(() => undefined);
    liveTemps.delete(this.temp);
  }

  /** The staging buffers held plaintext (decrypt): zeroed once done. */
  private wipeStages(): void {
    if (!this.stages) return;
    this.stageUsed[this.stage] = Math.max(this.stageUsed[this.stage] ?? 0, this.staged); // an abort mid-stage
    this.stages.forEach((b, i) => b.fill(0, 0, this.stageUsed[i] ?? 0));
  }
}

/** Writes all of buf at pos, resuming after short writes. */
async function writeFully(fh: FileHandle, buf: Buffer, pos: number): Promise<void> {
  let at = 0;
  while (at < buf.length) {
    const { bytesWritten } = await fh.write(buf, at, buf.length - at, pos + at);
    if (bytesWritten === 0) throw new Error('write made no progress');
    at += bytesWritten;
  }
}
