/**
 * The progress bar of long backup jobs (encrypt, decrypt, verify, copy, rewrap --all): amount done,
 * a bar, percentage, rate and ETA, on stderr, only when stderr is a terminal and not switched off
 * (--quiet, --no-progress). renderProgress is pure, so its output is unit-tested; ProgressBar only
 * decides when to draw.
 */

export type ProgressUnit = 'bytes' | 'files';

export interface ProgressFrame {
  label: string;
  done: number;
  /** Unknown for stdin. */
  total?: number;
  elapsedMs: number;
  unit: ProgressUnit;
  /** Terminal columns: the line is cut to fit (no wrapping, so \r can redraw it). */
  columns?: number;
}

const BAR_WIDTH = 24;

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

/** 59s, 4m05s, 2h03m: whole seconds, rounded up. */
export function fmtDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One line of progress, e.g. `encrypt 512.0 MiB / 1.0 GiB [############............]  50% 85.3 MiB/s ETA 6s`. */
export function renderProgress(f: ProgressFrame): string {
  const secs = f.elapsedMs / 1000;
  const rate = secs > 0 ? f.done / secs : 0;
  const amount = (n: number) => (f.unit === 'bytes' ? fmtBytes(n) : String(n));
  let line = `${f.label} ${amount(f.done)}`;
  if (f.total !== undefined && f.total > 0) {
    const frac = Math.min(f.done / f.total, 1);
    const fill = Math.round(frac * BAR_WIDTH);
    line += ` / ${amount(f.total)}${f.unit === 'files' ? ' files' : ''} [${'#'.repeat(fill)}${'.'.repeat(BAR_WIDTH - fill)}] ${String(Math.floor(frac * 100)).padStart(3)}%`;
  } else if (f.unit === 'files') line += ' files';
  line += f.unit === 'bytes' ? ` ${fmtBytes(rate)}/s` : ` ${rate.toFixed(1)} files/s`;
  if (f.total !== undefined && f.total > 0) {
    if (f.done >= f.total) line += ' done';
    else if (rate > 0) line += ` ETA ${fmtDuration((f.total - f.done) / rate)}`;
  }
  if (f.columns && f.columns > 1 && line.length > f.columns - 1) line = line.slice(0, f.columns - 1);
  return line;
}

/** What the bar writes to: stderr in the CLI. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

export interface ProgressOptions {
  /** --quiet / --no-progress. */
  quiet?: boolean;
  unit?: ProgressUnit;
  stream?: ProgressStream;
  now?: () => number;
  /** Redraw at most this often (ms). */
  intervalMs?: number;
}

/** Draws renderProgress on a terminal, redrawing in place at most every intervalMs; silent otherwise. */
export class ProgressBar {
  private last: number | undefined;
  private readonly start: number;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  readonly enabled: boolean;
  private lastDone = 0;

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.now = opts.now ?? Date.now;
    this.start = this.now();
    this.enabled = !opts.quiet && !!this.stream.isTTY;
  }

  update(done: number): void {
    this.lastDone = done;
    if (!this.enabled) return;
    const t = this.now();
    if (this.last !== undefined && t - this.last < (this.opts.intervalMs ?? 200)) return;
    this.last = t;
    this.draw(t);
  }

  /** Erases the bar (before other output to the terminal); the next update draws it again at once. */
  clear(): void {
    if (!this.enabled || this.last === undefined) return;
    this.stream.write('\r\x1b[K');
    this.last = undefined;
  }

  /** The final state (100%), then the line is cleared so the command's own output starts clean. */
  done(): void {
    if (!this.enabled || this.last === undefined) return;
    this.draw(this.now());
    this.stream.write('\r\x1b[K');
  }

  private draw(t: number): void {
    const line = renderProgress({ label: this.label, done: this.lastDone, total: this.total, elapsedMs: t - this.start, unit: this.opts.unit ?? 'bytes', columns: this.stream.columns });
    this.stream.write(`\r${line}\x1b[K`);
  }
}

/** A bar that counts files (rewrap --all). */
export class CountProgress extends ProgressBar {
  constructor(label: string, total: number, quiet?: boolean) {
    super(label, total, { quiet, unit: 'files' });
  }
}
