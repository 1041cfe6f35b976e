import { parseArgs } from 'node:util';
import { clientSettings, kmsClient, UsageError } from './client.js';

// Each command's module is imported when that command runs, not at start-up: `keyhold backup`
// on a large file is measured end to end (issue 6), and the CloudTrail client that `audit`
// needs is a sizeable load of its own.
const keysReportModule = () => import('./keys-report.js');
const accessModule = () => import('./access.js');
const keysVersionsModule = () => import('./keys-versions.js');
const auditModule = () => import('./audit.js');
const backupModule = () => import('./backup/command.js');

const helpText = (BACKUP_HELP: string) => `Usage: keyhold <command> [options]

Server:
  keyhold server [--data-dir DIR] [--host H] [--port P] [--tls-cert F --tls-key F | --no-tls] ...
                                 run the server (keyhold server --help for every option)
Client (find the server and credentials as the AWS tools do: --endpoint-url or AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_REGION, AWS_CA_BUNDLE):
  keyhold keys list [--json]     every key in the region with its state and aliases
  keyhold keys create [--description D] [--alias alias/NAME] [--json]
  keyhold keys report [--json] [--expiry-warning-days N]
                                 every key with aliases, owner (the Owner tag, else the creator), state,
                                 rotation (on/off, opt-out, period, last and next date), age of the newest
                                 version, versions in use (not retired), versions used in the last 30 days,
                                 key material origin and the flags rotation-off, rotation-overdue,
                                 never-rotated, owner-inactive, imported, import-expiring, import-missing.
                                 Keys pending deletion show no rotation data.
  keyhold keys versions <key> [--json]
                                 every version of a key: creation time, type, current/retired, encrypt and
                                 decrypt counts, last use
  keyhold keys retire <key> --min-version N [--json]
                                 versions below N no longer decrypt (KeyVersionRetiredException); a lower N
                                 restores them
  keyhold settings [--default-rotation-period-days N] [--separation-of-duties on|off]
                [--audit-context-hmac on|off] [--json]
                                 the account's settings; N (90 to 2560) is the rotation period new keys get;
                                 the separation-of-duties guard (on by default) refuses policies and grants
                                 that give one principal both key administration and Decrypt on a key
                                 --audit-context-hmac on: audit events carry HMAC-SHA256 of each encryption-
                                 context value instead of the value (equal values still match)
  keyhold audit [lookup] [--event-name N | --username U | --resource-name KEY-ARN-OR-ID | --resource-type T |
                --access-key-id A | --event-source S | --read-only true|false | --event-id ID]
                [--start-time T] [--end-time T] [--max-results N] [--json]
                                 the audit log through CloudTrail's LookupEvents, newest first (one filter at a
                                 time; default 50 events); --json prints the CloudTrail records
  keyhold audit last-use [--principal ARN] [--key K] [--json]
                                 last successful cryptographic use per principal and key, with counts
  keyhold audit export [--format jsonl] (--out DIR | --to stdout | --to syslog[=[udp://|tcp://]HOST:PORT])
                [--start T] [--end T] [--state FILE] [--json] [--data-dir DIR]
                                 the audit log as CloudTrail records (JSON Lines), in chain order: one file
                                 per UTC day in DIR, or stdout, or RFC 5424 syslog; incremental (a second run
                                 adds only new events); --data-dir reads the files offline (every account)
  keyhold alerts [list] [--all] [--json]
                                 the account's alerts, newest first (unacknowledged only unless --all)
  keyhold alerts ack ALERT_ID    acknowledge an alert (who and when are kept, and audited)
  keyhold alerts settings [--source-cidr CIDR]... [--no-source-cidrs] [--auto-deactivate on|off] [--json]
                                 show (and change) the account's alert settings: the networks its calls are
                                 expected from, and whether a critical alert deactivates the access key
  keyhold alerts webhooks [list] | add URL | delete WEBHOOK_ID   [--json]
                                 the account's own alert webhooks (add prints the signing secret, once)
  keyhold audit verify [--json] check the audit log's hash chain and signed digests through the API
                                 (VerifyAuditLog); names the first event altered, removed or reordered.
                                 Exit 0 if intact, 3 if not.
  keyhold audit verify --data-dir DIR [--seal passphrase --seal-passphrase-file F] [--json]
                                 the same check offline, on a data dir (the server may be running)
  keyhold access offboard <user-name> [--no-rotate] [--json]
                                 offboard an IAM user in one audited step: deactivate its access keys, end
                                 its role sessions, remove its grants, groups and policies; report the keys
                                 it could use and those it decrypted with (audit log); rotate those keys
                                 unless --no-rotate
  keyhold access review [--key K] [--principal ARN] [--unused-days N] [--json]
                                 for every key: who can call each action and through what (key policy,
                                 user/group/role policy, managed policy, grant), when each last used the
                                 key, and flags: sod-conflict, orphaned-access (offboarded, deleted or
                                 inactive principals still named in a key policy or grant), unused-access
                                 (more than N days, default 90), owner-gone

Backups (AWS Encryption SDK message format v2; any ESDK with a KMS keyring pointed here reads them):
${BACKUP_HELP}
Common options: --endpoint-url URL, --region R, --json
`;

type Out = (line: string) => void;

async function keysList(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } } });
  const kms = kmsClient(clientSettings(values));
  const rows: { keyId: string; arn: string; state: string; description: string; aliases: string[] }[] = [];
  const aliases = new Map<string, string[]>();
  for (let marker: string | undefined; ; ) {
    const page = await kms.listAliases({ Marker: marker });
    for (const a of page.Aliases ?? []) if (a.TargetKeyId) aliases.set(a.TargetKeyId, [...(aliases.get(a.TargetKeyId) ?? []), a.AliasName!]);
    if (!page.Truncated) break;
    marker = page.NextMarker;
  }
  for (let marker: string | undefined; ; ) {
    const page = await kms.listKeys({ Marker: marker });
    for (const k of page.Keys ?? []) {
      const { KeyMetadata: m } = await kms.describeKey({ KeyId: k.KeyId! });
      rows.push({ keyId: k.KeyId!, arn: m!.Arn!, state: m!.KeyState!, description: m!.Description ?? '', aliases: aliases.get(k.KeyId!) ?? [] });
    }
    if (!page.Truncated) break;
    marker = page.NextMarker;
  }
  if (values.json) {
    out(JSON.stringify(rows, null, 2));
  } else {
    out(['KEY ID'.padEnd(36), 'STATE'.padEnd(15), 'ALIASES'].join('  '));
    for (const r of rows) out([r.keyId.padEnd(36), r.state.padEnd(15), r.aliases.join(',') || '-'].join('  '));
  }
  return 0;
}

async function keysCreate(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, description: { type: 'string' }, alias: { type: 'string' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } },
  });
  const kms = kmsClient(clientSettings(values));
  const { KeyMetadata: m } = await kms.createKey({ Description: values.description });
  if (values.alias) await kms.createAlias({ AliasName: values.alias, TargetKeyId: m!.KeyId! });
  out(values.json ? JSON.stringify({ keyId: m!.KeyId, arn: m!.Arn, alias: values.alias }, null, 2) : m!.Arn!);
  return 0;
}

export async function cliMain(argv: string[], out: Out = (l) => process.stdout.write(l + '\n')): Promise<number> {
  const [group, sub, ...rest] = argv;
  try {
    if (group === undefined || group === 'help' || group === '--help' || group === '-h') {
      out(helpText((await backupModule()).BACKUP_HELP));
      return group === undefined ? 2 : 0;
    }
    if (group === 'keys' && sub === 'list') return await keysList(rest, out);
    if (group === 'keys' && sub === 'create') return await keysCreate(rest, out);
    if (group === 'keys' && sub === 'report') return await (await keysReportModule()).keysReport(rest, out);
    if (group === 'access') return await (await accessModule()).accessCommand(sub === undefined ? [] : [sub, ...rest], out);
    if (group === 'keys' && sub === 'versions') return await (await keysVersionsModule()).keysVersions(rest, out);
    if (group === 'keys' && sub === 'retire') return await (await keysVersionsModule()).keysRetire(rest, out);
    if (group === 'settings') return await (await keysVersionsModule()).accountSettings(argv.slice(1), out);
    if (group === 'backup') return await (await backupModule()).backupCommand(argv.slice(1), out);
    if (group === 'alerts') return await (await auditModule()).alertsCommand(sub === undefined ? [] : [sub, ...rest], out);
    if (group === 'audit') return await (await auditModule()).auditCommand(sub === undefined ? [] : [sub, ...rest], out);
    throw new UsageError(`unknown command: ${[group, sub].filter(Boolean).join(' ')}\n\n${helpText((await backupModule()).BACKUP_HELP)}`);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`keyhold: ${(e as Error).message}\n`);
      return 2;
    }
    const err = e as { name?: string; message?: string };
    process.stderr.write(`keyhold: ${err.name ?? 'Error'}: ${err.message ?? String(e)}\n`);
    return 1;
  }
}
