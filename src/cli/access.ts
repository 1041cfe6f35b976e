import { parseArgs } from 'node:util';
import { clientSettings, UsageError } from './client.js';
import { callKeyhold } from './keyhold-client.js';

type Out = (line: string) => void;

interface OffboardWire {
  UserName: string;
  UserArn: string;
  OffboardedAt: number | string;
  DeactivatedAccessKeys: string[];
  EndedSessions: { AccessKeyId: string; RoleArn: string; SessionName: string }[];
  RemovedFromGroups: string[];
  DeletedInlinePolicies: string[];
  DetachedPolicies: string[];
  RemovedGrants: { KeyArn: string; GrantId: string }[];
  KeysUsable: { KeyArn: string; Actions: string[]; Via: string[] }[];
  KeysDecrypted: { KeyArn: string; Count: number; FirstTime: number | string; LastTime: number | string }[];
  RotatedKeys: string[];
  NotRotated: { KeyArn: string; Reason: string }[];
}

/** AWS JSON timestamps are epoch seconds. */
const iso = (t: number | string) => new Date(typeof t === 'number' ? t * 1000 : t).toISOString();

/**
 * `keyhold access offboard <user-name> [--no-rotate] [--json]`: calls KeyholdService.OffboardUser
 * and prints its report (text, or JSON with ISO 8601 dates).
 */
async function offboard(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { json: { type: 'boolean' }, 'no-rotate': { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UsageError('usage: keyhold access offboard <user-name> [--no-rotate] [--json]');
  const r = await callKeyhold<OffboardWire>(clientSettings(values), 'OffboardUser', { UserName: positionals[0], NoRotate: values['no-rotate'] === true });
  if (values.json) {
    out(JSON.stringify({
      userName: r.UserName, userArn: r.UserArn, offboardedAt: iso(r.OffboardedAt),
      deactivatedAccessKeys: r.DeactivatedAccessKeys,
      endedSessions: r.EndedSessions.map((s) => ({ accessKeyId: s.AccessKeyId, roleArn: s.RoleArn, sessionName: s.SessionName })),
      removedFromGroups: r.RemovedFromGroups, deletedInlinePolicies: r.DeletedInlinePolicies, detachedPolicies: r.DetachedPolicies,
      removedGrants: r.RemovedGrants.map((g) => ({ keyArn: g.KeyArn, grantId: g.GrantId })),
      keysUsable: r.KeysUsable.map((k) => ({ keyArn: k.KeyArn, actions: k.Actions, via: k.Via })),
      keysDecrypted: r.KeysDecrypted.map((k) => ({ keyArn: k.KeyArn, count: k.Count, firstTime: iso(k.FirstTime), lastTime: iso(k.LastTime) })),
      rotatedKeys: r.RotatedKeys,
      notRotated: r.NotRotated.map((k) => ({ keyArn: k.KeyArn, reason: k.Reason })),
    }, null, 2));
    return 0;
  }
  const list = (xs: string[]) => (xs.length ? xs.join(', ') : 'none');
  out(`offboarded ${r.UserArn} at ${iso(r.OffboardedAt)}`);
  out(`  access keys deactivated: ${list(r.DeactivatedAccessKeys)}`);
  out(`  role sessions ended:     ${list(r.EndedSessions.map((s) => `${s.SessionName} (${s.RoleArn}, ${s.AccessKeyId})`))}`);
  out(`  removed from groups:     ${list(r.RemovedFromGroups)}`);
  out(`  inline policies deleted: ${list(r.DeletedInlinePolicies)}`);
  out(`  policies detached:       ${list(r.DetachedPolicies)}`);
  out(`  grants removed:          ${list(r.RemovedGrants.map((g) => `${g.GrantId} on ${g.KeyArn}`))}`);
  out(`keys the user could use (${r.KeysUsable.length}):`);
  for (const k of r.KeysUsable) out(`  ${k.KeyArn}  ${k.Actions.join(',')}  via ${k.Via.join('; ')}`);
  out(`keys the user decrypted with (${r.KeysDecrypted.length}):`);
  for (const k of r.KeysDecrypted) out(`  ${k.KeyArn}  ${k.Count} time(s), first ${iso(k.FirstTime)}, last ${iso(k.LastTime)}`);
  out(`keys rotated: ${list(r.RotatedKeys)}`);
  for (const k of r.NotRotated) out(`  not rotated: ${k.KeyArn}: ${k.Reason}`);
  return 0;
}

interface ReviewWire {
  AccountId: string;
  Region: string;
  GeneratedAt: number | string;
  UnusedDays: number;
  Keys: {
    KeyArn: string;
    KeyState: string;
    Owner: string;
    OwnerStatus: string;
    Principals: {
      PrincipalArn: string;
      PrincipalType: string;
      Status: string;
      Actions: string[];
      Via: { Reason: string; Actions: string[] }[];
      NamedIn: string[];
      LastUsedDate?: number | string;
      LastUsedOperation?: string;
      UseCount: number;
      Flags: string[];
    }[];
    Flags: { Flag: string; PrincipalArn: string; Message: string }[];
  }[];
}

/**
 * `keyhold access review [--key K] [--principal P] [--unused-days N] [--json]`: calls
 * KeyholdService.ReviewAccess and prints, per key, who can do what through what, when each last
 * used the key, and the flags (sod-conflict, orphaned-access, unused-access, owner-gone).
 */
async function review(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      json: { type: 'boolean' }, key: { type: 'string' }, principal: { type: 'string' }, 'unused-days': { type: 'string' },
      'endpoint-url': { type: 'string' }, region: { type: 'string' },
    },
  });
  if (positionals.length !== 0) throw new UsageError('usage: keyhold access review [--key K] [--principal ARN] [--unused-days N] [--json]');
  const input: Record<string, unknown> = {};
  if (values.key !== undefined) input.KeyId = values.key;
  if (values.principal !== undefined) input.PrincipalArn = values.principal;
  if (values['unused-days'] !== undefined) {
    const n = Number(values['unused-days']);
    if (!Number.isInteger(n) || n < 1 || n > 36500) throw new UsageError('--unused-days takes a whole number of days from 1 to 36500');
    input.UnusedDays = n;
  }
  const r = await callKeyhold<ReviewWire>(clientSettings(values), 'ReviewAccess', input);
  if (values.json) {
    out(JSON.stringify({
      accountId: r.AccountId, region: r.Region, generatedAt: iso(r.GeneratedAt), unusedDays: r.UnusedDays,
      keys: r.Keys.map((k) => ({
        keyArn: k.KeyArn, keyState: k.KeyState, owner: k.Owner, ownerStatus: k.OwnerStatus,
        principals: k.Principals.map((p) => ({
          principalArn: p.PrincipalArn, principalType: p.PrincipalType, status: p.Status, actions: p.Actions,
          via: p.Via.map((v) => ({ reason: v.Reason, actions: v.Actions })), namedIn: p.NamedIn,
          lastUsedDate: p.LastUsedDate === undefined ? null : iso(p.LastUsedDate), lastUsedOperation: p.LastUsedOperation ?? null,
          useCount: p.UseCount, flags: p.Flags,
        })),
        flags: k.Flags.map((f) => ({ flag: f.Flag, principalArn: f.PrincipalArn, message: f.Message })),
      })),
    }, null, 2));
    return 0;
  }
  const flagged = r.Keys.reduce((n, k) => n + k.Flags.length, 0);
  out(`access review of account ${r.AccountId} in ${r.Region} at ${iso(r.GeneratedAt)}: ${r.Keys.length} key(s), ${flagged} flag(s); unused means more than ${r.UnusedDays} days`);
  for (const k of r.Keys) {
    out('');
    out(`${k.KeyArn} (${k.KeyState}) owner ${k.Owner} (${k.OwnerStatus})`);
    for (const f of k.Flags) out(`  FLAG ${f.Flag}: ${f.Message}`);
    for (const p of k.Principals) {
      const last = p.LastUsedDate === undefined ? 'never used' : `last used ${iso(p.LastUsedDate)} (${p.LastUsedOperation}, ${p.UseCount} use(s))`;
      out(`  ${p.PrincipalArn} [${p.PrincipalType}, ${p.Status}] ${last}${p.Flags.length ? `  flags: ${p.Flags.join(', ')}` : ''}`);
      for (const v of p.Via) out(`    ${v.Actions.join(',')} <- ${v.Reason}`);
      if (p.NamedIn.length) out(`    named in ${p.NamedIn.join('; ')}`);
    }
  }
  return 0;
}

export async function accessCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'offboard') return offboard(rest, out);
  if (sub === 'review') return review(rest, out);
  throw new UsageError(`unknown command: access ${sub ?? ''}`);
}
