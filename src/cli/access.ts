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

export async function accessCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'offboard') return offboard(rest, out);
  throw new UsageError(`unknown command: access ${sub ?? ''}`);
}
