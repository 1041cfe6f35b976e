/**
 * `keyhold server --workers N`: N server processes on one port, sharing one data dir.
 *
 * Part of the composition root (with main.ts). The primary process prepares the data dir once
 * (TLS files, the sealed root key, root credentials), then forks the workers; each worker is a
 * complete Keyhold server (startServer) on the shared SQLite file, like the stateless nodes of a
 * multi-node deployment. Node's cluster module hands connections to the workers in turn.
 *
 * Consistency between workers: each worker serves hot-path reads from memory (Storage.getCached).
 * After every commit a worker asks the primary to have every other worker drop its cached reads,
 * and the write's caller gets an answer only after all of them have, so a client that saw a
 * write succeed reads it back from any worker (read-your-writes across the server). Processes
 * outside this server that share the file are seen within the storage's staleness bound.
 *
 * Jobs run in every worker; their storage leases make each due item happen once.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';

type ToPrimary =
  | { kind: 'keyhold:listening'; url: string }
  | { kind: 'keyhold:announce'; line: string }
  | { kind: 'keyhold:committed'; id: number }
  | { kind: 'keyhold:dropped'; id: number };
type ToWorker = { kind: 'keyhold:drop'; id: number } | { kind: 'keyhold:committed-ack'; id: number };

/** How long a worker waits for its siblings to drop cached reads before going on (and logging). */
const COHERENCE_TIMEOUT_MS = 5_000;
/** A worker that dies is replaced after this long; more than this many deaths a minute stop the server. */
const RESTART_DELAY_MS = 1_000;
const MAX_RESTARTS_PER_MINUTE = 5;

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** `auto` is one worker per CPU the process may use. */
export function resolveWorkerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? Math.max(1, availableParallelism()) : workers;
}

// ---------------------------------------------------------------------------------------------
// Worker side

export interface WorkerLink {
  /** For SqliteStorage's afterCommit: resolves once every sibling has dropped its cached reads. */
  afterCommit(): Promise<void>;
  /** Registers what to do when a sibling committed. */
  onSiblingCommit(drop: () => void): void;
  announce(line: string): void;
  listening(url: string): void;
}

export function workerLink(log: (msg: string) => void): WorkerLink {
  let nextId = 1;
  const waiting = new Map<number, () => void>();
  let drop: () => void = () => {};
  process.on('message', (m: ToWorker) => {
    if (m?.kind === 'keyhold:drop') {
      drop();
      send({ kind: 'keyhold:dropped', id: m.id });
    } else if (m?.kind === 'keyhold:committed-ack') {
      waiting.get(m.id)?.();
      waiting.delete(m.id);
    }
  });
  function send(m: ToPrimary): void {
    process.send?.(m);
  }
  return {
    afterCommit() {
      const id = nextId++;
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          log(`siblings did not confirm dropping cached reads within ${COHERENCE_TIMEOUT_MS} ms; they converge within the storage's staleness bound`);
          resolve();
        }, COHERENCE_TIMEOUT_MS);
        timer.unref();
        waiting.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
        send({ kind: 'keyhold:committed', id });
      });
    },
    onSiblingCommit(fn) {
      drop = fn;
    },
    announce(line) {
      send({ kind: 'keyhold:announce', line });
    },
    listening(url) {
      send({ kind: 'keyhold:listening', url });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Primary side

export interface PrimaryOptions {
  workers: number;
  /** Prints a line on stdout (the listening line, the CA path). */
  announce(line: string): void;
  log(level: 'error' | 'warn' | 'info', msg: string, fields?: Record<string, unknown>): void;
  /** Lines to print once every worker listens, after `keyhold listening on <url>`. */
  afterListening: string[];
}

/** Forks the workers, relays coherence messages, and stops them all on SIGTERM/SIGINT. */
export async function runPrimary(opts: PrimaryOptions): Promise<void> {
  const live = new Set<Worker>();
  let stopping = false;
  const deaths: number[] = [];
  let announced = false;
  let expectListening = opts.workers;

  /** Per commit: the worker waiting and the siblings still to confirm. */
  const pending = new Map<string, { origin: Worker; originId: number; left: Set<Worker> }>();
  let relayId = 1;

  function settle(key: string): void {
    const p = pending.get(key);
    if (p && p.left.size === 0) {
      pending.delete(key);
      if (!p.origin.isDead()) p.origin.send({ kind: 'keyhold:committed-ack', id: p.originId } satisfies ToWorker);
    }
  }

  function onMessage(w: Worker, m: ToPrimary): void {
    switch (m?.kind) {
      case 'keyhold:listening':
        if (!announced && --expectListening === 0) {
          announced = true;
          opts.announce(`keyhold listening on ${m.url}`);
          for (const line of opts.afterListening) opts.announce(line);
        }
        break;
      case 'keyhold:announce':
        opts.announce(m.line);
        break;
      case 'keyhold:committed': {
        const key = String(relayId++);
        const left = new Set([...live].filter((o) => o !== w && !o.isDead()));
        pending.set(key, { origin: w, originId: m.id, left });
        for (const o of left) o.send({ kind: 'keyhold:drop', id: Number(key) } satisfies ToWorker);
        settle(key);
        break;
      }
      case 'keyhold:dropped': {
        const key = String(m.id);
        pending.get(key)?.left.delete(w);
        settle(key);
        break;
      }
    }
  }

  function start(): void {
    const w = cluster.fork();
    live.add(w);
    w.on('message', (m: ToPrimary) => onMessage(w, m));
    w.on('exit', (code, signal) => {
      live.delete(w);
      // A dead sibling confirms nothing: stop waiting for it.
      for (const [key, p] of pending) {
        p.left.delete(w);
        settle(key);
      }
      if (stopping) return;
      opts.log('error', 'worker exited', { pid: w.process.pid, code, signal });
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! < now - 60_000) deaths.shift();
      if (deaths.length > MAX_RESTARTS_PER_MINUTE) {
        opts.log('error', `more than ${MAX_RESTARTS_PER_MINUTE} worker exits in a minute; stopping`);
        void stop(1);
        return;
      }
      if (!announced) expectListening++;
      setTimeout(() => {
        if (!stopping) start();
      }, RESTART_DELAY_MS).unref();
    });
  }

  async function stop(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    const exits = [...live].map((w) => new Promise<void>((resolve) => {
      if (w.isDead()) return resolve();
      w.once('exit', () => resolve());
      w.process.kill('SIGTERM');
    }));
    const force = setTimeout(() => {
      for (const w of live) w.process.kill('SIGKILL');
    }, 15_000);
    await Promise.all(exits);
    clearTimeout(force);
    process.exit(code);
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      process.stderr.write(`keyhold: ${signal}, stopping ${live.size} worker(s)\n`);
      void stop(0);
    });
  }
  for (let i = 0; i < opts.workers; i++) start();
}
