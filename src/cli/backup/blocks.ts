/**
 * Input in blocks for the backup encryptor and decryptor, with read-ahead, and output with writev.
 *
 * Why not a Node stream: a stream pipeline allocates a fresh buffer per chunk, copies it again to
 * assemble frames, and reads only when asked; measured at 0.03 to 0.07 GB/s for 1 GiB file to file
 * (see the README's backup benchmark). Here a file is read with positional reads into a small pool
 * of reused buffers, one read always in flight on the libuv thread pool while the main thread
 * encrypts or decrypts the block before it; output goes to the sink (a file: AtomicFile in files.ts,
 * one write in flight while the next frame is processed). Memory stays at a few blocks whatever the
 * file size. File to file, unsigned messages take parallel.ts instead (frames on every core).
 */
import { open, type FileHandle } from 'node:fs/promises';

/**
 * A source of input blocks. A block is a view that stays valid until it is passed to release();
 * the source may then reuse its memory. An "exact" source returns blocks of exactly blockSize bytes
 * except the last (the encryptor relies on that to cut frames without copying).
 */
export interface BlockSource {
  next(): Promise<Buffer | undefined>;
  release(block: Buffer): void;
  /** Zeroes pooled memory (it held plaintext) and closes what the source opened. Idempotent. */
  close(): Promise<void>;
}

/** Blocks read ahead at most this far: one block in use, one delivered and waiting, one being read. */
const POOL_BLOCKS = 3;

/** Reads a file (or an already open handle) in blocks of exactly blockSize bytes, one read ahead. */
export class FileBlocks implements BlockSource {
  private fh: FileHandle | undefined;
  private opening: Promise<FileHandle> | undefined;
  private readonly pool: Buffer[] = [];
  private readonly free: Buffer[] = [];
  private inflight: Promise<Buffer | undefined> | undefined;
  private position: number;
  private eof = false;
  private closed = false;

  constructor(private readonly path: string, readonly blockSize: number, start = 0) {
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError('block size must be a positive integer');
    this.position = start;
  }

  private handle(): Promise<FileHandle> {
    return (this.opening ??= open(this.path, 'r').then((fh) => (this.fh = fh)));
  }

  private take(): Buffer | undefined {
    const b = this.free.pop();
    if (b) return b;
    if (this.pool.length >= POOL_BLOCKS) return undefined;
    // Own ArrayBuffer per block (not the shared slab), so release() can find the block by it.
    const nb = Buffer.allocUnsafeSlow(this.blockSize);
    this.pool.push(nb);
    return nb;
  }

  private async fill(buf: Buffer): Promise<Buffer | undefined> {
    const fh = await this.handle();
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, this.position);
      if (bytesRead === 0) break;
      n += bytesRead;
      this.position += bytesRead;
    }
    if (n < buf.length) this.eof = true;
    if (n === 0) {
      this.free.push(buf);
      return undefined;
    }
    return buf.subarray(0, n);
  }

  private readAhead(): void {
    if (this.inflight || this.eof || this.closed) return;
    const buf = this.take();
    if (!buf) return;
    this.inflight = this.fill(buf);
    // A failed read-ahead is reported by next(); do not let it become an unhandled rejection meanwhile.
    this.inflight.catch(() => undefined);
  }

  async next(): Promise<Buffer | undefined> {
    this.readAhead();
    const p = this.inflight;
    if (!p) return undefined;
    this.inflight = undefined;
    const b = await p;
    this.readAhead();
    return b;
  }

  release(block: Buffer): void {
    const buf = this.pool.find((p) => p.buffer === block.buffer);
    if (buf && !this.free.includes(buf)) this.free.push(buf);
    this.readAhead();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inflight?.catch(() => undefined);
    for (const b of this.pool) b.fill(0);
    const fh = this.fh ?? (this.opening ? await this.opening.catch(() => undefined) : undefined);
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Blocks from any async chunk stream (stdin, a pipe from pg_dump, a generator in a test). With
 * exact=false the chunks pass through as they come (no copy); with exact=true they are gathered
 * into reused blocks of exactly blockSize bytes (the last may be shorter).
 */
export class StreamBlocks implements BlockSource {
  private readonly it: AsyncIterator<Buffer | Uint8Array>;
  private readonly pool: Buffer[] = [];
  private readonly free: Buffer[] = [];
  private leftover: Buffer | undefined;
  private ended = false;

  constructor(source: AsyncIterable<Buffer | Uint8Array>, readonly blockSize: number, private readonly exact: boolean) {
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError('block size must be a positive integer');
    this.it = source[Symbol.asyncIterator]();
  }

  private async chunk(): Promise<Buffer | undefined> {
    if (this.leftover) {
      const l = this.leftover;
      this.leftover = undefined;
      return l;
    }
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const v = r.value;
      const b = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      if (b.length) return b;
    }
    return undefined;
  }

  async next(): Promise<Buffer | undefined> {
    if (!this.exact) return this.chunk();
    let buf: Buffer | undefined;
    let n = 0;
    while (n < this.blockSize) {
      const c = await this.chunk();
      if (!c) break;
      buf ??= this.free.pop() ?? this.newBlock();
      const k = Math.min(c.length, this.blockSize - n);
      c.copy(buf, n, 0, k);
      n += k;
      if (k < c.length) this.leftover = c.subarray(k);
    }
    return buf && n ? buf.subarray(0, n) : undefined;
  }

  private newBlock(): Buffer {
    const b = Buffer.allocUnsafeSlow(this.blockSize);
    this.pool.push(b);
    return b;
  }

  release(block: Buffer): void {
    if (!this.exact) return;
    const buf = this.pool.find((p) => p.buffer === block.buffer);
    if (buf && !this.free.includes(buf)) this.free.push(buf);
  }

  async close(): Promise<void> {
    for (const b of this.pool) b.fill(0);
    this.pool.length = 0;
    this.free.length = 0;
    // Stop the underlying stream (closes a file stream; a no-op for a finished generator).
    if (!this.ended) {
      this.ended = true;
      await this.it.return?.().catch(() => undefined);
    }
  }
}

export function isBlockSource(x: unknown): x is BlockSource {
  return typeof x === 'object' && x !== null && typeof (x as BlockSource).next === 'function' && typeof (x as BlockSource).release === 'function';
}

/**
 * Reads a message out of a BlockSource: small fields copied out, large runs handed over in place as
 * pieces (no copy), whatever the block boundaries. Every consumed byte goes to onConsume (the
 * signature hash of signed suites).
 */
export class PieceReader {
  private cur: Buffer | undefined;
  private at = 0;
  private readonly small = Buffer.alloc(64);
  consumed = 0;
  onConsume?: (b: Buffer) => void;

  constructor(private readonly src: BlockSource) {}

  /** Makes the current block non-empty; false at the end of input. */
  private async fill(): Promise<boolean> {
    while (!this.cur || this.at === this.cur.length) {
      if (this.cur) {
        this.src.release(this.cur);
        this.cur = undefined;
      }
      const b = await this.src.next();
      if (!b) return false;
      this.cur = b;
      this.at = 0;
    }
    return true;
  }

  /**
   * Parses a variable-length prefix (the header): parse sees all bytes so far and throws `incomplete`
   * errors (tested by isIncomplete) until it has enough. tooShort is thrown if input ends first.
   */
  async prefix<T extends { length: number }>(parse: (b: Buffer) => T, isIncomplete: (e: unknown) => boolean, atEnd: (bytesSeen: number) => Error): Promise<T> {
    let acc = Buffer.alloc(0);
    for (;;) {
      if (!(await this.fill())) throw atEnd(acc.length);
      const avail = this.cur!.subarray(this.at);
      const joined = acc.length ? Buffer.concat([acc, avail]) : avail;
      try {
        const r = parse(joined);
        const used = r.length - acc.length;
        this.onConsume?.(avail.subarray(0, used));
        this.at += used;
        this.consumed += r.length;
        return r;
      } catch (e) {
        if (!isIncomplete(e)) throw e;
        acc = Buffer.from(joined);
        this.at = this.cur!.length;
      }
    }
  }

  /** Exactly n (at most 64) bytes, valid until the next call; undefined if input ends first. */
  async field(n: number): Promise<Buffer | undefined> {
    if (n > this.small.length) throw new RangeError('field too long');
    if (!(await this.fill())) return undefined;
    let out: Buffer;
    if (this.cur!.length - this.at >= n) {
      out = this.cur!.subarray(this.at, this.at + n);
      this.at += n;
    } else {
      let got = 0;
      while (got < n) {
        if (!(await this.fill())) return undefined;
        const k = Math.min(n - got, this.cur!.length - this.at);
        this.cur!.copy(this.small, got, this.at, this.at + k);
        this.at += k;
        got += k;
      }
      out = this.small.subarray(0, n);
    }
    this.consumed += n;
    this.onConsume?.(out);
    return out;
  }

  /**
   * Hands the next n bytes to fn in one or more in-place pieces (each valid only during the call).
   * False if input ends first.
   */
  async pieces(n: number, fn: (piece: Buffer) => void): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) return false;
      const k = Math.min(left, this.cur!.length - this.at);
      const piece = this.cur!.subarray(this.at, this.at + k);
      this.onConsume?.(piece);
      fn(piece);
      this.at += k;
      this.consumed += k;
      left -= k;
    }
    return true;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }
}

/** Writes all of bufs at the handle's current position, resuming after short writes. */
export async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let rest = bufs;
  let want = rest.reduce((s, b) => s + b.length, 0);
  while (want > 0) {
    const { bytesWritten } = await fh.writev(rest);
    if (bytesWritten === 0) throw new Error('write made no progress');
    want -= bytesWritten;
    if (want === 0) break;
    // Drop what was written and continue with the remainder.
    let skip = bytesWritten;
    const next: Buffer[] = [];
    for (const b of rest) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      next.push(skip ? b.subarray(skip) : b);
      skip = 0;
    }
    rest = next;
  }
}
