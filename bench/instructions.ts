/**
 * Instructions per request: a figure that, unlike CPU time, hardly moves when other work shares the
 * machine (CPU time per request on a busy 2-core VM varied 4x between runs of one build). Keyhold
 * runs under `valgrind --tool=callgrind`; after a warm-up the counters are zeroed, a fixed number of
 * pre-signed requests is sent, and the instructions the whole server process executed (every
 * thread: request thread, audit writer, libuv pool) are divided by that number.
 *
 *   node dist/bench/instructions.js [--bin DIR]... [--op Encrypt|Decrypt|GenerateDataKey]
 *        [--requests N] [--warmup N] [--connections C] [--rounds R] [--server-args=S] [--node-options=S] [--keep DIR]
 *
 * --keep DIR copies each measured dump there (callgrind.out.<build>.<round>), for
 * `callgrind_annotate --inclusive=yes FILE`: native code (OpenSSL, V8's GC and compiler, libuv,
 * SQLite) is named; JIT-compiled JavaScript shows as unnamed addresses.
 *
 * Each --bin DIR is a build (DIR/bin/keyhold.js; `.` for this checkout, the default); with several,
 * the builds are measured one after another, R rounds, alternating. Valgrind makes Keyhold about 50x
 * slower, so keep N in the hundreds to low thousands. Counts include V8's JIT compiling and GC,
 * which vary a little from run to run (a few %); compare builds with several rounds.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startServer, tempDir } from '../test/helpers/server.js';
import { presign, type PresignedRequest } from './sign.js';

const REGION = 'us-east-1';

function send(agent: Agent, port: number, req: PresignedRequest): Promise<number> {
  return new Promise((done, fail) => {
    const r = request(
      { host: '127.0.0.1', port, method: req.method, path: req.path, agent, headers: { ...req.headers, 'content-length': String(req.contentLength) } },
      (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0));
      },
    );
    r.on('error', fail);
    r.end(req.body);
  });
}

/** Re-signed once a minute: under valgrind a run outlasts the 5-minute window of one signature. */
type Signer = () => Promise<PresignedRequest>;

/** `total` requests over `connections` keep-alive connections; throws on any non-200. */
async function load(agent: Agent, port: number, sign: Signer, total: number, connections: number): Promise<void> {
  let left = total;
  let req = await sign();
  let signing: Promise<void> | undefined;
  const worker = async () => {
    while (left > 0) {
      left--;
      if (Date.now() - req.signedAt.getTime() > 60_000) {
        await (signing ??= sign().then((r) => { req = r; signing = undefined; }));
      }
      const status = await send(agent, port, req);
      if (status !== 200) throw new Error(`HTTP ${status}`);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
}

/** Total instructions (Ir) in the newest callgrind dump in `dir`, and its file. */
function lastDump(dir: string): { ir: number; file: string } {
  const files = readdirSync(dir).filter((f) => f.startsWith('callgrind.out')).map((f) => join(dir, f));
  let best: { ir: number; part: number; file: string } | undefined;
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const part = Number(/^part: (\d+)/m.exec(text)?.[1] ?? 0);
    const m = /^(?:summary|totals): (\d+)/m.exec(text);
    if (m && (!best || part > best.part)) best = { ir: Number(m[1]), part, file: f };
  }
  if (!best) throw new Error(`no callgrind dump in ${dir}`);
  return best;
}

async function measureBuild(bin: string, o: { op: string; requests: number; warmup: number; connections: number; serverArgs: string[]; nodeOptions?: string }, keepAs?: string): Promise<number> {
  const dir = tempDir('keyhold-callgrind-');
  const server = await startServer({
    dataDir: join(dir, 'data'),
    bin,
    args: o.serverArgs,
    startTimeoutMs: 600_000,
    ...(o.nodeOptions ? { env: { NODE_OPTIONS: o.nodeOptions } } : {}),
    wrapper: ['valgrind', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${dir}/callgrind.out.%p`, '--trace-children=no'],
  });
  try {
    const kms = server.kms({ region: REGION });
    const keyId = (await kms.createKey({ Description: 'instructions' })).KeyMetadata!.KeyId!;
    const plaintext = randomBytes(4096);
    const ciphertext = Buffer.from((await kms.encrypt({ KeyId: keyId, Plaintext: plaintext })).CiphertextBlob!);
    kms.destroy();
    const payload = o.op === 'Encrypt' ? { KeyId: keyId, Plaintext: plaintext.toString('base64') }
      : o.op === 'Decrypt' ? { CiphertextBlob: ciphertext.toString('base64') }
      : { KeyId: keyId, KeySpec: 'AES_256' };
    const agent = new Agent({ keepAlive: true, maxSockets: o.connections, ca: readFileSync(server.caFile!) });
    const sign = () => presign(`127.0.0.1:${server.port}`, server.credentials, REGION, o.op, payload);
    await load(agent, server.port, sign, o.warmup, o.connections);
    const pid = String(server.proc.pid);
    execFileSync('callgrind_control', ['--zero', pid], { stdio: 'ignore' });
    await load(agent, server.port, sign, o.requests, o.connections);
    execFileSync('callgrind_control', ['--dump=measured', pid], { stdio: 'ignore' });
    agent.destroy();
    const dump = lastDump(dir);
    if (keepAs) copyFileSync(dump.file, keepAs);
    return dump.ir / o.requests;
  } finally {
    await server.stop();
    server.cleanup();
    execFileSync('rm', ['-rf', dir]);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bin: { type: 'string', multiple: true },
      op: { type: 'string', default: 'Encrypt' },
      requests: { type: 'string', default: '1000' },
      warmup: { type: 'string', default: '500' },
      connections: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '1' },
      'server-args': { type: 'string', default: '' },
      'node-options': { type: 'string' },
      keep: { type: 'string' },
    },
  });
  const bins = (values.bin ?? ['.']).map((d) => ({ dir: d, bin: join(resolve(d), 'bin', 'keyhold.js') }));
  const o = {
    op: values.op!, requests: Number(values.requests), warmup: Number(values.warmup), connections: Number(values.connections),
    serverArgs: values['server-args']!.split(' ').filter(Boolean), nodeOptions: values['node-options'],
  };
  if (!['Encrypt', 'Decrypt', 'GenerateDataKey'].includes(o.op) || !(o.requests > 0) || !(o.warmup >= 0) || !(o.connections >= 1)) throw new Error('bad options; see the header of bench/instructions.ts');
  const results = new Map<string, number[]>(bins.map((b) => [b.dir, []]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const b of round % 2 === 0 ? bins : [...bins].reverse()) {
      const keep = values.keep ? resolve(values.keep) : undefined;
      if (keep) mkdirSync(keep, { recursive: true });
      const ir = await measureBuild(b.bin, o, keep ? join(keep, `callgrind.out.${bins.indexOf(b)}.${round}`) : undefined);
      results.get(b.dir)!.push(ir);
      process.stdout.write(`instructions: ${b.dir} ${o.op} x ${o.connections} connections: ${Math.round(ir)} instructions per request\n`);
    }
  }
  for (const [dir, irs] of results) {
    process.stdout.write(`${dir}: ${irs.map((x) => Math.round(x / 1000) + 'k').join(', ')} instructions per ${o.op}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`instructions: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
