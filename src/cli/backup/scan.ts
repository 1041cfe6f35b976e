/**
 * `keyhold backup scan DIR`: walks a tree of backups, snapshots and replicas and says what is at
 * risk: files that are not encrypted (recognized by content, never by name), encrypted files whose
 * wrapping keys are disabled, pending deletion, unknown or without rotation, and files the registry
 * does not know.
 */
import { open, readdir, lstat, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { KMS } from '@aws-sdk/client-kms';
import { BackupFormatError, IncompleteHeader, parseHeader, type ParsedHeader } from '../../format/backup-message/index.js';
import type { ClientSettings } from '../client.js';
import { describeEdks } from './edks.js';
import { KmsKeyring } from './kms-keyring.js';
import { listBackups } from './registry.js';

const SNIFF_BYTES = 64 * 1024;

export type ContentKind =
  | 'keyhold-backup' // ESDK v2 message
  | 'esdk-v1' | 'age' | 'openpgp' | 'openssl-enc' // encrypted, but not by Keyhold's format
  | 'sql-text' | 'pg-dump-custom' | 'pg-dump-directory-toc' | 'tar' | 'gzip' | 'zip' | 'bzip2' | 'xz' | 'zstd' | '7z' | 'sqlite' | 'text'
  | 'unknown-binary';

const PLAINTEXT_KINDS = new Set<ContentKind>(['sql-text', 'pg-dump-custom', 'pg-dump-directory-toc', 'tar', 'gzip', 'zip', 'bzip2', 'xz', 'zstd', '7z', 'sqlite', 'text']);

/** Shannon entropy of the bytes, in bits per byte. */
function entropy(b: Buffer): number {
  if (!b.length) return 0;
  const counts = new Array<number>(256).fill(0);
  for (const x of b) counts[x]!++;
  let h = 0;
  for (const c of counts) if (c) h -= (c / b.length) * Math.log2(c / b.length);
  return h;
}

function isMostlyText(b: Buffer): boolean {
  if (!b.length) return true;
  let printable = 0;
  for (const x of b) if (x === 9 || x === 10 || x === 13 || (x >= 32 && x < 127) || x >= 0xc2) printable++;
  return !b.includes(0) && printable / b.length > 0.95;
}

const SQL_MARKERS = /(^|\n)\s*(--\s*(PostgreSQL|MySQL|MariaDB) database dump|CREATE\s+(TABLE|SCHEMA|DATABASE|INDEX|SEQUENCE|FUNCTION|VIEW)|INSERT\s+INTO|COPY\s+\S+.*FROM\s+stdin|ALTER\s+TABLE|SET\s+\w+\s*=|BEGIN\s*;|PRAGMA\s+)/i;

/** What a file is, from its first bytes. */
export function sniff(head: Buffer): ContentKind {
  const starts = (s: string | number[]) => head.subarray(0, typeof s === 'string' ? s.length : s.length).equals(typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));
  if (head[0] === 0x02) {
    try {
      parseHeader(head);
      return 'keyhold-backup';
    } catch (e) {
      if (e instanceof IncompleteHeader) return 'keyhold-backup';
    }
  }
  if (head[0] === 0x01 && head[1] === 0x80) return 'esdk-v1';
  if (starts('age-encryption.org/v1') || starts('-----BEGIN AGE ENCRYPTED FILE-----')) return 'age';
  if (starts('-----BEGIN PGP MESSAGE-----')) return 'openpgp';
  if (starts('Salted__')) return 'openssl-enc';
  if (starts('PGDMP')) return 'pg-dump-custom';
  if (starts([0x1f, 0x8b])) return 'gzip';
  if (starts('PK\x03\x04') || starts('PK\x05\x06')) return 'zip';
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  if (starts('BZh')) return 'bzip2';
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (starts([0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  if (starts([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return '7z';
  if (starts('SQLite format 3\0')) return 'sqlite';
  // OpenPGP binary: a packet tag for a public-key or symmetric-key encrypted session key.
  if ((head[0]! & 0x80) && [1, 3].includes((head[0]! & 0x40) ? head[0]! & 0x3f : (head[0]! >> 2) & 0x0f) && entropy(head.subarray(16)) > 7) return 'openpgp';
  if (isMostlyText(head)) return SQL_MARKERS.test(head.toString('utf8')) ? 'sql-text' : 'text';
  return 'unknown-binary';
}

export interface ScanFinding {
  path: string;
  size: number;
  kind: ContentKind;
  messageId?: string;
  wrappingKeys?: { keyArn: string; keyVersion?: number; state: string; rotation: string }[];
  registered?: boolean;
  problems: string[];
}

/**
 * A registered backup whose location is inside the scanned tree but whose file is gone ("missing":
 * moved with mv, or deleted) or holds something else ("replaced": another message, or not a
 * message at all). The registry lists it there until `keyhold backup relocate` or `forget`.
 */
export interface RegistryFinding {
  messageId: string;
  location: string;
  risk: 'missing' | 'replaced';
  /** replaced: what the file holds now (another message id, or the content kind). */
  holds?: string;
  /** missing: files of this scan that hold the same message id (where it may have been moved). */
  foundAt?: string[];
  problems: string[];
}

export interface ScanReport {
  findings: ScanFinding[];
  /** Registered backups inside the tree whose file is missing or replaced (empty with --no-registry). */
  registry: RegistryFinding[];
}

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

interface KeyInfo {
  state: string;
  rotation: string;
}

async function keyInfo(kms: KMS, arn: string): Promise<KeyInfo> {
  try {
    const d = await kms.describeKey({ KeyId: arn });
    const state = d.KeyMetadata?.KeyState ?? 'Unknown';
    let rotation = 'n/a';
    if (state === 'Enabled' || state === 'Disabled') {
      try {
        rotation = (await kms.getKeyRotationStatus({ KeyId: arn })).KeyRotationEnabled ? 'on' : 'off';
      } catch {
        rotation = 'unknown';
      }
    }
    return { state, rotation };
  } catch (e) {
    const name = (e as Error).name;
    return { state: name === 'NotFoundException' ? 'Unknown (not found)' : `Unknown (${name})`, rotation: 'unknown' };
  }
}

export async function scanTree(root: string, settings: ClientSettings, opts: { registry: boolean }): Promise<ScanReport> {
  const keyring = new KmsKeyring(settings);
  const keys = new Map<string, Promise<KeyInfo>>();
  // A registered backup is a message id at a location: a copy elsewhere (same message id) is not this file.
  const rows = opts.registry ? await listBackups(settings) : undefined;
  // Every registered location of each message id.
  const locationsOf = new Map<string, string[]>();
  for (const b of rows ?? []) locationsOf.set(b.MessageId, [...(locationsOf.get(b.MessageId) ?? []), b.Location]);
  const findings: ScanFinding[] = [];
  const st = await lstat(root);
  const paths = st.isDirectory() ? walk(root) : (async function* () { yield root; })();
  for await (const path of paths) {
    const head = await readHead(path);
    const size = (await lstat(path)).size;
    const kind = sniff(head);
    const f: ScanFinding = { path: resolve(path), size, kind, problems: [] };
    if (kind === 'keyhold-backup') {
      let h: ParsedHeader | undefined;
      try {
        h = parseHeader(head);
      } catch (e) {
        if (e instanceof IncompleteHeader) f.problems.push('header larger than the sniffed 64 KiB: not checked');
        else if (e instanceof BackupFormatError) f.problems.push(`malformed: ${e.message}`);
        else throw e;
      }
      if (h) {
        f.messageId = h.messageId.toString('hex');
        f.wrappingKeys = [];
        for (const k of describeEdks(h.encryptedDataKeys)) {
          if (k.provider !== 'aws-kms') continue;
          let p = keys.get(k.keyArn);
          if (!p) keys.set(k.keyArn, (p = keyInfo(keyring.client(k.keyArn), k.keyArn)));
          const info = await p;
          f.wrappingKeys.push({ keyArn: k.keyArn, ...(k.keyVersion !== undefined ? { keyVersion: k.keyVersion } : {}), ...info });
          if (info.state === 'Disabled') f.problems.push(`key disabled: ${k.keyArn}`);
          else if (info.state === 'PendingDeletion') f.problems.push(`key pending deletion: ${k.keyArn}`);
          else if (info.state.startsWith('Unknown')) f.problems.push(`key unknown: ${k.keyArn} (${info.state})`);
          else if (info.state !== 'Enabled') f.problems.push(`key ${info.state}: ${k.keyArn}`);
          if (info.rotation === 'off') f.problems.push(`key without rotation: ${k.keyArn}`);
        }
        if (!f.wrappingKeys.length) f.problems.push('no KMS wrapping key');
        if (rows) {
          const others = locationsOf.get(f.messageId);
          f.registered = !!others?.includes(f.path);
          if (!f.registered) {
            f.problems.push(others ? `not in the backup registry at this location (its message is registered at ${others.join(', ')})` : 'not in the backup registry');
          }
        }
      }
    } else if (PLAINTEXT_KINDS.has(kind)) {
      f.problems.push(`NOT ENCRYPTED: ${kind}`);
    } else if (kind === 'unknown-binary') {
      f.problems.push(entropy(head) > 7.5 ? 'unrecognized high-entropy content (encrypted by something else or compressed): cannot prove it is protected' : 'NOT ENCRYPTED: unrecognized binary content');
    } else {
      f.problems.push(`encrypted outside Keyhold (${kind}): keys not managed, not in the registry`);
    }
    findings.push(f);
  }
  const gone = rows ? await registeredGone(resolve(root), st.isDirectory(), rows, findings) : [];
  return { findings, registry: gone };
}

/** What a file holds, for comparing with a registered message id: its message id, or its kind. */
async function holdsAt(path: string): Promise<{ messageId?: string; kind: string } | undefined> {
  let head: Buffer;
  try {
    if (!(await stat(path)).isFile()) return { kind: 'not a regular file' };
    head = await readHead(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
  const kind = sniff(head);
  try {
    return kind === 'keyhold-backup' ? { messageId: parseHeader(head).messageId.toString('hex'), kind } : { kind };
  } catch {
    return { kind };
  }
}

/**
 * The registered backups (message id at a location inside root) whose file this scan did not find
 * holding that message: deleted or moved away ("missing"), or overwritten ("replaced"). A location
 * the walk did not reach (a symlink) is looked at directly.
 */
async function registeredGone(root: string, isDir: boolean, rows: { MessageId: string; Location: string }[], findings: ScanFinding[]): Promise<RegistryFinding[]> {
  const byPath = new Map(findings.map((f) => [f.path, f]));
  const inside = (loc: string) => loc === root || (isDir && loc.startsWith(root.endsWith(sep) ? root : root + sep));
  const out: RegistryFinding[] = [];
  for (const b of rows) {
    if (!inside(b.Location)) continue;
    const f = byPath.get(b.Location);
    const held = f ? { ...(f.messageId ? { messageId: f.messageId } : {}), kind: f.kind } : await holdsAt(b.Location);
    if (held?.messageId === b.MessageId) continue;
    if (!held) {
      const foundAt = findings.filter((x) => x.messageId === b.MessageId).map((x) => x.path);
      out.push({
        messageId: b.MessageId, location: b.Location, risk: 'missing', ...(foundAt.length ? { foundAt } : {}),
        problems: [foundAt.length
          ? `registered backup missing: moved to ${foundAt.join(', ')}? (keyhold backup relocate ${b.Location} ${foundAt[0]})`
          : 'registered backup missing: the file is gone (keyhold backup forget, or relocate if it was moved)'],
      });
    } else {
      const holds = held.messageId ?? held.kind;
      out.push({
        messageId: b.MessageId, location: b.Location, risk: 'replaced', holds,
        problems: [`registered backup replaced: the file holds ${held.messageId ? `message ${held.messageId}` : held.kind}, not message ${b.MessageId} (keyhold backup forget ${b.Location} --message-id ${b.MessageId})`],
      });
    }
  }
  return out;
}
