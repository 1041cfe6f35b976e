import { parseArgs } from 'node:util';
import type { GetKeyRotationStatusCommandOutput, KMS } from '@aws-sdk/client-kms';
import { clientSettings, kmsClient, type ClientSettings } from './client.js';
import { callKeyhold } from './keyhold-client.js';
import { atRiskWithout, listBackups, type RegisteredBackup } from './backup/registry.js';

const DAY = 86400_000;

/** A version used within this many days counts as recently used. */
export const RECENT_USE_DAYS = 30;

/** KeyholdService.ListKeyVersions, as the report reads it. */
interface KeyVersions {
  Owner: string;
  OwnerActive: boolean;
  RotationOptOut: boolean;
  MinimumDecryptionVersion: number;
  Versions: { Version: number; Retired: boolean; LastUsedDate?: number }[];
  Truncated: boolean;
  NextMarker?: string;
}

/** Days before an imported key's ValidTo from which the report warns (`--expiry-warning-days`). */
export const DEFAULT_EXPIRY_WARNING_DAYS = 30;

/**
 * `imported`: the key's material was imported (Origin EXTERNAL): Keyhold cannot restore it if lost.
 * `import-expiring`: its ValidTo is within the warning window. `import-missing`: its material expired
 * or was deleted (PendingImport): nothing under it decrypts until the same material is imported again.
 */
export type ReportFlag = 'rotation-off' | 'rotation-overdue' | 'never-rotated' | 'owner-inactive' | 'imported' | 'import-expiring' | 'import-missing' | 'sole-key-of-backups';

export interface KeyReportRow {
  keyId: string;
  aliases: string[];
  /** The `Owner` tag, else the principal that created the key. */
  owner: string;
  /** Whether the owner is still an active principal (identity store). */
  ownerActive: boolean;
  state: string;
  /** The creator turned rotation off at CreateKey (tag KeyholdRotation=disabled). */
  rotationOptOut: boolean;
  /** null when the key is pending deletion (no rotation data). */
  rotationEnabled: boolean | null;
  rotationPeriodDays: number | null;
  lastRotationDate: string | null;
  nextRotationDate: string | null;
  newestVersionAgeDays: number;
  /** Versions that still decrypt (at or above the minimum decryption version); null when pending deletion. */
  versionsInUse: number | null;
  minimumDecryptionVersion: number;
  /** Versions used (encrypt or decrypt) in the last RECENT_USE_DAYS days. */
  recentlyUsedVersions: number[];
  origin: string;
  /** Imported keys: the current material's expiry (null when it does not expire or is missing). */
  importValidTo: string | null;
  flags: ReportFlag[];
  /** Registered backups wrapped under this key, and how many no other usable key could open. */
  backups?: { dependent: number; undecryptableWithout: number };
}

type Out = (line: string) => void;

function isInvalidState(e: unknown): boolean {
  return (e as { name?: string }).name === 'KMSInvalidStateException';
}

async function listAliases(kms: KMS): Promise<Map<string, string[]>> {
  const aliases = new Map<string, string[]>();
  for (let marker: string | undefined; ; ) {
    const page = await kms.listAliases({ Marker: marker });
    for (const a of page.Aliases ?? []) if (a.TargetKeyId) aliases.set(a.TargetKeyId, [...(aliases.get(a.TargetKeyId) ?? []), a.AliasName!]);
    if (!page.Truncated) break;
    marker = page.NextMarker;
  }
  return aliases;
}

async function keyVersions(settings: ClientSettings, keyId: string): Promise<KeyVersions> {
  let all: KeyVersions | undefined;
  for (let marker: string | undefined; ; ) {
    const page = await callKeyhold<KeyVersions>(settings, 'ListKeyVersions', { KeyId: keyId, Marker: marker });
    if (all) all.Versions.push(...page.Versions);
    else all = page;
    if (!page.Truncated) break;
    marker = page.NextMarker;
  }
  return all!;
}

async function rotationDates(kms: KMS, keyId: string): Promise<Date[]> {
  const dates: Date[] = [];
  for (let marker: string | undefined; ; ) {
    const page = await kms.listKeyRotations({ KeyId: keyId, Marker: marker });
    for (const r of page.Rotations ?? []) if (r.RotationDate) dates.push(r.RotationDate);
    if (!page.Truncated) break;
    marker = page.NextMarker;
  }
  return dates.sort((a, b) => a.getTime() - b.getTime());
}

async function reportRow(kms: KMS, settings: ClientSettings, keyId: string, aliases: string[], now: number, warnDays: number): Promise<KeyReportRow> {
  const { KeyMetadata: m } = await kms.describeKey({ KeyId: keyId });
  const created = m!.CreationDate!;
  const v = await keyVersions(settings, keyId);
  const row: KeyReportRow = {
    keyId,
    aliases,
    owner: v.Owner,
    ownerActive: v.OwnerActive,
    state: m!.KeyState!,
    rotationOptOut: v.RotationOptOut,
    rotationEnabled: null,
    rotationPeriodDays: null,
    lastRotationDate: null,
    nextRotationDate: null,
    newestVersionAgeDays: Math.floor((now - created.getTime()) / DAY),
    versionsInUse: null,
    minimumDecryptionVersion: v.MinimumDecryptionVersion,
    recentlyUsedVersions: v.Versions
      .filter((x) => x.LastUsedDate !== undefined && now - x.LastUsedDate * 1000 <= RECENT_USE_DAYS * DAY)
      .map((x) => x.Version),
    origin: m!.Origin ?? 'AWS_KMS',
    importValidTo: m!.ValidTo ? m!.ValidTo.toISOString() : null,
    flags: v.OwnerActive ? [] : ['owner-inactive'],
  };
  if (row.origin === 'EXTERNAL') {
    row.flags.push('imported');
    if (row.state === 'PendingImport') row.flags.push('import-missing');
    if (m!.ValidTo && m!.ValidTo.getTime() - now <= warnDays * DAY) row.flags.push('import-expiring');
  }
  let status: GetKeyRotationStatusCommandOutput;
  let rotations: Date[];
  try {
    status = await kms.getKeyRotationStatus({ KeyId: keyId });
    rotations = await rotationDates(kms, keyId);
  } catch (e) {
    if (isInvalidState(e)) return row; // pending deletion: no rotation data
    throw e;
  }
  const last = rotations.at(-1);
  const enabled = status.KeyRotationEnabled === true;
  const keyAgeDays = (now - created.getTime()) / DAY;
  row.rotationEnabled = enabled;
  row.rotationPeriodDays = status.RotationPeriodInDays ?? null;
  row.lastRotationDate = last ? last.toISOString() : null;
  row.nextRotationDate = status.NextRotationDate ? status.NextRotationDate.toISOString() : null;
  row.newestVersionAgeDays = Math.floor((now - (last ?? created).getTime()) / DAY);
  row.versionsInUse = v.Versions.filter((x) => !x.Retired).length;
  // Imported keys rotate only by importing new material; automatic rotation cannot be turned on.
  if (!enabled && row.origin !== 'EXTERNAL') row.flags.push('rotation-off');
  if (enabled && status.NextRotationDate && status.NextRotationDate.getTime() < now) row.flags.push('rotation-overdue');
  const limitDays = enabled ? (status.RotationPeriodInDays ?? 365) : 365;
  if (rotations.length === 0 && keyAgeDays > limitDays && row.origin !== 'EXTERNAL') row.flags.push('never-rotated');
  return row;
}

export async function buildReport(kms: KMS, settings: ClientSettings, now = Date.now(), warnDays = DEFAULT_EXPIRY_WARNING_DAYS): Promise<KeyReportRow[]> {
  const aliases = await listAliases(kms);
  const rows: KeyReportRow[] = [];
  for (let marker: string | undefined; ; ) {
    const page = await kms.listKeys({ Marker: marker });
    for (const k of page.Keys ?? []) rows.push(await reportRow(kms, settings, k.KeyId!, aliases.get(k.KeyId!) ?? [], now, warnDays));
    if (!page.Truncated) break;
    marker = page.NextMarker;
  }
  return rows;
}

function table(rows: KeyReportRow[], out: Out): void {
  const day = (iso: string | null) => (iso ? iso.slice(0, 10) : '-');
  const cells = rows.map((r) => [
    r.keyId,
    r.aliases.join(',') || '-',
    r.owner,
    r.state,
    r.rotationEnabled === null ? '-' : r.rotationEnabled ? 'on' : r.rotationOptOut ? 'off (opt-out)' : 'off',
    r.rotationPeriodDays === null ? '-' : String(r.rotationPeriodDays),
    day(r.lastRotationDate),
    day(r.nextRotationDate),
    String(r.newestVersionAgeDays),
    r.versionsInUse === null ? '-' : String(r.versionsInUse),
    r.recentlyUsedVersions.join(',') || '-',
    r.origin === 'EXTERNAL' ? `imported${r.importValidTo ? ' to ' + day(r.importValidTo) : ''}` : r.origin,
    r.flags.join(',') || '-',
  ]);
  const head = ['KEY ID', 'ALIASES', 'OWNER', 'STATE', 'ROTATION', 'PERIOD', 'LAST ROTATION', 'NEXT ROTATION', 'AGE DAYS', 'VERSIONS', 'USED 30D', 'MATERIAL', 'FLAGS'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  out(line(head));
  for (const c of cells) out(line(c));
  const count = (f: ReportFlag) => rows.filter((r) => r.flags.includes(f)).length;
  out('');
  out(`${rows.length} keys: ${count('rotation-off')} rotation-off, ${count('rotation-overdue')} rotation-overdue, ${count('never-rotated')} never-rotated, ${count('owner-inactive')} owner-inactive, ${count('imported')} imported${count('sole-key-of-backups') ? `, ${count('sole-key-of-backups')} sole-key-of-backups` : ''}`);
  // Lose imported material, lose the data: say so where nobody can miss it.
  for (const r of rows) {
    if (r.flags.includes('import-missing')) {
      out(`WARNING: imported key ${r.keyId} has no key material (PendingImport): nothing encrypted under it decrypts until the same material is imported again.`);
    } else if (r.flags.includes('import-expiring')) {
      out(`WARNING: imported key material of ${r.keyId} expires ${r.importValidTo}: re-import it with a later ValidTo, or it is deleted then.`);
    }
  }
}

/** Backups registered with the server (`keyhold backup`) that depend on each key. */
export async function addBackupDependencies(rows: KeyReportRow[], backups: RegisteredBackup[]): Promise<void> {
  for (const r of rows) {
    const mine = backups.filter((b) => b.WrappingKeys.some((k) => k.KeyArn.endsWith(`/${r.keyId}`)));
    if (!mine.length) continue;
    const arn = mine[0]!.WrappingKeys.find((k) => k.KeyArn.endsWith(`/${r.keyId}`))!.KeyArn;
    const risky = mine.filter((b) => atRiskWithout(b, arn)).length;
    r.backups = { dependent: mine.length, undecryptableWithout: risky };
    if (risky) r.flags.push('sole-key-of-backups');
  }
}

/** keyhold keys report [--json] [--expiry-warning-days N] [--endpoint-url URL] [--region R] */
export async function keysReport(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' }, 'expiry-warning-days': { type: 'string' } },
  });
  const warnDays = values['expiry-warning-days'] === undefined ? DEFAULT_EXPIRY_WARNING_DAYS : Number(values['expiry-warning-days']);
  if (!Number.isFinite(warnDays) || warnDays < 0) throw new Error('--expiry-warning-days takes a number of days (0 or more)');
  const settings = clientSettings(values);
  const rows = await buildReport(kmsClient(settings), settings, Date.now(), warnDays);
  await addBackupDependencies(rows, await listBackups(settings));
  if (values.json) out(JSON.stringify(rows, null, 2));
  else table(rows, out);
  return 0;
}
