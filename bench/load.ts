/**
 * The load generator: one autocannon run, in its own process so it never shares an event loop
 * with the server it measures (or with run.ts). Forked by run.ts, which sends a LoadJob over IPC
 * and receives a LoadResult back; the process then exits.
 *
 * Latency is recorded here from autocannon's per-response event rather than taken from its
 * summary: autocannon's histogram has 1 ms resolution, and the floor's latency at one connection
 * is well under a millisecond, so its p50/p99 would read 0 or 1 and every ratio to it would be noise.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface LoadJob {
  readonly url: string;
  readonly method: 'POST';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** PEM of the CA that issued the server certificate. */
  readonly ca: string;
  readonly connections: number;
  readonly durationS: number;
  readonly warmupS: number;
  /** The server process under load; its CPU time over the measured run is read from /proc (Linux). */
  readonly serverPid?: number;
}

export interface LoadResult {
  readonly ok2xx: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly resets: number;
  /** Failures during the warm-up: not measured, but a run whose warm-up failed is not trusted either. */
  readonly warmupNon2xx: number;
  readonly warmupErrors: number;
  readonly statusCodes: Record<string, number>;
  /** Measured wall time of the run (autocannon's), seconds. */
  readonly durationS: number;
  readonly reqPerSec: number;
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** CPU used over the measured run, in cores (1.0 = one core busy the whole time). */
  readonly loadgenCpu: number;
  /** Likewise for the server process; undefined where /proc is not available. */
  readonly serverCpu: number | undefined;
  /** Server CPU time per answered request, microseconds: its cost, whatever the concurrency. */
  readonly serverCpuUsPerRequest: number | undefined;
  /** CPU microseconds of the server's main (request) thread alone per 2xx answer; undefined where /proc is not available. */
  readonly serverMainThreadUsPerRequest?: number | undefined;
  /**
   * Cores busy machine-wide over the run (Linux). Well above serverCpu + loadgenCpu means
   * something else was competing for the CPU and the figures are suspect.
   */
  readonly machineCpu: number | undefined;
}

// Only what we use of autocannon's API (the package ships no types).
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', fn: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): void;
}
type Autocannon = (opts: Record<string, unknown>) => AutocannonInstance;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** A growable array of doubles: at ~20k responses/s for 10 s, an Array of numbers would churn the GC. */
class Samples {
  private buf = new Float64Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }
  sorted(): Float64Array {
    return this.buf.slice(0, this.length).sort();
  }
}

/** Nearest-rank percentile over sorted samples. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** CPU seconds (user + system) a process and its live descendants have used so far, from /proc; undefined off Linux. */
function procCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let total = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    // A clustered server (--workers N) does its work in child processes.
    for (const child of childPids(pid)) total += procCpuSeconds(child) ?? 0;
    return total;
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process's main thread alone (the request thread: what bounds a one-process server). */
function mainThreadCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Busy CPU seconds machine-wide (all cores), from the first line of /proc/stat; undefined off Linux. */
function machineCpuSeconds(): number | undefined {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice: guest time is already in
    // user, and idle, iowait and steal (the hypervisor's) are not work done here.
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = first.trim().split(/\s+/).slice(1).map(Number);
    const busy = user + nice + system + irq + softirq;
    return busy / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

// USER_HZ: 100 on every Linux this runs on; getconf confirms it where available.
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const base: Record<string, unknown> = {
    url: new URL(job.path, job.url).href,
    method: job.method,
    headers: job.headers,
    body: job.body,
    connections: job.connections,
    pipelining: 1,
    // autocannon always sets rejectUnauthorized: false on its TLS sockets (lib/httpClient.js), so
    // the CA below is not enforced. Acceptable for a benchmark on loopback against a server we
    // just started ourselves; the CA is passed anyway so that a future autocannon honouring it works.
    tlsOptions: { ca: job.ca },
    timeout: 10,
  };

  // Warm-up as a separate run (not autocannon's `warmup` option) so that the CPU readings below
  // cover exactly the measured run. It lets V8 optimise both sides and fills the server's caches.
  const warm = job.warmupS > 0 ? await autocannon({ ...base, duration: job.warmupS }) : undefined;

  const latencies = new Samples();
  const serverCpuBefore = procCpuSeconds(job.serverPid);
  const mainCpuBefore = mainThreadCpuSeconds(job.serverPid);
  const machineCpuBefore = machineCpuSeconds();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const instance = autocannon({ ...base, duration: job.durationS });
  instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTimeMs);
  });
  const r = await instance;
  const wallS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const serverCpuAfter = procCpuSeconds(job.serverPid);
  const mainCpuAfter = mainThreadCpuSeconds(job.serverPid);
  const machineCpuAfter = machineCpuSeconds();

  const sorted = latencies.sorted();
  let sum = 0;
  for (const v of sorted) sum += v;
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats)) statusCodes[code] = s.count;
  return {
    ok2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    resets: r.resets,
    warmupNon2xx: warm?.non2xx ?? 0,
    warmupErrors: warm?.errors ?? 0,
    statusCodes,
    durationS: r.duration,
    reqPerSec: r['2xx'] / r.duration,
    latencyMs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.length ? sorted[sorted.length - 1]! : NaN,
      mean: sorted.length ? sum / sorted.length : NaN,
    },
    loadgenCpu: (cpu.user + cpu.system) / 1e6 / wallS,
    serverCpu: serverCpuBefore !== undefined && serverCpuAfter !== undefined ? (serverCpuAfter - serverCpuBefore) / wallS : undefined,
    serverCpuUsPerRequest:
      serverCpuBefore !== undefined && serverCpuAfter !== undefined && r['2xx'] > 0 ? ((serverCpuAfter - serverCpuBefore) / r['2xx']) * 1e6 : undefined,
    serverMainThreadUsPerRequest:
      mainCpuBefore !== undefined && mainCpuAfter !== undefined && r['2xx'] > 0 ? ((mainCpuAfter - mainCpuBefore) / r['2xx']) * 1e6 : undefined,
    machineCpu: machineCpuBefore !== undefined && machineCpuAfter !== undefined ? (machineCpuAfter - machineCpuBefore) / wallS : undefined,
  };
}

// Entry point when forked: one job in, one result out.
if (process.send) {
  process.once('message', (job: LoadJob) => {
    runLoad(job).then(
      (result) => process.send!({ result }, () => process.exit(0)),
      (e: unknown) => process.send!({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }, () => process.exit(1)),
    );
  });
  process.on('disconnect', () => process.exit(1));
}
