import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditEvent, AuditLog } from './event.js';

/**
 * Appends events as JSON Lines to a file through one buffered stream. Not durable against a crash
 * (no fsync per event); the tamper-evident, group-committed log replaces it.
 */
export class JsonlAuditLog implements AuditLog {
  private readonly out: WriteStream;
  private failed: Error | undefined;

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.out = createWriteStream(file, { flags: 'a', mode: 0o600 });
    this.out.on('error', (e) => {
      this.failed = e;
    });
  }

  async record(event: AuditEvent): Promise<void> {
    if (this.failed) throw this.failed;
    this.out.write(JSON.stringify(event) + '\n');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(resolve));
  }
}

/** Keeps events in memory: for tests and for `--no-audit-file` style embedding. */
export class MemoryAuditLog implements AuditLog {
  readonly events: AuditEvent[] = [];
  async record(event: AuditEvent): Promise<void> {
    this.events.push(event);
  }
  async close(): Promise<void> {}
}
