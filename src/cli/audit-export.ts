/**
 * `keyhold audit export`: the audit log for a SIEM, as the CloudTrail records LookupEvents'
 * CloudTrailEvent carries (one JSON object per line), in chain order:
 *   --out DIR          JSON Lines files, one per UTC day of eventTime (keyhold-audit-YYYY-MM-DD.jsonl)
 *   --to stdout        JSON Lines on standard output
 *   --to syslog[=...]  RFC 5424 messages over UDP (HOST:PORT or udp://HOST:PORT) or TCP (tcp://HOST:PORT,
 *                      octet-counted frames as RFC 6587 describes)
 * Incremental: a state file (DIR/.keyhold-export-state.json, or --state FILE for stdout and syslog)
 * holds the last position exported and, for files, how many bytes each holds; the next run
 * appends only what came after, and first cuts back any bytes an interrupted run wrote past the
 * recorded sizes, so no event is written twice. The events come from the API (ExportAuditEvents)
 * or, offline with --data-dir, from the audit database (src/main.ts builds that source).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, truncateSync, writeSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { clientSettings, UsageError, type ClientSettings } from './client.js';
import { callKeyhold } from './keyhold-client.js';

type Out = (line: string) => void;

export interface ExportPageResult {
  events: { seq: number; record: string }[];
  headSeq: number;
  firstSeq: number;
}

/** Where events come from: the API or the audit database. Filters (time range) are applied by the source. */
export interface ExportSource {
  /** Names what is exported (an account through the API, or every account offline); a state file belongs to one. */
  scope(): Promise<string>;
  page(afterSeq: number, limit: number): Promise<ExportPageResult>;
}

export type ExportTarget =
  | { kind: 'dir'; dir: string }
  | { kind: 'stdout' }
  | { kind: 'syslog'; protocol: 'udp' | 'tcp'; host: string; port: number };

export interface ExportOptions {
  target: ExportTarget;
  startMs?: number;
  endMs?: number;
  /** State file for stdout and syslog (a directory keeps its own). */
  stateFile?: string;
  json: boolean;
}

interface ExportState {
  version: 1;
  scope: string;
  filters: { start: string | null; end: string | null };
  lastSeq: number;
  /** Bytes each day file holds after the last complete page (directory exports). */
  files: Record<string, number>;
  updatedAt: string;
}

export const STATE_FILE_NAME = '.keyhold-export-state.json';
const DAY_FILE = /^keyhold-audit-\d{4}-\d{2}-\d{2}\.jsonl$/;
const PAGE = 1000;
/** RFC 5424 facility 13, "log audit". */
const SYSLOG_FACILITY = 13;
const DEFAULT_SYSLOG_PORT = 514;

export function dayFileName(record: string): string {
  const t = (JSON.parse(record) as { eventTime: string }).eventTime;
  return `keyhold-audit-${t.slice(0, 10)}.jsonl`;
}

/** Parses `syslog`, `syslog=HOST:PORT`, `syslog=udp://HOST:PORT`, `syslog=tcp://HOST:PORT`. */
export function parseTarget(to: string | undefined, outDir: string | undefined): ExportTarget {
  if (outDir !== undefined && to !== undefined) throw new UsageError('give either --out DIR or --to stdout|syslog, not both');
  if (outDir !== undefined) return { kind: 'dir', dir: resolve(outDir) };
  if (to === undefined) throw new UsageError('usage: keyhold audit export (--out DIR | --to stdout | --to syslog[=[udp://|tcp://]HOST:PORT]) [--start T] [--end T]');
  if (to === 'stdout') return { kind: 'stdout' };
  const m = /^syslog(?:=(?:(udp|tcp):\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d{1,5}))?)?$/.exec(to);
  if (!m) throw new UsageError(`--to takes stdout, syslog or syslog=[udp://|tcp://]HOST:PORT; got ${to}`);
  const port = m[3] === undefined ? DEFAULT_SYSLOG_PORT : Number(m[3]);
  if (port < 1 || port > 65535) throw new UsageError(`syslog port must be 1 to 65535; got ${port}`);
  return { kind: 'syslog', protocol: (m[1] as 'udp' | 'tcp' | undefined) ?? 'udp', host: (m[2] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

export function parseTime(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (Number.isNaN(ms)) throw new UsageError(`${flag} must be an ISO 8601 time or epoch seconds`);
  return ms;
}

/**
 * One RFC 5424 message for a CloudTrail record: facility "log audit", severity informational, or
 * warning when the call failed; TIMESTAMP the event's time; MSGID the event name; the chain
 * position as the IANA-registered [meta sequenceId]; the record as MSG.
 */
export function syslogMessage(seq: number, record: string, host = hostname()): string {
  const r = JSON.parse(record) as { eventTime: string; eventName: string; errorCode?: string };
  const pri = SYSLOG_FACILITY * 8 + (r.errorCode ? 4 : 6);
  const printable = (s: string, max: number) => (s.replace(/[^\x21-\x7e]/g, '').slice(0, max) || '-');
  // sequenceId is 1..2147483647 (RFC 5424 7.3.1); it wraps like the RFC says a counter does.
  const sequenceId = ((seq - 1) % 2147483647) + 1;
  return `<${pri}>1 ${r.eventTime} ${printable(host, 255)} keyhold - ${printable(r.eventName, 32)} [meta sequenceId="${sequenceId}"] ${record}`;
}

/** Sends RFC 5424 messages over UDP (one datagram each) or TCP (octet counting). */
class SyslogSender {
  private constructor(private readonly send: (msg: string) => Promise<void>, readonly close: () => Promise<void>) {}

  static async open(t: Extract<ExportTarget, { kind: 'syslog' }>): Promise<SyslogSender> {
    if (t.protocol === 'udp') {
      const sock = createSocket(t.host.includes(':') ? 'udp6' : 'udp4');
      return new SyslogSender(
        (msg) => new Promise((res, rej) => sock.send(Buffer.from(msg, 'utf8'), t.port, t.host, (e) => (e ? rej(e) : res()))),
        () => new Promise((res) => sock.close(() => res())),
      );
    }
    const sock = connect({ host: t.host, port: t.port });
    await new Promise<void>((res, rej) => {
      sock.once('connect', () => res());
      sock.once('error', rej);
    });
    let failure: Error | undefined;
    sock.on('error', (e) => (failure = e));
    return new SyslogSender(
      (msg) => new Promise((res, rej) => {
        if (failure) return rej(failure);
        const frame = `${Buffer.byteLength(msg, 'utf8')} ${msg}`;
        sock.write(frame, 'utf8', (e) => (e ? rej(e) : res()));
      }),
      () => new Promise((res) => sock.end(() => res())),
    );
  }

  async sendAll(events: { seq: number; record: string }[]): Promise<void> {
    for (const e of events) await this.send(syslogMessage(e.seq, e.record));
  }
}

function readState(file: string): ExportState | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as ExportState;
    if (s.version !== 1 || typeof s.lastSeq !== 'number') throw new Error('unknown version');
    return s;
  } catch (e) {
    throw new UsageError(`${file} is not a keyhold export state file: ${(e as Error).message}`);
  }
}

/** Replaces the state file atomically (write, fsync, rename). */
function writeState(file: string, s: ExportState): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify({ ...s, updatedAt: new Date().toISOString() }, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

function appendDurably(file: string, text: string): number {
  const fd = openSync(file, 'a', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return statSync(file).size;
}

/**
 * Brings a directory back to its last recorded state: bytes an interrupted run appended past the
 * recorded size are cut off (they will be written again), files a shipper rotated away or
 * truncated are accepted as they are now.
 */
function reconcileDir(dir: string, s: ExportState, warn: (msg: string) => void): void {
  for (const name of readdirSync(dir).filter((n) => DAY_FILE.test(n))) {
    const size = statSync(join(dir, name)).size;
    const recorded = s.files[name] ?? 0;
    if (size > recorded) {
      truncateSync(join(dir, name), recorded);
      warn(`${name}: removed ${size - recorded} bytes an interrupted export wrote; they are exported again`);
    } else if (size < recorded) {
      s.files[name] = size;
    }
  }
  for (const name of Object.keys(s.files)) if (!existsSync(join(dir, name))) s.files[name] = 0;
}

export interface ExportSummary {
  exported: number;
  firstSeq: number | null;
  lastSeq: number;
  files: string[];
  /** Events retention removed before they were exported (a gap in what this state has seen). */
  missedByRetention: { fromSeq: number; toSeq: number } | null;
}

/** Runs one export to the end of the log as it was when the export began. */
export async function runExport(source: ExportSource, o: ExportOptions, warn: (msg: string) => void): Promise<ExportSummary> {
  const t = o.target;
  const filters = { start: o.startMs === undefined ? null : new Date(o.startMs).toISOString(), end: o.endMs === undefined ? null : new Date(o.endMs).toISOString() };
  const scope = await source.scope();
  let stateFile: string | undefined = o.stateFile ? resolve(o.stateFile) : undefined;
  if (t.kind === 'dir') {
    mkdirSync(t.dir, { recursive: true, mode: 0o700 });
    stateFile = join(t.dir, STATE_FILE_NAME);
  }
  let state = stateFile ? readState(stateFile) : undefined;
  if (state) {
    if (state.scope !== scope) throw new UsageError(`${stateFile} belongs to an export of ${state.scope}, not ${scope}; use another ${t.kind === 'dir' ? 'directory' : 'state file'}`);
    if (state.filters.start !== filters.start || state.filters.end !== filters.end) {
      throw new UsageError(`${stateFile} belongs to an export with --start ${state.filters.start ?? '(none)'} --end ${state.filters.end ?? '(none)'}; use the same range or another ${t.kind === 'dir' ? 'directory' : 'state file'}`);
    }
  } else {
    if (t.kind === 'dir' && readdirSync(t.dir).some((n) => DAY_FILE.test(n))) {
      throw new UsageError(`${t.dir} holds export files but no ${STATE_FILE_NAME}; export into an empty directory`);
    }
    state = { version: 1, scope, filters, lastSeq: 0, files: {}, updatedAt: '' };
    // Written before any event, so that files without a state always mean someone else's files.
    if (stateFile) writeState(stateFile, state);
  }
  if (t.kind === 'dir') reconcileDir(t.dir, state, warn);

  const syslog = t.kind === 'syslog' ? await SyslogSender.open(t) : undefined;
  const summary: ExportSummary = { exported: 0, firstSeq: null, lastSeq: state.lastSeq, files: [], missedByRetention: null };
  try {
    let stopAt: number | undefined;
    for (;;) {
      const page = await source.page(state.lastSeq, PAGE);
      if (stopAt === undefined) {
        stopAt = page.headSeq;
        if (state.lastSeq > 0 && page.firstSeq > state.lastSeq + 1) {
          summary.missedByRetention = { fromSeq: state.lastSeq + 1, toSeq: page.firstSeq - 1 };
          warn(`events ${state.lastSeq + 1}..${page.firstSeq - 1} were removed by retention before this export reached them`);
        }
      }
      const events = page.events.filter((e) => e.seq <= stopAt!);
      if (events.length === 0) break;
      if (t.kind === 'dir') {
        const byFile = new Map<string, string[]>();
        for (const e of events) {
          const name = dayFileName(e.record);
          byFile.set(name, [...(byFile.get(name) ?? []), e.record]);
        }
        for (const [name, lines] of byFile) {
          state.files[name] = appendDurably(join(t.dir, name), lines.join('\n') + '\n');
          if (!summary.files.includes(name)) summary.files.push(name);
        }
      } else if (t.kind === 'stdout') {
        const text = events.map((e) => e.record).join('\n') + '\n';
        await new Promise<void>((res, rej) => process.stdout.write(text, (e) => (e ? rej(e) : res())));
      } else {
        await syslog!.sendAll(events);
      }
      summary.firstSeq ??= events[0]!.seq;
      summary.exported += events.length;
      state.lastSeq = events[events.length - 1]!.seq;
      summary.lastSeq = state.lastSeq;
      if (stateFile) writeState(stateFile, state);
      if (state.lastSeq >= stopAt || page.events.length < PAGE) break;
    }
  } finally {
    await syslog?.close();
  }
  summary.files.sort();
  return summary;
}

export const EXPORT_USAGE = 'usage: keyhold audit export [--format jsonl] (--out DIR | --to stdout | --to syslog[=[udp://|tcp://]HOST:PORT]) '
  + '[--start T] [--end T] [--state FILE] [--json] [--data-dir DIR [--seal passphrase --seal-passphrase-file F]]';

export const EXPORT_OPTIONS = {
  format: { type: 'string' }, out: { type: 'string' }, to: { type: 'string' }, start: { type: 'string' }, end: { type: 'string' },
  state: { type: 'string' }, json: { type: 'boolean' },
} as const;

/** Parses the export flags shared by the API and the offline command. */
export function exportOptions(values: { format?: string; out?: string; to?: string; start?: string; end?: string; state?: string; json?: boolean }): ExportOptions {
  if (values.format !== undefined && values.format !== 'jsonl') throw new UsageError(`--format takes jsonl (JSON Lines); got ${values.format}`);
  const target = parseTarget(values.to, values.out);
  if (target.kind === 'dir' && values.state !== undefined) throw new UsageError('--state is for --to stdout|syslog; a directory keeps its own state');
  const startMs = parseTime(values.start, '--start');
  const endMs = parseTime(values.end, '--end');
  if (startMs !== undefined && endMs !== undefined && startMs > endMs) throw new UsageError('--start is after --end');
  return { target, json: values.json === true, ...(startMs !== undefined ? { startMs } : {}), ...(endMs !== undefined ? { endMs } : {}), ...(values.state ? { stateFile: values.state } : {}) };
}

export function printExportSummary(s: ExportSummary, o: ExportOptions, out: Out): void {
  // On stdout the events themselves go to standard output; the summary goes to standard error.
  const print = o.target.kind === 'stdout' ? (l: string) => process.stderr.write(l + '\n') : out;
  if (o.json) {
    print(JSON.stringify(s, null, 2));
    return;
  }
  const where = o.target.kind === 'dir' ? o.target.dir : o.target.kind === 'stdout' ? 'stdout' : `syslog ${o.target.protocol}://${o.target.host}:${o.target.port}`;
  print(s.exported === 0
    ? `nothing new to export to ${where} (exported through event ${s.lastSeq})`
    : `exported ${s.exported} events (${s.firstSeq}..${s.lastSeq}) to ${where}${s.files.length ? `: ${s.files.join(', ')}` : ''}`);
}

/** The API as an export source: KeyholdService.ExportAuditEvents, the caller's account. */
export function apiExportSource(settings: ClientSettings, o: ExportOptions): ExportSource {
  let account: string | undefined;
  const call = (afterSeq: number, limit: number) => callKeyhold<{ Events: { Seq: number; CloudTrailEvent: string }[]; HeadSeq: number; FirstSeq: number; AccountId: string }>(
    settings, 'ExportAuditEvents', {
      AfterSeq: afterSeq, Limit: limit,
      ...(o.startMs !== undefined ? { StartTime: o.startMs / 1000 } : {}),
      ...(o.endMs !== undefined ? { EndTime: o.endMs / 1000 } : {}),
    },
  );
  return {
    async scope() {
      if (account === undefined) account = (await call(0, 1)).AccountId;
      return `account ${account}`;
    },
    async page(afterSeq, limit) {
      const r = await call(afterSeq, limit);
      return { events: r.Events.map((e) => ({ seq: e.Seq, record: e.CloudTrailEvent })), headSeq: r.HeadSeq, firstSeq: r.FirstSeq };
    },
  };
}

/** `keyhold audit export ...` through the API. */
export async function exportCommand(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...EXPORT_OPTIONS, 'endpoint-url': { type: 'string' }, region: { type: 'string' } } });
  const o = exportOptions(values);
  const s = await runExport(apiExportSource(clientSettings(values), o), o, (m) => process.stderr.write(`keyhold: ${m}\n`));
  printExportSummary(s, o, out);
  return 0;
}
