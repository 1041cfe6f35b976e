import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, chmodSync, closeSync, constants, existsSync, fdatasyncSync, fsyncSync, openSync, rmSync, statfsSync, write } from 'node:fs';
import { dirname, join } from 'node:path';
import { newEventId } from './event-id.js';
import { intakeDirOf, journalName, JOURNAL_PREFILL_BYTES, JOURNAL_ROTATE_BYTES, newInstanceId, packDurable, PREFILL_MIN_FREE_BYTES } from './intake.js';
import { Worker } from 'node:worker_threads';
import { GENESIS_HASH, type OutboxRow, type DigestBody, type DigestRow, type LastUseQuery, type LastUseRow, type LookupQuery } from './audit-db.js';
import type { AuditEvent, AuditHealth, AuditLog, AuditSigner } from './event.js';
import type { AuditVerification } from './verify.js';
import type { Alert, StoredAlert } from './event.js';
import type { WriterData, WriterNotice, WriterReply, WriterRequest } from './writer-protocol.js';
import type { ExportPage, ExportQuery } from './export-query.js';
import type { RetentionPlan } from './retention.js';

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
type RequestBody = Distribute<WriterRequest>;

/** How often, by default, the events written since the last digest are covered by a new signed digest. */
export const DEFAULT_DIGEST_INTERVAL_MS = 10_000;

export interface SqliteAuditLogOptions {
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Signs digests over ranges of events; without one no digests are written. */
  signer?: AuditSigner;
  digestIntervalMs?: number;
  /** Size at which the intake journal is sealed and a new one started (default JOURNAL_ROTATE_BYTES; tests use less). */
  journalRotateBytes?: number;
}

/** Events removed per transaction by retention (appends wait for one batch at a time). */
const PRUNE_BATCH = 2000;

/** How often a failed audit log tries a durable write again, to turn healthy without traffic. */
const PROBE_INTERVAL_MS = 1_000;

export class AuditWriteError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

/**
 * The events recorded while the previous batch was on its way to disk: written together, and
 * answered together through one promise (not one per event: the request thread's cost per event
 * is a push and a shared await).
 */
interface Batch {
  events: AuditEvent[];
  /** Each event's JSON line, the bytes that will be hashed. */
  bodies: string[];
  done: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { events: [], bodies: [], done, resolve, reject };
}

/** The intake journal this process is appending to (intake.ts). */
interface OpenJournal {
  path: string;
  gen: number;
  fd: number;
  /** Bytes durably written so far. */
  size: number;
  /** The file is zero-filled (durably, blocks allocated and written) up to here (JOURNAL_PREFILL_BYTES). */
  prepared: number;
  /** A zero-fill of [prepared, prepared + its length) on its way to disk; the fd is not closed before it ends. */
  prefilling?: Promise<void>;
  /** A write to it failed: nothing more goes to it; the next batch first starts a new journal, sealing this one at `size`. */
  broken?: boolean;
  /** A zero-fill failed (e.g. a full disk): events are appended past `prepared` from then on, as without it. */
  prefillFailed?: boolean;
}

/** A request to the writer thread not answered yet. */
interface PendingCall {
  req: RequestBody;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** Sent again to a thread started after the one it was sent to exited. */
  resent?: boolean;
}

/** The zeros a journal is filled with ahead of its events (one shared, never written to). */
let zeros: Buffer | undefined;

/** Writes all of `bytes` at `position` (the journal is opened O_DSYNC: durable once this resolves). */
function writeAll(fd: number, bytes: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number): void => {
      write(fd, bytes, off, bytes.length - off, position + off, (e, n) => {
        if (e) return reject(e);
        if (off + n >= bytes.length) return resolve();
        if (n === 0) return reject(Object.assign(new Error('no space left on the audit disk'), { code: 'ENOSPC' }));
        step(off + n);
      });
    };
    step(0);
  });
}

/**
 * The durable audit log as the request thread sees it. `record` resolves once the event is
 * durable, and rejects if it cannot be made so; the caller then fails the request (fail closed).
 *
 * Durable means on disk in this process's intake journal (intake.ts): group commit, one O_DSYNC
 * write (on libuv's thread pool) per batch of the events recorded while the previous batch was on
 * its way to disk, so under load one fsync serves many requests, and with one request in
 * flight there is no added wait. The writer thread moves the events into the hash-chained database
 * (audit-db.ts) moments later, before it answers any query; the request path never waits for that.
 *
 * Health: after a failed write the log is unhealthy (with the reason) and probes the disk with a
 * small durable write every second; the first success, probe or request, makes it healthy again.
 * If the writer thread cannot move events into the database, new events are refused (fail
 * closed) until it can again.
 */
export class SqliteAuditLog implements AuditLog {
  private worker!: Worker;
  private nextId = 1;
  private readonly calls = new Map<number, PendingCall>();
  /** The batch being gathered (written once the one before it is durable). */
  private queue: Batch | undefined;
  /** A batch is being written and fsynced. */
  private writing = false;
  private scheduled = false;
  private closing = false;
  private failure: string | undefined;
  /** Why the writer cannot move events into the database, while it cannot. */
  private ingestFailure: { error: string; code?: string } | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Called with each durable batch (the alert detectors); runs after the callers were answered. */
  onCommitted: ((events: AuditEvent[]) => void) | undefined;
  private digestTimer: NodeJS.Timeout | undefined;
  private digesting: Promise<boolean> | undefined;
  private readonly log: NonNullable<SqliteAuditLogOptions['log']>;
  private readonly signer: AuditSigner | undefined;
  private readonly instance = newInstanceId();
  /** The durable length of the current journal, shared with the writer thread (packDurable). */
  private readonly durable = new BigInt64Array(new SharedArrayBuffer(8));
  private journal: OpenJournal | undefined;
  /** Journals this instance sealed, with their sealed lengths, until the writer deletes them (a restarted writer resumes them). */
  private sealedJournals: { path: string; gen: number; length: number }[] = [];
  private journalGen = 0;
  private readonly intakeDir: string;
  private readonly rotateBytes: number;

  private constructor(readonly file: string, opts: SqliteAuditLogOptions) {
    this.rotateBytes = opts.journalRotateBytes ?? JOURNAL_ROTATE_BYTES;
    this.log = opts.log ?? (() => {});
    this.signer = opts.signer;
    this.intakeDir = intakeDirOf(file);
  }

  /** Opens the log; fails (and the server does not start) if the database cannot be opened. */
  static async open(file: string, opts: SqliteAuditLogOptions = {}): Promise<SqliteAuditLog> {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    chmodSync(dirname(file), 0o700);
    const l = new SqliteAuditLog(file, opts);
    mkdirSync(l.intakeDir, { recursive: true, mode: 0o700 });
    chmodSync(l.intakeDir, 0o700);
    l.startWorker();
    try {
      await l.call({ kind: 'probe' });
      await l.startJournal();
    } catch (e) {
      l.closing = true;
      await l.worker.terminate();
      throw new Error(`cannot open the audit log ${file}: ${(e as Error).message}`);
    }
    if (l.signer) {
      l.digestTimer = setInterval(() => void l.sealDigest().catch(() => {}), opts.digestIntervalMs ?? DEFAULT_DIGEST_INTERVAL_MS);
      l.digestTimer.unref();
    }
    return l;
  }

  private startWorker(): void {
    // A thread started again resumes every journal of this instance still on disk, sealed ones
    // included, and whether moving events in was failing (the new thread says when it works again).
    this.sealedJournals = this.sealedJournals.filter((j) => existsSync(j.path));
    const data: WriterData = {
      file: this.file, durable: this.durable.buffer as SharedArrayBuffer, instance: this.instance, failing: this.ingestFailure !== undefined,
      journals: [...this.sealedJournals.map((j) => ({ path: j.path, gen: j.gen, sealedLength: j.length })), ...(this.journal ? [{ path: this.journal.path, gen: this.journal.gen }] : [])],
    };
    this.worker = new Worker(new URL('./audit-writer.js', import.meta.url), { workerData: data });
    this.worker.on('message', (r: WriterReply | WriterNotice) => {
      if ('notice' in r) {
        if (r.ok) {
          if (this.ingestFailure) this.log('warn', 'audit events are moved into the log again', {});
          this.ingestFailure = undefined;
        } else {
          this.ingestFailure = { error: r.error, code: r.code };
          this.log('error', 'audit events cannot be moved into the log; requests fail closed until they can', { reason: r.error });
        }
        return;
      }
      const c = this.calls.get(r.id);
      if (!c) return;
      this.calls.delete(r.id);
      if (r.ok) c.resolve(r.result);
      else c.reject(new AuditWriteError(r.error, r.code));
    });
    this.worker.on('error', (e) => this.log('error', 'audit writer thread failed', { error: String(e) }));
    this.worker.on('exit', () => {
      const pending = [...this.calls];
      this.calls.clear();
      if (this.closing) {
        for (const [, c] of pending) c.reject(new AuditWriteError('the audit writer thread exited'));
        return;
      }
      this.markFailed('the audit writer thread exited; restarting it');
      this.startWorker();
      // Requests the old thread had not answered go to the new one, once: each is safe to repeat
      // (a query, or a write that the database makes idempotent). One pending at a second exit is
      // refused, in case it is what stops the thread.
      for (const [id, c] of pending) {
        if (c.resent) {
          c.reject(new AuditWriteError('the audit writer thread exited twice during this request'));
        } else {
          c.resent = true;
          this.calls.set(id, c);
          this.worker.postMessage({ ...c.req, id } as WriterRequest);
        }
      }
    });
  }

  /** Sends one request to the writer thread. */
  call<T = unknown>(req: RequestBody): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { req, resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id } as WriterRequest);
    });
  }

  /**
   * Starts a new journal file (fsynced with its directory entry) and tells the writer thread,
   * sealing the previous one at its durable size. If this fails, the previous one stays current
   * (and unsealed) and the next batch tries again.
   */
  private async startJournal(): Promise<void> {
    const old = this.journal;
    const gen = ++this.journalGen;
    const path = join(this.intakeDir, journalName(this.instance, gen));
    // O_DSYNC: each write returns once its data is on disk (as write + fdatasync, in one system call
    // and one trip to libuv's thread pool).
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC, 0o600);
    try {
      fdatasyncSync(fd);
      const dir = openSync(this.intakeDir, 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (e) {
      closeSync(fd);
      rmSync(path, { force: true });
      throw e;
    }
    this.journal = { path, gen, fd, size: 0, prepared: 0 };
    if (old) this.sealedJournals = [...this.sealedJournals.filter((j) => existsSync(j.path)), { path: old.path, gen: old.gen, length: old.size }];
    // The writer must not take the new journal's length for the old one's: the generation changes first.
    Atomics.store(this.durable, 0, packDurable(gen, 0));
    this.prefill(this.journal);
    if (old) {
      await old.prefilling;
      closeSync(old.fd);
    }
    // Refused only when the writer thread exited twice meanwhile; the thread started after that
    // learned of both journals when it started (startWorker).
    await this.call({ kind: 'journal', journal: { path, gen, ...(old ? { sealed: { gen: old.gen, length: old.size } } : {}) } }).catch(() => {});
  }

  record(event: AuditEvent): Promise<void> {
    if (this.closing) return Promise.reject(new AuditWriteError('the audit log is closed'));
    if (this.ingestFailure) return Promise.reject(new AuditWriteError(`events cannot be moved into ${this.file}: ${this.ingestFailure.error}`, this.ingestFailure.code));
    const full = event.eventId ? event : { eventId: newEventId(), ...event };
    const body = JSON.stringify(full);
    let b = this.queue;
    if (!b) {
      b = this.queue = newBatch();
      this.kick();
    }
    b.events.push(full);
    b.bodies.push(body);
    return b.done;
  }

  private kick(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    // Let the rest of this event-loop turn add its events to the same batch.
    setImmediate(() => void this.flush());
  }

  /**
   * Zero-fills the journal's next JOURNAL_PREFILL_BYTES past what is prepared (intake.ts says why),
   * once less than half a stretch is left, on libuv's thread pool. Only flush and startJournal call
   * it, between batch writes; a batch that would reach past `prepared` while a fill is in flight
   * waits for it (the fill writes only at or past `prepared`). A failed fill is not an audit
   * failure: events are then appended, as before the fill; so they are on a file system with less
   * than PREFILL_MIN_FREE_BYTES free.
   */
  private prefill(j: OpenJournal): void {
    if (j.prefilling || j.broken || j.prefillFailed || j.prepared - j.size >= JOURNAL_PREFILL_BYTES / 2) return;
    const from = Math.max(j.prepared, j.size);
    const n = Math.min(JOURNAL_PREFILL_BYTES, this.rotateBytes - from);
    if (n <= 0) return;
    try {
      const fs = statfsSync(this.intakeDir);
      if (fs.bavail * fs.bsize < PREFILL_MIN_FREE_BYTES) return;
    } catch {
      return;
    }
    zeros ??= Buffer.alloc(JOURNAL_PREFILL_BYTES);
    j.prefilling = writeAll(j.fd, zeros.subarray(0, n), from).then(
      () => {
        j.prepared = from + n;
      },
      (e: NodeJS.ErrnoException) => {
        j.prefillFailed = true;
        this.log('warn', 'audit intake journal not zero-filled ahead; events are appended to it', { error: String(e.message ?? e) });
      },
    ).finally(() => {
      j.prefilling = undefined;
    });
  }

  /** Writes and fsyncs what is queued as one batch, then answers its callers. */
  private async flush(): Promise<void> {
    this.scheduled = false;
    if (this.writing || this.queue === undefined) return;
    const batch = this.queue;
    this.queue = undefined;
    this.writing = true;
    const bytes = Buffer.from(batch.bodies.join('\n') + '\n');
    try {
      if (!this.journal || this.journal.broken) await this.startJournal();
      const j = this.journal!;
      try {
        if (j.prefilling && j.size + bytes.length > j.prepared) await j.prefilling;
        await writeAll(j.fd, bytes, j.size);
      } catch (e) {
        // Nothing of this batch is moved in, whatever reached the file: the journal is sealed at
        // its last durable length and the next batch goes to a new one (after a failed synchronous
        // write the kernel may have dropped the file's unwritten pages, so it is not trusted further).
        j.broken = true;
        await this.startJournal().catch(() => {});
        throw e;
      }
      j.size += bytes.length;
      Atomics.store(this.durable, 0, packDurable(j.gen, j.size));
      this.markHealthy();
      batch.resolve();
      this.onCommitted?.(batch.events);
      this.prefill(j);
      if (j.size >= this.rotateBytes) await this.startJournal().catch((e) => this.log('warn', 'audit intake journal not rotated', { error: String(e) }));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      this.markFailed(`events cannot be written to ${this.intakeDir}: ${err.message}`);
      batch.reject(new AuditWriteError(err.message, err.code));
    } finally {
      this.writing = false;
      if (this.queue) this.kick();
    }
  }

  private markFailed(reason: string): void {
    if (this.failure === undefined) this.log('error', 'audit log failing; requests fail closed until it recovers', { reason });
    this.failure = reason;
    if (!this.probeTimer && !this.closing) {
      this.probeTimer = setInterval(() => {
        this.call({ kind: 'probe' }).then(() => this.markHealthy(), () => {});
      }, PROBE_INTERVAL_MS);
      this.probeTimer.unref();
    }
  }

  private markHealthy(): void {
    if (this.failure !== undefined) this.log('warn', 'audit log writes again; serving requests', {});
    this.failure = undefined;
    if (this.probeTimer) {
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
    }
  }

  health(): AuditHealth {
    const problems: string[] = [];
    if (this.failure !== undefined) problems.push(`audit log: ${this.failure}; every request fails with KMSInternalException until it can be written`);
    if (this.ingestFailure !== undefined) problems.push(`audit log: events cannot be moved into ${this.file}: ${this.ingestFailure.error}; every request fails with KMSInternalException until they can`);
    return { healthy: problems.length === 0, problems };
  }

  /**
   * Signs a digest over the events written since the last one (by any process). Returns false
   * when there is nothing new, or another process signed the same range first.
   */
  sealDigest(): Promise<boolean> {
    return (this.digesting ??= this.doSealDigest().finally(() => (this.digesting = undefined)));
  }

  private async doSealDigest(retention?: DigestBody['retention']): Promise<boolean> {
    if (!this.signer) return false;
    const { head, last } = await this.call<{ head: { seq: number; hash: string }; last: DigestRow | undefined }>({ kind: 'head' });
    const lastBody = last ? (JSON.parse(last.body) as DigestBody) : undefined;
    const fromSeq = lastBody ? lastBody.toSeq + 1 : 1;
    if (head.seq < fromSeq) return false;
    const body: DigestBody = {
      version: 1,
      digestSeq: (last?.digestSeq ?? 0) + 1,
      fromSeq,
      toSeq: head.seq,
      headHash: head.hash,
      prevHash: lastBody?.headHash ?? GENESIS_HASH,
      prevDigest: last ? createHash('sha256').update(last.body).digest('hex') : '',
      time: new Date().toISOString(),
      ...(retention ? { retention } : {}),
    };
    const text = JSON.stringify(body);
    const signature = this.signer.sign(Buffer.from(text)).toString('base64');
    return this.call<boolean>({ kind: 'addDigest', row: { digestSeq: body.digestSeq, fromSeq, toSeq: head.seq, body: text, signature } });
  }

  /**
   * Retention: removes the events older than `cutoffMs` that signed digests cover, after recording
   * an event that says so and signing a digest that carries the statement (retention.ts). Returns
   * undefined when there is nothing to remove (or no signing key). Safe to run in every process
   * of a cluster: only one retention digest wins each digest position, and events are removed
   * only as far as a signed retention digest allows.
   */
  async applyRetention(cutoffMs: number, days: number): Promise<{ removedThroughSeq: number; removed: number } | undefined> {
    if (!this.signer) return undefined;
    await this.sealDigest();
    const plan = await this.call<RetentionPlan>({ kind: 'retentionPlan', cutoffMs });
    if (plan.removeThroughSeq <= plan.retainedThroughSeq) return undefined;
    const retention = { removedThroughSeq: plan.removeThroughSeq, cutoff: new Date(cutoffMs).toISOString() };
    let signed = false;
    for (let attempt = 0; attempt < 3 && !signed; attempt++) {
      // The statement rides in a digest over at least this new event (see retention.ts).
      await this.record({
        eventTime: new Date().toISOString(), eventName: 'ApplyAuditRetention', eventSource: 'keyhold', awsRegion: '',
        requestId: randomUUID(), sourceIPAddress: 'keyhold', userAgent: 'keyhold', readOnly: false, resources: [],
        details: { retentionDays: days, ...retention },
      });
      while (this.digesting) await this.digesting.catch(() => false);
      const p = this.doSealDigest(retention);
      this.digesting = p.finally(() => (this.digesting = undefined));
      signed = await p;
    }
    if (!signed) return undefined;
    let removed = 0;
    for (let n = -1; n !== 0; removed += n) n = await this.call<number>({ kind: 'prune', throughSeq: plan.removeThroughSeq, limit: PRUNE_BATCH });
    this.log('info', 'audit retention applied', { removedThroughSeq: plan.removeThroughSeq, removed, cutoff: retention.cutoff });
    return { removedThroughSeq: plan.removeThroughSeq, removed };
  }

  async lookup(query: LookupQuery): Promise<{ seq: number; event: AuditEvent }[]> {
    const rows = await this.call<{ seq: number; body: string }[]>({ kind: 'lookup', query });
    return rows.map((r) => ({ seq: r.seq, event: JSON.parse(r.body) as AuditEvent }));
  }

  exportEvents(query: ExportQuery): Promise<ExportPage> {
    return this.call<ExportPage>({ kind: 'export', query });
  }

  // ---- alerts (AlertStore and the alerts API) ----

  addAlerts(alerts: Alert[], webhooks: readonly string[]): Promise<void> {
    return this.call({
      kind: 'addAlerts', webhooks: [...webhooks], nowMs: Date.now(),
      alerts: alerts.map((a) => ({ alertId: a.alertId, timeMs: Date.parse(a.time), accountId: a.accountId, body: JSON.stringify(a) })),
    });
  }

  claimDeliveries(leaseMs: number, limit: number): Promise<OutboxRow[]> {
    return this.call({ kind: 'claimDeliveries', nowMs: Date.now(), leaseMs, limit });
  }

  expandDelivery(id: number, targets: readonly { url: string; webhookId: string }[], note: string | null): Promise<void> {
    return this.call({ kind: 'expandDelivery', deliveryId: id, targets: [...targets], nowMs: Date.now(), note });
  }

  deliveryResult(id: number, ok: boolean, nextAt: number, error: string | null): Promise<void> {
    return this.call({ kind: 'deliveryResult', deliveryId: id, ok, nowMs: Date.now(), nextAt, error });
  }

  accessKeySeenBefore(accessKeyId: string): Promise<boolean> {
    return this.call<boolean>({ kind: 'accessKeySeen', accessKeyId });
  }

  /** Runs the profile detectors (profiles.ts) over events not yet examined; alerts come back stored and queued. */
  runProfiles(limit: number, webhooks: readonly string[]): Promise<{ alerts: Alert[]; more: boolean }> {
    return this.call({ kind: 'runProfiles', nowMs: Date.now(), limit, webhooks: [...webhooks] });
  }

  async accessKeyOwner(accessKeyId: string): Promise<{ principalArn: string; accountId: string | null } | undefined> {
    return (await this.call<{ principalArn: string; accountId: string | null } | null>({ kind: 'accessKeyOwner', accessKeyId })) ?? undefined;
  }

  async listAlerts(q: { accountId: string; includeAcknowledged: boolean; limit: number }): Promise<StoredAlert[]> {
    const rows = await this.call<{ body: string; ackedAt: string | null; ackedBy: string | null }[]>({ kind: 'listAlerts', ...q });
    return rows.map((r) => ({ ...(JSON.parse(r.body) as Alert), acknowledgedAt: r.ackedAt, acknowledgedBy: r.ackedBy }));
  }

  ackAlert(alertId: string, accountId: string, by: string): Promise<boolean> {
    return this.call<boolean>({ kind: 'ackAlert', alertId, accountId, by, at: new Date().toISOString() });
  }

  lastUse(query: LastUseQuery): Promise<LastUseRow[]> {
    return this.call<LastUseRow[]>({ kind: 'lastUse', query });
  }

  /** Checks chain and digests on a thread and connection of its own (writers go on meanwhile). */
  verify(): Promise<AuditVerification> {
    if (!this.signer) return Promise.reject(new Error('the audit log has no signing key to verify against'));
    return this.call({ kind: 'catchUp' }).then(() => this.verifyOnThread(this.signer!));
  }

  private verifyOnThread(signer: AuditSigner): Promise<AuditVerification> {
    const w = new Worker(new URL('./verify-worker.js', import.meta.url), { workerData: { file: this.file, publicKeyPem: signer.publicKeyPem } });
    return new Promise((resolve, reject) => {
      w.once('message', (m: { ok: true; result: AuditVerification } | { ok: false; error: string }) => {
        if (m.ok) resolve(m.result);
        else reject(new Error(m.error));
      });
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`audit verification thread exited with ${code}`)));
    });
  }

  async close(): Promise<void> {
    // Write what is queued, then let the writer move everything in and stop.
    while (this.queue || this.writing || this.scheduled) {
      if (!this.writing && !this.scheduled) this.kick();
      await new Promise((r) => setTimeout(r, 5));
    }
    if (this.digestTimer) clearInterval(this.digestTimer);
    if (this.failure === undefined) await this.sealDigest().catch((e) => this.log('warn', 'final audit digest failed', { error: String(e) }));
    this.closing = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    await this.call({ kind: 'close' }).catch((e) => this.log('warn', 'audit events left in the intake journal are moved in at the next start', { error: String(e) }));
    if (this.journal) {
      await this.journal.prefilling;
      closeSync(this.journal.fd);
    }
    this.journal = undefined;
    await this.worker.terminate();
  }
}
