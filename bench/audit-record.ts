/**
 * What the durable audit log costs per event, apart from the rest of the server: CPU time of
 * SqliteAuditLog.record (and, with --alerts, the alert detectors fed by it) with N concurrent
 * callers, each recording an Encrypt-shaped event and recording the next once the previous one is
 * durable (as 32 keep-alive connections do). CPU is read per thread from /proc (the request
 * thread, the audit writer thread, and the rest: GC, libuv) and per event, so the figures hold
 * on a shared machine where wall-clock rates do not.
 *
 * Compare two builds alternately, e.g. the one before a change and this one:
 *   node dist/bench/audit-record.js --lib /tmp/base/dist/src/audit/index.js --events 20000
 *   node dist/bench/audit-record.js --events 20000
 *
 * Options: --lib FILE (the audit module to load; default this build's), --events N (default 20000),
 * --callers N (default 32), --alerts (run the alert engine as main.ts wires it), --warmup N (default 2000),
 * --work-us N (default 0): CPU each caller spends on the request thread before recording, as the
 * rest of a request does, so that events arrive spread out as in a server (and batches are as small).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    lib: { type: 'string' },
    events: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '2000' },
    callers: { type: 'string', default: '32' },
    alerts: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    'work-us': { type: 'string', default: '0' },
  },
});

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

function threadTicks(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(f[11]) + Number(f[12])); // utime + stime (fields 14, 15)
    } catch {
      // the thread ended
    }
  }
  return out;
}

interface AuditModule {
  SqliteAuditLog: { open(file: string, opts?: object): Promise<Record<string, unknown> & { record(e: object): Promise<void>; close(): Promise<void>; onCommitted?: unknown }> };
  AlertEngine: new (store: unknown, opts: object) => { start(): void; stop(): void; examine(events: unknown[]): void };
}

async function main(): Promise<void> {
  const lib = resolve(values.lib ?? new URL('../src/audit/index.js', import.meta.url).pathname);
  const mod = (await import(pathToFileURL(lib).href)) as AuditModule;
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-audit-bench-'));
  const before = new Set(threadTicks().keys());
  const log = await mod.SqliteAuditLog.open(join(dir, 'audit.db'));
  const writerTids = [...threadTicks().keys()].filter((t) => !before.has(t));
  let engine: { stop(): void } | undefined;
  if (values.alerts) {
    const e = new mod.AlertEngine(log, {
      webhooks: [], webhookSecret: randomBytes(32), log: () => {},
      alertSettings: async () => ({}), accountWebhooks: async () => [], accountWebhookSecret: async () => undefined,
    });
    log.onCommitted = (events: unknown[]) => e.examine(events);
    e.start();
    engine = e;
  }
  // Commits are counted through onCommitted (called once per committed batch).
  let commits = 0;
  const inner = log.onCommitted as ((events: unknown[]) => void) | undefined;
  log.onCommitted = (events: unknown[]) => {
    commits++;
    inner?.(events);
  };
  const keyArn = `arn:aws:kms:us-east-1:111122223333:key/${randomUUID()}`;
  const event = () => ({
    eventTime: new Date().toISOString(), eventName: 'Encrypt', eventSource: 'kms.amazonaws.com', awsRegion: 'us-east-1',
    requestId: randomUUID(), sourceIPAddress: '127.0.0.1', userAgent: 'aws-sdk-js/3.1161.0 ua/2.1 os/linux lang/js md/nodejs#20.20.2 api/kms#3.1161.0',
    tlsVersion: 'TLSv1.3', readOnly: false,
    principal: { type: 'Root', arn: 'arn:aws:iam::111122223333:root', accountId: '111122223333', accessKeyId: 'AKIAEXAMPLEEXAMPLE01', isRoot: true },
    accessKeyId: 'AKIAEXAMPLEEXAMPLE01',
    resources: [{ arn: keyArn, keyVersion: 1 }],
    encryptionContext: { purpose: 'bench' },
    decision: { effect: 'Allow', reason: 'key policy statement "Enable IAM User Permissions" allows kms:* to the account root' },
  });
  const callers = Number(values.callers);
  // A fixed amount of hashing, calibrated to the asked CPU time before the run; what it costs in
  // the run is subtracted as calibrated (so the figures are the audit log's alone).
  const chunk = Buffer.alloc(1024, 7);
  const spin = (rounds: number) => {
    for (let i = 0; i < rounds; i++) createHash('sha256').update(chunk).digest();
  };
  let rounds = 0;
  let workUs = 0;
  if (Number(values['work-us']) > 0) {
    spin(20_000); // warm
    const c = process.cpuUsage();
    spin(20_000);
    const d = process.cpuUsage(c);
    const perRound = (d.user + d.system) / 20_000;
    rounds = Math.max(1, Math.round(Number(values['work-us']) / perRound));
    workUs = rounds * perRound;
  }
  const work = () => spin(rounds);
  const run = async (n: number) => {
    let left = n;
    await Promise.all(Array.from({ length: callers }, async () => {
      while (left > 0) {
        left--;
        // Another turn of the event loop per request, as a socket read would be.
        await new Promise((r) => setImmediate(r));
        if (workUs > 0) work();
        await log.record(event());
      }
    }));
  };
  await run(Number(values.warmup));
  await new Promise((r) => setTimeout(r, 300));
  const n = Number(values.events);
  commits = 0;
  const t0 = threadTicks();
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  await run(n);
  const wall = performance.now() - w0;
  // The detectors run after the commits: let them finish before reading the clocks.
  await new Promise((r) => setTimeout(r, 500));
  const c1 = process.cpuUsage(c0);
  const perCommit = n / commits;
  const t1 = threadTicks();
  const delta = (tids: number[]) => tids.reduce((s, t) => s + ((t1.get(t) ?? 0) - (t0.get(t) ?? 0)), 0) * TICK_US / n;
  const main = delta([process.pid]) - workUs;
  const writer = delta(writerTids);
  const total = (c1.user + c1.system) / n - workUs;
  engine?.stop();
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  const r = { lib, events: n, callers, alerts: values.alerts, usPerEvent: { total, requestThread: main, writerThread: writer, other: total - main - writer }, eventsPerSecWall: n / (wall / 1000), eventsPerCommit: perCommit };
  if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
  else process.stdout.write(`${lib}\n  ${n} events, ${callers} callers${values.alerts ? ', alerts on' : ''}${workUs ? `, ${workUs.toFixed(0)} us of work each (not counted)` : ''}: CPU us/event total ${total.toFixed(1)}, request thread ${workUs ? 'n/a' : main.toFixed(1)}, writer thread ${writer.toFixed(1)}, other ${(total - main - writer).toFixed(1)}; ${perCommit.toFixed(1)} events per commit; wall ${r.eventsPerSecWall.toFixed(0)} events/s\n`);
}

await main();
