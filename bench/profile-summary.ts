/**
 * Summarises a V8 .cpuprofile (as written by `node --cpu-prof`, e.g. `npm run bench -- --cpu-prof DIR`):
 * where the server's CPU time went, by area (TLS, HTTP, SigV4, JSON, storage, audit, ...), by
 * function (self time) and by Keyhold function (inclusive time).
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [--top N] [--callers FUNCTION]
 *
 * Percentages are of busy time (samples not in "(idle)"), so they read as "share of the CPU the
 * server spent", independent of how long it sat idle between runs. One caveat: V8 samples by wall
 * clock, so when the server competes for a core (it shares two with the load generator), time it
 * spent preempted lands on the frame it was preempted in, usually right after a system call
 * (writev, SQLite's fcntl locks, the getpid in OpenSSL's RNG). Read those as "system call plus
 * waiting for the CPU", and check CPU costs with A/B runs.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Areas, tried in order on each frame of a sample's stack from the leaf up; the first frame that
 * matches decides. So time in a hash called by the SigV4 verifier counts as SigV4, and time in
 * JSON.stringify called from the audit log counts as audit.
 */
const AREAS: Array<[area: string, test: (f: CallFrame) => boolean]> = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['SigV4 verification', (f) => f.url.includes('/src/api/sigv4')],
  ['audit log', (f) => f.url.includes('/src/audit/')],
  ['storage / repository', (f) => /\/src\/(storage|keys|identity)\//.test(f.url) || f.url.includes('better-sqlite3')],
  ['key store / blob crypto', (f) => /\/src\/(keystore|barrier|crypto|format)\//.test(f.url)],
  ['policy', (f) => f.url.includes('/src/policy/')],
  ['operations (other)', (f) => f.url.includes('/src/operations/')],
  ['request handler / schema', (f) => f.url.includes('/src/api/')],
  // Encryption happens inside the native write called from here; decryption of incoming data
  // happens before any JS frame exists and shows up as "(program)".
  ['socket write (TLS encrypt + syscall)', (f) => f.url === 'node:internal/stream_base_commons'],
  ['TLS (JS side)', (f) => /tls/.test(f.url)],
  ['HTTP (node:http)', (f) => /node:(_http|http|internal\/http)/.test(f.url)],
  ['streams / net / event loop', (f) => /node:(internal\/streams|stream|net|events|internal\/process|internal\/timers|timers|internal\/async_hooks)/.test(f.url)],
];

function label(f: CallFrame): string {
  const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, callers: { type: 'string' } },
  });
  const file = positionals[0];
  if (!file) {
    process.stderr.write('usage: profile-summary.js <file.cpuprofile> [--top N] [--callers FUNCTION]\n');
    process.exit(2);
  }
  const top = Number(values.top);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;

  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }

  // --callers NAME: for samples whose leaf function is NAME, the chain of callers (up to 8 deep).
  const callers = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    const leaf = byId.get(profile.samples[i]!)!;
    if (leaf.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    busy += dt;
    self.set(label(leaf.callFrame), (self.get(label(leaf.callFrame)) ?? 0) + dt);

    const stack: CallFrame[] = [];
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) stack.push(byId.get(id)!.callFrame);
    // Inclusive time counts each function once per sample, however deep the recursion.
    const seen = new Set<string>();
    for (const f of stack) {
      if (!f.url.includes('/src/')) continue;
      const l = label(f);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
    }
    if (values.callers !== undefined && leaf.callFrame.functionName === values.callers) {
      const chain = stack.slice(1, 9).map((f) => f.functionName || '(anonymous)').join(' < ');
      callers.set(chain, (callers.get(chain) ?? 0) + dt);
    }
    let area = 'other (native, crypto, V8, ...)';
    outer: for (const f of stack) {
      for (const [name, test] of AREAS) {
        if (test(f)) {
          area = name;
          break outer;
        }
      }
    }
    if (leaf.callFrame.functionName === '(program)') area = '(program: native, outside JS)';
    areas.set(area, (areas.get(area) ?? 0) + dt);
  }

  const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)}%`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const print = (title: string, m: Map<string, number>, n: number) => {
    process.stdout.write(`\n${title}\n`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`${pct(v)} ${ms(v)}  ${k}\n`);
  };
  process.stdout.write(`${file}\nbusy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s\n`);
  print('By area (first matching frame from the leaf up):', areas, 20);
  print(`Self time, top ${top}:`, self, top);
  print(`Inclusive time in Keyhold code (src/), top ${top}:`, inclusive, top);
  if (values.callers !== undefined) print(`Callers of ${values.callers}:`, callers, top);
}

// Piped into `head`: stop quietly when the reader goes away.
process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? 0 : 1));
main();
