import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditEvent, AuditLog } from './event.js';

/**
 * Appends events as JSON Lines to a file. Not durable against a crash (no fsync); the
 * tamper-evident, group-committed log replaces it.
 *
 * Lines recorded in the same turn of the event loop go to the file in one write: one request per
 * write would cost a thread-pool hand-off and a system call each, which shows under load.
 */
export class JsonlAuditLog implements AuditLog {
  private readonly out: WriteStream;
  private failed: Error | undefined;
  private pending: string[] = [];
  private scheduled = false;

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.out = createWriteStream(file, { flags: 'a', mode: 0o600 });
    this.out.on('error', (e) => {
      this.failed = e;
    });
  }

  async record(event: AuditEvent): Promise<void> {
    if (this.failed) throw this.failed;
    this.pending.push(JSON.stringify(event) + '\n');
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending.join('');
    this.pending = [];
    this.out.write(lines);
  }

  close(): Promise<void> {
    this.flush();
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
