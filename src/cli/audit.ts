import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { CloudTrail, type LookupAttributeKey } from '@aws-sdk/client-cloudtrail';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { clientSettings, UsageError, type ClientSettings } from './client.js';
import { callKeyhold } from './keyhold-client.js';
import { exportCommand } from './audit-export.js';

type Out = (line: string) => void;

/** A verification result as both paths give it (API answer or offline check), in camelCase. */
export interface VerificationReport {
  valid: boolean;
  eventsChecked: number;
  digestsChecked: number;
  firstSeq: number;
  lastSeq: number;
  signedThroughSeq: number;
  retainedThroughSeq: number;
  publicKeyFingerprint: string;
  problem?: { kind: string; seq?: number; eventId?: string; message: string };
}

/** Exit status of `keyhold audit verify` when the log fails verification (1 is an API error, 2 usage). */
export const VERIFY_FAILED_EXIT = 3;

export function printVerification(r: VerificationReport, json: boolean, out: Out): number {
  if (json) {
    out(JSON.stringify(r, null, 2));
  } else if (r.valid) {
    out(`audit log OK: ${r.eventsChecked} events (${r.firstSeq}..${r.lastSeq}), ${r.digestsChecked} signed digests; signed through event ${r.signedThroughSeq}` +
      (r.lastSeq > r.signedThroughSeq ? ` (events ${r.signedThroughSeq + 1}..${r.lastSeq} chained, not yet signed)` : '') +
      (r.retainedThroughSeq > 0 ? `; events 1..${r.retainedThroughSeq} removed by retention under a signed digest` : '') +
      `; signing key sha256:${r.publicKeyFingerprint}`);
  } else {
    out(`audit log FAILED verification: ${r.problem!.kind}${r.problem!.seq !== undefined ? ` at event ${r.problem!.seq}` : ''}` +
      `${r.problem!.eventId ? ` (eventId ${r.problem!.eventId})` : ''}: ${r.problem!.message}`);
  }
  return r.valid ? 0 : VERIFY_FAILED_EXIT;
}

function fromWire(w: Record<string, unknown>): VerificationReport {
  const p = w.Problem as Record<string, unknown> | undefined;
  return {
    valid: w.Valid === true,
    eventsChecked: Number(w.EventsChecked),
    digestsChecked: Number(w.DigestsChecked),
    firstSeq: Number(w.FirstSeq),
    lastSeq: Number(w.LastSeq),
    signedThroughSeq: Number(w.SignedThroughSeq),
    retainedThroughSeq: Number(w.RetainedThroughSeq),
    publicKeyFingerprint: String(w.PublicKeyFingerprint),
    ...(p ? { problem: { kind: String(p.Kind), seq: p.Seq as number | undefined, eventId: p.EventId as string | undefined, message: String(p.Message) } } : {}),
  };
}

/** `keyhold audit verify` through the API (offline with --data-dir is run by the server side: see bin/keyhold.js). */
async function verify(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } } });
  const r = await callKeyhold(clientSettings(values), 'VerifyAuditLog', {});
  return printVerification(fromWire(r), values.json === true, out);
}

export function cloudTrailClient(s: ClientSettings): CloudTrail {
  const ca = s.caBundle ? readFileSync(s.caBundle) : undefined;
  return new CloudTrail({
    endpoint: process.env.AWS_ENDPOINT_URL_CLOUDTRAIL || s.endpoint,
    region: s.region,
    credentials: s.credentials,
    requestHandler: ca ? new NodeHttpHandler({ httpsAgent: new Agent({ ca, keepAlive: true }) }) : undefined,
  });
}

/** `keyhold audit` filter flags -> LookupEvents' attribute keys (one at a time, as CloudTrail allows). */
const FILTERS: Record<string, LookupAttributeKey> = {
  'event-name': 'EventName', username: 'Username', 'resource-name': 'ResourceName', 'resource-type': 'ResourceType',
  'access-key-id': 'AccessKeyId', 'event-source': 'EventSource', 'read-only': 'ReadOnly', 'event-id': 'EventId',
};

function parseTime(v: string | undefined, flag: string): Date | undefined {
  if (v === undefined) return undefined;
  const d = /^\d+$/.test(v) ? new Date(Number(v) * 1000) : new Date(v);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag} must be an ISO 8601 time or epoch seconds`);
  return d;
}

/**
 * `keyhold audit [lookup]`: the audit log through CloudTrail's LookupEvents, newest first, with
 * its filters; follows NextToken up to --max-results events (default 50). --json prints the
 * CloudTrail records (CloudTrailEvent), otherwise a table.
 */
async function lookup(argv: string[], out: Out): Promise<number> {
  const options = Object.fromEntries(Object.keys(FILTERS).map((f) => [f, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: argv,
    options: {
      ...options, 'start-time': { type: 'string' }, 'end-time': { type: 'string' }, 'max-results': { type: 'string' },
      json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' },
    },
  });
  const v = values as Record<string, string | boolean | undefined>;
  const given = Object.keys(FILTERS).filter((f) => v[f] !== undefined);
  if (given.length > 1) throw new UsageError(`LookupEvents takes one filter at a time; got --${given.join(', --')}`);
  const max = v['max-results'] === undefined ? 50 : Number(v['max-results']);
  if (!Number.isInteger(max) || max < 1) throw new UsageError('--max-results must be a positive integer');
  const ct = cloudTrailClient(clientSettings(values));
  const records: Record<string, unknown>[] = [];
  try {
    for (let token: string | undefined; records.length < max; ) {
      const page = await ct.lookupEvents({
        LookupAttributes: given.length ? [{ AttributeKey: FILTERS[given[0]!]!, AttributeValue: String(v[given[0]!]) }] : undefined,
        StartTime: parseTime(v['start-time'] as string | undefined, '--start-time'),
        EndTime: parseTime(v['end-time'] as string | undefined, '--end-time'),
        MaxResults: Math.min(50, max - records.length),
        NextToken: token,
      });
      for (const e of page.Events ?? []) records.push(JSON.parse(e.CloudTrailEvent ?? '{}') as Record<string, unknown>);
      token = page.NextToken;
      if (!token) break;
    }
  } finally {
    ct.destroy();
  }
  if (values.json) {
    out(JSON.stringify(records, null, 2));
    return 0;
  }
  out(['TIME'.padEnd(20), 'EVENT'.padEnd(24), 'USER'.padEnd(20), 'SOURCE IP'.padEnd(15), 'RESOURCE'.padEnd(36), 'ERROR'].join('  '));
  for (const r of records) {
    const who = r.userIdentity as { userName?: string; type?: string; arn?: string; accessKeyId?: string };
    const user = who.type === 'Root' ? 'root' : (who.userName ?? who.arn?.split('/').pop() ?? who.accessKeyId ?? '-');
    const res = ((r.resources as { ARN: string }[]) ?? [])[0]?.ARN.split('/').pop() ?? '-';
    out([String(r.eventTime).padEnd(20), String(r.eventName).padEnd(24), user.padEnd(20), String(r.sourceIPAddress).padEnd(15), res.padEnd(36), String(r.errorCode ?? '-')].join('  '));
  }
  return 0;
}

/** `keyhold audit last-use [--principal ARN] [--key K] [--json]`: last successful use per principal and key. */
async function lastUse(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { principal: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } },
  });
  const r = await callKeyhold<{ Usage: { PrincipalArn: string; KeyArn: string; Operation: string; Timestamp: number; CloudTrailEventId: string; Count: number }[] }>(
    clientSettings(values), 'GetLastUsage', { ...(values.principal ? { PrincipalArn: values.principal } : {}), ...(values.key ? { KeyId: values.key } : {}) },
  );
  const rows = r.Usage.map((u) => ({
    principalArn: u.PrincipalArn, keyArn: u.KeyArn, lastOperation: u.Operation, lastUsed: new Date(u.Timestamp * 1000).toISOString(),
    eventId: u.CloudTrailEventId, count: u.Count,
  }));
  if (values.json) {
    out(JSON.stringify(rows, null, 2));
    return 0;
  }
  out(['PRINCIPAL'.padEnd(44), 'KEY'.padEnd(36), 'LAST OPERATION'.padEnd(32), 'LAST USED'.padEnd(24), 'COUNT'].join('  '));
  for (const u of rows) out([u.principalArn.padEnd(44), u.keyArn.split('/').pop()!.padEnd(36), u.lastOperation.padEnd(32), u.lastUsed.padEnd(24), String(u.count)].join('  '));
  return 0;
}

export async function auditCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'verify') return verify(rest, out);
  if (sub === 'lookup') return lookup(rest, out);
  if (sub === 'last-use') return lastUse(rest, out);
  if (sub === 'export') return exportCommand(rest, out);
  if (sub === undefined || sub.startsWith('--')) return lookup(argv, out);
  throw new UsageError(`unknown command: audit ${sub}`);
}

interface WireAlert {
  AlertId: string; Time: number; Severity: string; Rule: string; Summary: string; PrincipalArn?: string; AccessKeyId?: string;
  KeyArn?: string; EventIds: string[]; Acknowledged: boolean; AcknowledgedAt?: number; AcknowledgedBy?: string;
}

/**
 * `keyhold alerts settings [--source-cidr CIDR]... [--no-source-cidrs] [--auto-deactivate on|off] [--json]`:
 * shows the account's alert settings, changing those given first (PutAlertSettings).
 */
async function alertSettings(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'source-cidr': { type: 'string', multiple: true }, 'no-source-cidrs': { type: 'boolean' }, 'auto-deactivate': { type: 'string' },
      json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' },
    },
  });
  const settings = clientSettings(values);
  const auto = values['auto-deactivate'];
  if (auto !== undefined && auto !== 'on' && auto !== 'off') throw new UsageError('--auto-deactivate takes on or off');
  const change = {
    ...(values['source-cidr'] || values['no-source-cidrs'] ? { SourceCidrAllowlist: values['source-cidr'] ?? [] } : {}),
    ...(auto !== undefined ? { AutoDeactivateOnCritical: auto === 'on' } : {}),
  };
  const r = await callKeyhold<{ AccountId: string; SourceCidrAllowlist: string[]; AutoDeactivateOnCritical: boolean }>(
    settings, Object.keys(change).length > 0 ? 'PutAlertSettings' : 'GetAlertSettings', change,
  );
  const view = { accountId: r.AccountId, sourceCidrAllowlist: r.SourceCidrAllowlist, autoDeactivateOnCritical: r.AutoDeactivateOnCritical };
  if (values.json) {
    out(JSON.stringify(view, null, 2));
    return 0;
  }
  out(`account ${view.accountId}`);
  out(`source CIDR allowlist: ${view.sourceCidrAllowlist.length > 0 ? view.sourceCidrAllowlist.join(', ') : '(none: no check)'}`);
  out(`deactivate the access key on a critical alert: ${view.autoDeactivateOnCritical ? 'on' : 'off'}`);
  return 0;
}

/**
 * `keyhold alerts webhooks [list] [--json]`, `keyhold alerts webhooks add URL [--json]` (prints the
 * signing secret, once), `keyhold alerts webhooks delete WEBHOOK_ID`: the account's own webhooks.
 */
async function alertWebhooks(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv[0] === undefined || argv[0].startsWith('--') ? ['list', ...argv] : argv;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true,
    options: { json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } },
  });
  const settings = clientSettings(values);
  const iso = (t: number) => new Date(t * 1000).toISOString();
  if (sub === 'add') {
    if (positionals.length !== 1) throw new UsageError('usage: keyhold alerts webhooks add URL [--json]');
    const r = await callKeyhold<{ WebhookId: string; Url: string; Secret: string; CreationDate: number }>(settings, 'PutAlertWebhook', { Url: positionals[0] });
    if (values.json) {
      out(JSON.stringify({ webhookId: r.WebhookId, url: r.Url, secret: r.Secret, creationDate: iso(r.CreationDate) }, null, 2));
    } else {
      out(`added ${r.WebhookId} for ${r.Url}`);
      out(`signing secret (shown only now; X-Keyhold-Signature is sha256=HMAC-SHA256(secret, "<X-Keyhold-Timestamp>.<body>")):`);
      out(r.Secret);
    }
    return 0;
  }
  if (sub === 'delete') {
    if (positionals.length !== 1) throw new UsageError('usage: keyhold alerts webhooks delete WEBHOOK_ID');
    await callKeyhold(settings, 'DeleteAlertWebhook', { WebhookId: positionals[0] });
    out(values.json ? JSON.stringify({ webhookId: positionals[0], deleted: true }) : `deleted ${positionals[0]}`);
    return 0;
  }
  if (sub !== 'list') throw new UsageError(`unknown command: alerts webhooks ${sub}`);
  const r = await callKeyhold<{ Webhooks: { WebhookId: string; Url: string; CreationDate: number }[] }>(settings, 'ListAlertWebhooks', {});
  const list = r.Webhooks.map((w) => ({ webhookId: w.WebhookId, url: w.Url, creationDate: iso(w.CreationDate) }));
  if (values.json) {
    out(JSON.stringify(list, null, 2));
    return 0;
  }
  out(['WEBHOOK ID'.padEnd(27), 'CREATED'.padEnd(24), 'URL'].join('  '));
  for (const w of list) out([w.webhookId.padEnd(27), w.creationDate.padEnd(24), w.url].join('  '));
  return 0;
}

/** `keyhold alerts list [--all] [--json]`, `keyhold alerts ack ALERT_ID`, `keyhold alerts settings ...`, `keyhold alerts webhooks ...`. */
export async function alertsCommand(argv: string[], out: Out): Promise<number> {
  if (argv[0] === 'settings') return alertSettings(argv.slice(1), out);
  if (argv[0] === 'webhooks') return alertWebhooks(argv.slice(1), out);
  const [sub, ...rest] = argv[0] === undefined || argv[0].startsWith('--') ? ['list', ...argv] : argv;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true,
    options: { all: { type: 'boolean' }, json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } },
  });
  const settings = clientSettings(values);
  if (sub === 'ack') {
    if (positionals.length !== 1) throw new UsageError('usage: keyhold alerts ack ALERT_ID');
    await callKeyhold(settings, 'AcknowledgeAlert', { AlertId: positionals[0] });
    out(values.json ? JSON.stringify({ alertId: positionals[0], acknowledged: true }) : `acknowledged ${positionals[0]}`);
    return 0;
  }
  if (sub !== 'list') throw new UsageError(`unknown command: alerts ${sub}`);
  const r = await callKeyhold<{ Alerts: WireAlert[] }>(settings, 'ListAlerts', { IncludeAcknowledged: values.all === true });
  const alerts = r.Alerts.map((a) => ({
    alertId: a.AlertId, time: new Date(a.Time * 1000).toISOString(), severity: a.Severity, rule: a.Rule, summary: a.Summary,
    principalArn: a.PrincipalArn ?? null, accessKeyId: a.AccessKeyId ?? null, keyArn: a.KeyArn ?? null, eventIds: a.EventIds,
    acknowledged: a.Acknowledged, acknowledgedAt: a.AcknowledgedAt ? new Date(a.AcknowledgedAt * 1000).toISOString() : null, acknowledgedBy: a.AcknowledgedBy ?? null,
  }));
  if (values.json) {
    out(JSON.stringify(alerts, null, 2));
    return 0;
  }
  out(['ALERT ID'.padEnd(36), 'TIME'.padEnd(24), 'SEVERITY'.padEnd(8), 'RULE'.padEnd(24), 'ACK', 'SUMMARY'].join('  '));
  for (const a of alerts) out([a.alertId.padEnd(36), a.time.padEnd(24), a.severity.padEnd(8), a.rule.padEnd(24), a.acknowledged ? 'yes' : 'no ', a.summary].join('  '));
  return 0;
}
