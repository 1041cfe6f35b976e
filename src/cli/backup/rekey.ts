/**
 * `keyhold backup rewrap --all --from-key K [--to-key K2 ...]`: re-keys every registered backup that
 * still depends on an old version of K (or, with --to-key, on K at all), file by file with the
 * header-only rewrap, re-registers each, and keeps a state file so an interrupted run resumes.
 */
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { UsageError, type ClientSettings } from '../client.js';
import { callKeyhold } from '../keyhold-client.js';
import { describeEdks } from './edks.js';
import { listBackups, registerBackup, type RegisteredBackup } from './registry.js';
import type { ParsedHeader } from '../../format/backup-message/index.js';
import { CountProgress } from './progress.js';

type Out = (line: string) => void;

export interface RekeyOptions {
  /** K: id, alias or ARN. */
  fromKey: string;
  /** Wrap under these instead of K's newest version (K's data key is then dropped). */
  toKeys?: string[];
  /** Where progress is kept; default: defaultStatePath(). */
  statePath?: string;
  json?: boolean;
  /** No progress bar. */
  quiet?: boolean;
}

interface DoneEntry {
  location: string;
  at: string;
  keys: { keyArn: string; keyVersion?: number }[];
  /** False when an earlier run had already rewrapped the file and only the registration was missing. */
  rewrapped: boolean;
}

interface FailedEntry {
  location: string;
  at: string;
  reason: string;
}

/**
 * The state file (JSON). It holds message ids and locations, never key material. Version 2 keys
 * `done` and `failed` by stateKey (message id AND location: a copy keeps the message id, so two
 * registered backups may share one); version 1 keyed them by message id alone and is read too
 * (its entries carry their location, so they convert without loss).
 */
export interface RekeyState {
  version: 2;
  fromKeyArn: string;
  /** [] = rewrap under K's newest version. */
  toKeys: string[];
  /** Without --to-key: the version of K every backup is moved to (K's newest when the run began). */
  targetVersion?: number;
  startedAt: string;
  updatedAt: string;
  completedAt?: string;
  /** By stateKey(message id, location). */
  done: Record<string, DoneEntry>;
  failed: Record<string, FailedEntry>;
}

/** A registered backup in the state file: `<message id (64 hex)>@<location>`. */
export const stateKey = (messageId: string, location: string) => `${messageId}@${location}`;

/** Version 1 keyed entries by message id alone: re-key them by (message id, location). */
function upgradeState(s: { version: number; done: Record<string, DoneEntry>; failed: Record<string, FailedEntry> }): RekeyState {
  if (s.version === 2) return s as RekeyState;
  const rekey = <T extends { location: string }>(m: Record<string, T>) => Object.fromEntries(Object.entries(m).map(([id, e]) => [/^[0-9a-f]{64}$/.test(id) ? stateKey(id, e.location) : id, e]));
  return { ...(s as unknown as RekeyState), version: 2, done: rekey(s.done), failed: rekey(s.failed) };
}

/**
 * Default state file: $XDG_STATE_HOME/keyhold (else ~/.local/state/keyhold), one file per key and
 * target: rewrap-<key id>.json, or rewrap-<key id>-to-<8 hex of the --to-key list>.json.
 */
export function defaultStatePath(fromKeyArn: string, toKeys: string[], env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  const keyId = fromKeyArn.split('/').pop()!;
  const suffix = toKeys.length ? `-to-${createHash('sha256').update(toKeys.join('\n')).digest('hex').slice(0, 8)}` : '';
  return join(base, 'keyhold', `rewrap-${keyId}${suffix}.json`);
}

async function loadState(path: string): Promise<RekeyState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const s = JSON.parse(text) as RekeyState | (Omit<RekeyState, 'version'> & { version: 1 });
    if ((s.version !== 1 && s.version !== 2) || typeof s.fromKeyArn !== 'string' || typeof s.done !== 'object' || typeof s.failed !== 'object') throw new Error('not a rewrap state file');
    return upgradeState(s);
  } catch (e) {
    throw new UsageError(`${path} is not a keyhold rewrap state file (${(e as Error).message}); move it away or pass another --state`);
  }
}

/** Written to a temporary file and renamed: a crash leaves the old state or the new one, never half. */
async function saveState(path: string, s: RekeyState): Promise<void> {
  s.updatedAt = new Date().toISOString();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(s, null, 2) + '\n', { mode: 0o600, flush: true });
  await rename(tmp, path);
}

/** Does a backup (as registered, or as its header says) still depend on what we move away from? */
function dependsOn(keys: { keyArn: string; keyVersion?: number }[], fromKeyArn: string, targetVersion: number | undefined): boolean {
  return keys.some((k) => k.keyArn === fromKeyArn && (targetVersion === undefined || k.keyVersion === undefined || k.keyVersion < targetVersion));
}

const registeredKeys = (b: RegisteredBackup) => b.WrappingKeys.map((k) => ({ keyArn: k.KeyArn, ...(k.KeyVersion !== undefined ? { keyVersion: k.KeyVersion } : {}) }));

function reasonOf(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return 'missing: the file is not at its registered location';
  if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') return `not writable (${err.code}): ${err.message}`;
  return `${err.name ?? 'Error'}: ${err.message}`;
}

/** The single-file header tools of command.ts, passed in (command.ts loads this module lazily). */
export interface RewrapTools {
  readFileHeader(path: string): Promise<ParsedHeader>;
  rewrapFile(file: string, settings: ClientSettings, toKeys: string[] | undefined, opts: { fromKeyArn?: string }): Promise<unknown>;
}

export async function rekeyAll(settings: ClientSettings, opts: RekeyOptions, out: Out, tools: RewrapTools): Promise<number> {
  const toKeys = opts.toKeys ?? [];
  // K's ARN and newest version (KeyholdService.ListKeyVersions: needs kms:ListKeyVersions on K).
  const kv = await callKeyhold<{ KeyId: string; CurrentVersion: number }>(settings, 'ListKeyVersions', { KeyId: opts.fromKey, Limit: 1 });
  const fromKeyArn = kv.KeyId;
  const targetVersion = toKeys.length ? undefined : kv.CurrentVersion;
  const statePath = opts.statePath ?? defaultStatePath(fromKeyArn, toKeys);
  const release = await lockState(statePath);
  try {
    return await rekeyWithState(settings, opts, out, tools, { fromKeyArn, targetVersion, toKeys, statePath });
  } finally {
    await release();
  }
}

/**
 * One run at a time per state file: `STATE.lock`, created exclusively, holds the running process's
 * pid. A lock whose process is gone (a crash, a kill) is taken over; a live one is an error.
 */
async function lockState(statePath: string): Promise<() => Promise<void>> {
  const lock = `${statePath}.lock`;
  await mkdir(dirname(statePath), { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        await unlink(lock).catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new UsageError(`another keyhold backup rewrap --all (pid ${pid}) is using ${statePath}; wait for it to finish, or pass another --state`);
      }
      // Stale: its process is gone.
      await unlink(lock).catch(() => {});
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function rekeyWithState(
  settings: ClientSettings, opts: RekeyOptions, out: Out, tools: RewrapTools,
  { fromKeyArn, targetVersion, toKeys, statePath }: { fromKeyArn: string; targetVersion: number | undefined; toKeys: string[]; statePath: string },
): Promise<number> {
  const { readFileHeader, rewrapFile } = tools;
  let state = await loadState(statePath);
  if (state && (state.fromKeyArn !== fromKeyArn || state.toKeys.join('\n') !== toKeys.join('\n'))) {
    throw new UsageError(`${statePath} belongs to a rewrap of ${state.fromKeyArn}${state.toKeys.length ? ` to ${state.toKeys.join(', ')}` : ''}; pass another --state`);
  }
  // A finished run, or one toward an older version (K rotated since), starts over.
  if (state && (state.completedAt || state.targetVersion !== targetVersion)) state = undefined;
  const resumed = !!state;
  const now = new Date().toISOString();
  state ??= { version: 2, fromKeyArn, toKeys, ...(targetVersion !== undefined ? { targetVersion } : {}), startedAt: now, updatedAt: now, done: {}, failed: {} };
  await saveState(statePath, state);

  const all = await listBackups(settings, { KeyId: fromKeyArn });
  const candidates = all.filter((b) => dependsOn(registeredKeys(b), fromKeyArn, targetVersion));
  const results: { messageId: string; location: string; status: 'rewrapped' | 'registered' | 'failed'; reason?: string; keys?: DoneEntry['keys'] }[] = [];
  const progress = new CountProgress('rewrap', candidates.length, opts.quiet);
  const say: Out = (line) => {
    progress.clear();
    out(line);
  };
  progress.update(0);
  for (const b of candidates) {
    // Two registered backups may share a message id (a copy): each location is its own file to rewrap.
    const id = stateKey(b.MessageId, b.Location);
    try {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(b.Location)) throw new Error(`${b.Location} is not a local file; rewrap it where it is stored`);
      let h = await readFileHeader(b.Location);
      if (h.messageId.toString('hex') !== b.MessageId) throw new Error(`the file at ${b.Location} holds message ${h.messageId.toString('hex')}, not ${b.MessageId}`);
      // An earlier, interrupted run may have rewrapped it already: then only register it.
      let rewrapped = false;
      if (dependsOn(describeEdks(h.encryptedDataKeys).map((k) => ({ keyArn: k.keyArn, keyVersion: k.keyVersion })), fromKeyArn, targetVersion)) {
        await rewrapFile(b.Location, settings, toKeys.length ? toKeys : undefined, { fromKeyArn });
        h = await readFileHeader(b.Location);
        rewrapped = true;
      }
      const keys = describeEdks(h.encryptedDataKeys).filter((k) => k.provider === 'aws-kms').map((k) => ({ keyArn: k.keyArn, ...(k.keyVersion !== undefined ? { keyVersion: k.keyVersion } : {}) }));
      if (targetVersion !== undefined && dependsOn(keys, fromKeyArn, targetVersion)) throw new Error(`after the rewrap the file still has a data key under an old version of ${fromKeyArn}`);
      await registerBackup(settings, h, b.Location, (await stat(b.Location)).size);
      state.done[id] = { location: b.Location, at: new Date().toISOString(), keys, rewrapped };
      delete state.failed[id];
      results.push({ messageId: b.MessageId, location: b.Location, status: rewrapped ? 'rewrapped' : 'registered', keys });
      await saveState(statePath, state);
      if (!opts.json) say(`${rewrapped ? 'rewrapped ' : 'registered'}  ${b.Location}  (message ${b.MessageId.slice(0, 16)}): ${keys.map((k) => `${k.keyArn} v${k.keyVersion ?? '?'}`).join(', ')}`);
    } catch (e) {
      const reason = reasonOf(e);
      state.failed[id] = { location: b.Location, at: new Date().toISOString(), reason };
      results.push({ messageId: b.MessageId, location: b.Location, status: 'failed', reason });
      await saveState(statePath, state);
      if (!opts.json) say(`FAILED     ${b.Location}  (message ${b.MessageId.slice(0, 16)}): ${reason}`);
    }
    progress.update(results.length);
  }
  progress.done();

  // What the registry says now: does anything still depend on K's old versions (or on K)?
  const remaining = (await listBackups(settings, { KeyId: fromKeyArn })).filter((b) => dependsOn(registeredKeys(b), fromKeyArn, targetVersion));
  const failed = results.filter((r) => r.status === 'failed');
  const doneBefore = Object.keys(state.done).filter((id) => !results.some((r) => stateKey(r.messageId, r.location) === id)).length;
  if (!failed.length && !remaining.length) state.completedAt = new Date().toISOString();
  await saveState(statePath, state);

  const retirable = remaining.length === 0;
  const summary = {
    fromKey: fromKeyArn,
    ...(targetVersion !== undefined ? { targetVersion } : { toKeys }),
    stateFile: statePath,
    resumed,
    candidates: candidates.length,
    rewrapped: results.filter((r) => r.status === 'rewrapped').length,
    registeredOnly: results.filter((r) => r.status === 'registered').length,
    doneInEarlierRuns: doneBefore,
    failed: failed.map((r) => ({ messageId: r.messageId, location: r.location, reason: r.reason! })),
    stillDependent: remaining.map((b) => ({ messageId: b.MessageId, location: b.Location, keys: registeredKeys(b).filter((k) => k.keyArn === fromKeyArn) })),
    retirable,
    ...(retirable
      ? { nextStep: targetVersion !== undefined ? `keyhold keys retire ${fromKeyArn} --min-version ${targetVersion}` : `nothing registered depends on ${fromKeyArn}: it may be disabled (check keyhold backup list --at-risk-without ${fromKeyArn})` }
      : {}),
    results,
  };
  if (opts.json) out(JSON.stringify(summary, null, 2));
  else {
    out(`rewrap --all: ${candidates.length} registered backups depended on ${targetVersion !== undefined ? `versions below ${targetVersion} of ` : ''}${fromKeyArn}; ` +
      `${summary.rewrapped} rewrapped, ${summary.registeredOnly} only re-registered (rewrapped by an interrupted run), ${failed.length} failed` +
      `${doneBefore ? `; ${doneBefore} done in earlier runs` : ''} (state: ${statePath})`);
    if (retirable) {
      out(targetVersion !== undefined
        ? `nothing registered depends on versions below ${targetVersion} of ${fromKeyArn} any more: they can be retired (keyhold keys retire ${fromKeyArn} --min-version ${targetVersion})`
        : `nothing registered depends on ${fromKeyArn} any more`);
    } else {
      out(`${remaining.length} registered backups still depend on ${targetVersion !== undefined ? `versions below ${targetVersion} of ` : ''}${fromKeyArn}: do not retire ${targetVersion !== undefined ? 'them' : 'it'} yet`);
      for (const b of remaining) out(`  ${b.Location}  (message ${b.MessageId.slice(0, 16)})`);
    }
  }
  return failed.length || remaining.length ? 1 : 0;
}
