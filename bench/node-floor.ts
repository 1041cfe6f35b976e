/**
 * The floor of file-to-file AES-256-GCM in Node on this machine: the least a Node program does to
 * encrypt a file frame by frame with node:crypto, with nothing of Keyhold's around it (no process
 * start-up, no KMS call, no message header, no fsync). Worker threads (default: one per core) claim
 * 1 MiB frames from a shared counter, read each with a positional read into a reused buffer,
 * encrypt it with one cipher per frame in `--slice` pieces (node:crypto's `update()` returns a new
 * buffer for each piece) and write it at its place, in frame order, as keyhold backup's parallel
 * path does. The output is not a valid message; it is deleted at the end.
 *
 *   node dist/bench/node-floor.js FILE [--threads N] [--slice BYTES] [--runs N]
 *
 * Prints wall and CPU time per run. Used to tell how much of `keyhold backup`'s time per GiB is
 * Keyhold's own and how much any Node program pays here (bench/README.md).
 */
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { closeSync, fstatSync, openSync, readSync, rmSync, writevSync } from 'node:fs';
import { createCipheriv, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

const FRAME = 1 << 20;
const TAG = 16;

interface Job { inFd: number; outFd: number; shared: SharedArrayBuffer; frames: number; size: number; slice: number; key: Uint8Array }

/** Slots: 0 next frame to claim, 1 frame whose turn it is to be written, 2 start flag. */
function worker(job: Job): void {
  const s = new Int32Array(job.shared);
  const buf = Buffer.allocUnsafeSlow(FRAME);
  const key = Buffer.from(job.key);
  const iv = Buffer.alloc(12);
  parentPort!.postMessage('ready');
  Atomics.wait(s, 2, 0);
  for (;;) {
    const seq = Atomics.add(s, 0, 1);
    if (seq >= job.frames) break;
    const len = Math.min(FRAME, job.size - seq * FRAME);
    let got = 0;
    while (got < len) {
      const n = readSync(job.inFd, buf, got, len - got, seq * FRAME + got);
      if (n === 0) throw new Error('the input ended early');
      got += n;
    }
    iv.writeUInt32BE(seq, 8);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const parts: Buffer[] = [];
    for (let o = 0; o < len; o += job.slice) parts.push(c.update(buf.subarray(o, Math.min(len, o + job.slice))));
    c.final();
    parts.push(c.getAuthTag());
    while (Atomics.load(s, 1) !== seq) Atomics.wait(s, 1, Atomics.load(s, 1), 100);
    writevSync(job.outFd, parts, seq * (FRAME + TAG));
    Atomics.store(s, 1, seq + 1);
    Atomics.notify(s, 1);
  }
  key.fill(0);
  parentPort!.postMessage('done');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { threads: { type: 'string' }, slice: { type: 'string', default: '16384' }, runs: { type: 'string', default: '3' } },
  });
  const file = positionals[0];
  if (!file) throw new Error('usage: node dist/bench/node-floor.js FILE [--threads N] [--slice BYTES] [--runs N]');
  const threads = Number(values.threads ?? Math.min(8, availableParallelism()));
  const slice = Number(values.slice);
  const out = `${file}.node-floor-${process.pid}`;
  for (let run = 1; run <= Number(values.runs); run++) {
    const inFd = openSync(file, 'r');
    const size = fstatSync(inFd).size;
    const outFd = openSync(out, 'w', 0o600);
    const shared = new SharedArrayBuffer(12);
    const s = new Int32Array(shared);
    const job: Job = { inFd, outFd, shared, frames: Math.ceil(size / FRAME), size, slice, key: randomBytes(32) };
    const workers = Array.from({ length: threads }, () => new Worker(new URL(import.meta.url), { workerData: job }));
    const next = () => Promise.all(workers.map((w) => new Promise((res, rej) => { w.once('message', res); w.once('error', rej); })));
    await next(); // every worker is ready: thread start-up is not timed
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    Atomics.store(s, 2, 1);
    Atomics.notify(s, 2);
    await next();
    const wallS = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    await Promise.all(workers.map((w) => w.terminate()));
    job.key.fill(0);
    closeSync(inFd);
    closeSync(outFd);
    rmSync(out, { force: true });
    process.stdout.write(`node-floor run ${run}: ${size} bytes, ${threads} threads, ${slice}-byte slices: ${wallS.toFixed(3)} s wall, ${(size / 1e9 / wallS).toFixed(3)} GB/s, cpu user ${(c.user / 1e6).toFixed(2)} s + system ${(c.system / 1e6).toFixed(2)} s\n`);
  }
}

if (isMainThread) {
  main().catch((e) => {
    process.stderr.write(`node-floor: ${(e as Error).message}\n`);
    process.exit(1);
  });
} else {
  worker(workerData as Job);
}
