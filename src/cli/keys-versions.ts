import { parseArgs } from 'node:util';
import { clientSettings, UsageError } from './client.js';
import { callKeyhold } from './keyhold-client.js';

type Out = (line: string) => void;

/** One row of KeyholdService.ListKeyVersions (the wire shape; the black-box test reads it too). */
export interface KeyVersionRow {
  Version: number;
  CreationDate: number;
  RotationType?: string;
  Current: boolean;
  Retired: boolean;
  EncryptCount: number;
  DecryptCount: number;
  LastUsedDate?: number;
}

/** A page of KeyholdService.ListKeyVersions. */
export interface KeyVersionsPage {
  KeyId: string;
  CurrentVersion: number;
  MinimumDecryptionVersion: number;
  Owner: string;
  Creator: string;
  OwnerActive: boolean;
  RotationOptOut: boolean;
  Versions: KeyVersionRow[];
  Truncated: boolean;
  NextMarker?: string;
}

/** The answer of KeyholdService.SetMinimumDecryptionVersion. */
export interface SetMinimumDecryptionVersionResult {
  KeyId: string;
  MinimumDecryptionVersion: number;
  PreviousMinimumDecryptionVersion: number;
}

const COMMON = { json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } } as const;
const iso = (epochSeconds: number | undefined) => (epochSeconds === undefined ? null : new Date(epochSeconds * 1000).toISOString());

/** keyhold keys versions <key> [--json]: every version with its use counts (KeyholdService.ListKeyVersions). */
export async function keysVersions(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: COMMON, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError('usage: keyhold keys versions <key id|key ARN|alias> [--json]');
  const settings = clientSettings(values);
  let all: KeyVersionsPage | undefined;
  for (let marker: string | undefined; ; ) {
    const page = await callKeyhold<KeyVersionsPage>(settings, 'ListKeyVersions', { KeyId: positionals[0], Marker: marker });
    if (all) all.Versions.push(...page.Versions);
    else all = page;
    if (!page.Truncated) break;
    marker = page.NextMarker;
  }
  const k = all!;
  const rows = k.Versions.map((v) => ({
    version: v.Version,
    created: iso(v.CreationDate)!,
    rotationType: v.RotationType ?? null,
    status: v.Current ? 'current' : v.Retired ? 'retired' : 'decrypt-only',
    encryptCount: v.EncryptCount,
    decryptCount: v.DecryptCount,
    lastUsed: iso(v.LastUsedDate),
  }));
  if (values.json) {
    out(JSON.stringify({
      keyArn: k.KeyId, currentVersion: k.CurrentVersion, minimumDecryptionVersion: k.MinimumDecryptionVersion,
      owner: k.Owner, ownerActive: k.OwnerActive, versions: rows,
    }, null, 2));
    return 0;
  }
  out(`${k.KeyId}  current version ${k.CurrentVersion}, minimum decryption version ${k.MinimumDecryptionVersion}, owner ${k.Owner}${k.OwnerActive ? '' : ' (no longer active)'}`);
  const head = ['VERSION', 'CREATED', 'TYPE', 'STATUS', 'ENCRYPTS', 'DECRYPTS', 'LAST USED'];
  const cells = rows.map((r) => [String(r.version), r.created, r.rotationType ?? 'initial', r.status, String(r.encryptCount), String(r.decryptCount), r.lastUsed ?? 'never']);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  out(line(head));
  for (const c of cells) out(line(c));
  return 0;
}

/** keyhold keys retire <key> --min-version N [--json] (KeyholdService.SetMinimumDecryptionVersion). */
export async function keysRetire(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...COMMON, 'min-version': { type: 'string' } }, allowPositionals: true });
  const min = Number(values['min-version']);
  if (positionals.length !== 1 || values['min-version'] === undefined || !Number.isSafeInteger(min) || min < 1) {
    throw new UsageError('usage: keyhold keys retire <key id|key ARN> --min-version N   (N: a whole number from 1 to the newest version)');
  }
  const r = await callKeyhold<SetMinimumDecryptionVersionResult>(
    clientSettings(values), 'SetMinimumDecryptionVersion', { KeyId: positionals[0], MinimumDecryptionVersion: min },
  );
  if (values.json) out(JSON.stringify({ keyArn: r.KeyId, minimumDecryptionVersion: r.MinimumDecryptionVersion, previousMinimumDecryptionVersion: r.PreviousMinimumDecryptionVersion }, null, 2));
  else {
    out(r.MinimumDecryptionVersion > 1
      ? `${r.KeyId}: versions below ${r.MinimumDecryptionVersion} are retired (minimum was ${r.PreviousMinimumDecryptionVersion})`
      : `${r.KeyId}: every version decrypts (minimum was ${r.PreviousMinimumDecryptionVersion})`);
  }
  return 0;
}

/**
 * keyhold settings [--default-rotation-period-days N] [--separation-of-duties on|off] [--audit-context-hmac on|off] [--json]:
 * the account's settings (Get/UpdateAccountSettings).
 */
export async function accountSettings(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...COMMON, 'default-rotation-period-days': { type: 'string' }, 'separation-of-duties': { type: 'string' }, 'audit-context-hmac': { type: 'string' } } });
  const given = values['default-rotation-period-days'];
  const days = Number(given);
  if (given !== undefined && (!Number.isInteger(days) || days < 90 || days > 2560)) {
    throw new UsageError('--default-rotation-period-days takes a whole number of days from 90 to 2560');
  }
  const sodGiven = values['separation-of-duties'];
  if (sodGiven !== undefined && sodGiven !== 'on' && sodGiven !== 'off') throw new UsageError('--separation-of-duties takes on or off');
  const hmac = values['audit-context-hmac'];
  if (hmac !== undefined && hmac !== 'on' && hmac !== 'off') throw new UsageError('--audit-context-hmac takes on or off');
  const settings = clientSettings(values);
  type Wire = { AccountId: string; DefaultRotationPeriodInDays: number; SeparationOfDuties: boolean; AuditEncryptionContextHmac?: boolean };
  const change: Record<string, unknown> = {};
  if (given !== undefined) change.DefaultRotationPeriodInDays = days;
  if (sodGiven !== undefined) change.SeparationOfDuties = sodGiven === 'on';
  if (hmac !== undefined) change.AuditEncryptionContextHmac = hmac === 'on';
  const r = Object.keys(change).length === 0
    ? await callKeyhold<Wire>(settings, 'GetAccountSettings', {})
    : await callKeyhold<Wire>(settings, 'UpdateAccountSettings', change);
  if (values.json) out(JSON.stringify({ accountId: r.AccountId, defaultRotationPeriodInDays: r.DefaultRotationPeriodInDays, separationOfDuties: r.SeparationOfDuties, auditEncryptionContextHmac: r.AuditEncryptionContextHmac === true }, null, 2));
  else {
    out(`account ${r.AccountId}: new keys rotate every ${r.DefaultRotationPeriodInDays} days`);
    out(`separation-of-duties guard: ${r.SeparationOfDuties ? 'on' : 'off'}`);
    out(`audit log encryption-context values: ${r.AuditEncryptionContextHmac ? 'HMAC-SHA256 (hmac-sha256:<hex>)' : 'as given'}`);
  }
  return 0;
}
