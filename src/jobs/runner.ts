import { randomUUID } from 'node:crypto';
import { deleteDueKeys, expireImportedMaterial, rotateDueKeys, type Services } from '../operations/index.js';

export interface Job {
  readonly name: string;
  run(svc: Services): Promise<unknown>;
}

export const DELETION_JOB: Job = { name: 'key-deletion', run: (svc) => deleteDueKeys(svc) };
export const ROTATION_JOB: Job = { name: 'key-rotation', run: (svc) => rotateDueKeys(svc) };
/** Imported (BYOK) material past its ValidTo is deleted; the key returns to PendingImport. */
export const IMPORT_EXPIRY_JOB: Job = { name: 'import-expiry', run: (svc) => expireImportedMaterial(svc) };

/**
 * Polls for due work. Deadlines live in storage, never in timers, so work that came due while the
 * server was down is done at the first tick after start. A lease in storage makes each job run on
 * one node at a time when several share a store.
 */
export class JobRunner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  readonly owner = `node-${randomUUID()}`;

  constructor(private readonly svc: Services, private readonly jobs: readonly Job[], private readonly intervalMs: number) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Runs every job once now (used at start and by tests). */
  async tick(): Promise<void> {
    const storage = this.svc.keys.storage;
    for (const job of this.jobs) {
      const lease = `job/${job.name}`;
      const now = this.svc.clock.now();
      if (!(await storage.tryAcquireLease(lease, this.owner, Math.max(this.intervalMs * 2, 30_000), now))) continue;
      try {
        await job.run(this.svc);
      } catch (e) {
        this.svc.log('error', `job ${job.name} failed`, { error: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    for (const job of this.jobs) await this.svc.keys.storage.releaseLease(`job/${job.name}`, this.owner).catch(() => undefined);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
        this.schedule(this.intervalMs);
      });
    }, delay);
    this.timer.unref();
  }
}
