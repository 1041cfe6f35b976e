import { createHmac, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type BlockList } from 'node:net';
import type { Alert, AuditEvent, Severity } from './event.js';
import { ACCOUNT_WEBHOOKS_PREFIX, type OutboxRow } from './audit-db.js';
import { cidrList, WebhookAddressGuard, WebhookAddressRefused } from './webhook-guard.js';

export type { Alert, Severity };

/** What the engine needs from the audit log's writer (SqliteAuditLog implements it). */
export interface AlertStore {
  addAlerts(alerts: Alert[], webhooks: readonly string[]): Promise<void>;
  claimDeliveries(leaseMs: number, limit: number): Promise<OutboxRow[]>;
  /** Turns an account placeholder row into rows for the account's webhooks (or closes a row, with `note`). */
  expandDelivery(id: number, targets: readonly { url: string; webhookId: string }[], note: string | null): Promise<void>;
  deliveryResult(id: number, ok: boolean, nextAt: number, error: string | null): Promise<void>;
  /** Runs the profile detectors (profiles.ts) over events not yet examined; their alerts come back stored and queued. */
  runProfiles(limit: number, webhooks: readonly string[]): Promise<{ alerts: Alert[]; more: boolean }>;
  /** Who last used the access key successfully, per the log; undefined if it never worked. */
  accessKeyOwner(accessKeyId: string): Promise<{ principalArn: string; accountId: string | null } | undefined>;
}

export interface AlertOptions {
  webhooks: readonly string[];
  /** HMAC-SHA256 key for the X-Keyhold-Signature header. */
  webhookSecret: Buffer;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  now?: () => number;
  /** An account's webhooks (set through the API) with their HMAC secrets; main.ts reads them from identity. */
  accountWebhooks?: (accountId: string) => Promise<{ webhookId: string; url: string }[]>;
  accountWebhookSecret?: (accountId: string, webhookId: string) => Promise<Buffer | undefined>;
  /** Where account webhooks may deliver (--account-webhook-allow); default: nowhere forbidden. The server's own webhooks are not checked. */
  accountWebhookGuard?: WebhookAddressGuard;
  /** The optional response to a stored critical alert (deactivating the access key; operations/alert-response.ts). */
  respond?: (alert: Alert) => Promise<void>;
  /** An account's alert settings (main.ts reads them from identity); none when absent. */
  alertSettings?: (accountId: string) => Promise<AccountAlertSettings>;
}

/** Per-account alert settings (set through the API: PutAlertSettings). */
export interface AccountAlertSettings {
  /** CIDR blocks the account's calls are expected from; a call from elsewhere raises an alert. Empty: no check. */
  sourceCidrAllowlist?: string[];
}

/** AccessDenied answers to one principal within the window that make a burst. */
export const ACCESS_DENIED_BURST = 5;
const ACCESS_DENIED_WINDOW_MS = 60_000;
const ROOT_ALERT_EVERY_MS = 3_600_000;
const REFUSED_ALERT_EVERY_MS = 60_000;
const OUTSIDE_ALLOWLIST_EVERY_MS = 600_000;
/** Events the profile detectors examine per writer call. */
const PROFILE_CHUNK = 2000;

/** The audit detail the transport adds when it refuses a credential it knows (api/refused-credential.ts). */
interface RefusedCredentialInfo {
  state: string;
  principalArn: string;
  accountId: string;
  signatureValid: boolean;
}

const REFUSED_WORDS: Record<string, string> = {
  'access-key-inactive': 'the access key is deactivated',
  'user-offboarded': 'the user was offboarded',
  'user-deleted': 'the user was deleted',
  'session-ended': 'the role session was ended',
  'session-expired': 'the role session expired',
};
/** How often the outbox is looked at; an alert is posted within this plus the commit time. */
const DELIVERY_POLL_MS = 200;
/** How often, at most, the profile detectors look at new events (well within the 2 s an alert may take). */
const PROFILE_EVERY_MS = 100;
const DELIVERY_LEASE_MS = 15_000;
const DELIVERY_TIMEOUT_MS = 5_000;
const MAX_BACKOFF_MS = 5 * 60_000;

function keyOf(e: AuditEvent): string | null {
  return e.resources.find((r) => r.arn.includes(':key/'))?.arn ?? null;
}

/**
 * Detectors over committed events, off the request path (they run after the commit, on a later
 * turn of the event loop), and webhook delivery from a persistent outbox in the audit database:
 * an alert raised before a restart is still delivered after it.
 *
 * Rules: use of root credentials; any touch of a decoy (honey) key; a burst of AccessDenied for
 * one principal; an access key that worked before failing as unknown (deleted or deactivated
 * credentials, naming whose they were). In a cluster each process examines the events it wrote, so burst counting is
 * per process.
 */
export class AlertEngine {
  private readonly denied = new Map<string, number[]>();
  /** Root use is alerted once per access key per hour (per process), not on every call. */
  private readonly rootAlerted = new Map<string, number>();
  /** Refused credentials are alerted once per access key per minute (per process). */
  private readonly refusedAlerted = new Map<string, number>();
  private readonly outsideAlerted = new Map<string, number>();
  private readonly allowlists = new Map<string, { text: string; list: BlockList }>();
  private profiling: Promise<void> | undefined;
  private profileAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private profileTimer: NodeJS.Timeout | undefined;
  private delivering = false;
  private readonly now: () => number;
  private readonly guard: WebhookAddressGuard;

  constructor(private readonly store: AlertStore, private readonly opts: AlertOptions) {
    this.now = opts.now ?? Date.now;
    this.guard = opts.accountWebhookGuard ?? new WebhookAddressGuard();
  }

  start(): void {
    this.timer = setInterval(() => void this.deliver(), DELIVERY_POLL_MS);
    this.timer.unref();
    // Events committed before a restart and not yet examined are examined now.
    this.runProfiles();
  }

  /** Runs the profile detectors until they have caught up; one run at a time, again if asked meanwhile. */
  runProfiles(): void {
    if (this.profiling) {
      this.profileAgain = true;
      return;
    }
    this.profiling = (async () => {
      try {
        for (;;) {
          this.profileAgain = false;
          const r = await this.store.runProfiles(PROFILE_CHUNK, this.opts.webhooks);
          if (r.alerts.length > 0) {
            this.respond(r.alerts);
            void this.deliver();
          }
          if (!r.more && !this.profileAgain) break;
        }
      } catch (e) {
        this.opts.log('error', 'profile detectors failed; they resume with the next events', { error: String(e) });
      } finally {
        this.profiling = undefined;
      }
    })();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.profileTimer) clearTimeout(this.profileTimer);
  }

  /** Called with each committed batch; never throws into the caller. */
  examine(events: readonly AuditEvent[]): void {
    // The profile detectors read the log itself, at most every PROFILE_EVERY_MS (not once per batch:
    // each run is a round trip to the writer thread).
    this.profileTimer ??= setTimeout(() => {
      this.profileTimer = undefined;
      this.runProfiles();
    }, PROFILE_EVERY_MS);
    setImmediate(() => {
      this.detect(events).then(
        (alerts) => (alerts.length > 0 ? this.store.addAlerts(alerts, this.opts.webhooks).then(() => { this.respond(alerts); return this.deliver(); }) : undefined),
        (e) => this.opts.log('error', 'alert detection failed', { error: String(e) }),
      ).catch((e) => this.opts.log('error', 'alerts could not be stored', { error: String(e) }));
    });
  }

  private alert(e: AuditEvent, severity: Severity, rule: string, summary: string, eventIds = [e.eventId!]): Alert {
    return {
      alertId: randomUUID(), time: new Date(this.now()).toISOString(), severity, rule,
      accountId: e.principal?.accountId ?? null, principalArn: e.principal?.arn ?? null, accessKeyId: e.accessKeyId ?? null,
      keyArn: keyOf(e), summary, eventIds,
    };
  }

  /**
   * A call with credentials that no longer work: a deactivated access key, an offboarded or deleted
   * user, an ended or expired session (named by the audit detail the transport adds), or an access
   * key that worked before and is now unknown (deleted; its owner is found in the log). Critical
   * when the request was signed with the real secret; high when the signature could not be checked
   * or was wrong (someone holds the key id only). One alert per access key per minute.
   */
  private async refusedCredential(e: AuditEvent): Promise<Alert | undefined> {
    const akid = e.accessKeyId;
    if (!akid || e.principal) return undefined;
    const refused = e.details?.refusedCredential as RefusedCredentialInfo | undefined;
    if (!refused && e.errorCode !== 'UnrecognizedClientException') return undefined;
    const t = this.now();
    if ((this.refusedAlerted.get(akid) ?? -Infinity) > t - REFUSED_ALERT_EVERY_MS) return undefined;
    let accountId: string | null;
    let principalArn: string;
    let why: string;
    let signed: boolean;
    if (refused) {
      ({ accountId, principalArn } = refused);
      why = REFUSED_WORDS[refused.state] ?? refused.state;
      signed = refused.signatureValid;
    } else {
      const owner = await this.store.accessKeyOwner(akid);
      if (!owner) return undefined;
      ({ accountId, principalArn } = owner);
      why = 'the access key was deleted';
      signed = false;
    }
    this.refusedAlerted.set(akid, t);
    if (this.refusedAlerted.size > 10_000) this.refusedAlerted.delete(this.refusedAlerted.keys().next().value!);
    return {
      ...this.alert(e, signed ? 'critical' : 'high', 'revoked-credentials-used',
        `${principalArn}'s access key ${akid} was presented after it stopped working (${why}): ${e.eventName} from ${e.sourceIPAddress}, `
          + (signed ? 'signed with its real secret' : refused ? 'with a wrong signature' : 'signature not checkable'),
      ),
      accountId, principalArn,
    };
  }

  private async detect(events: readonly AuditEvent[]): Promise<Alert[]> {
    const out: Alert[] = [];
    // Account settings are read once per account and batch, before the events (not once per event,
    // and no await per event).
    const settings = new Map<string, AccountAlertSettings>();
    if (this.opts.alertSettings) {
      const reads = new Map<string, Promise<AccountAlertSettings>>();
      for (const e of events) {
        const a = e.principal?.accountId;
        if (a !== undefined && !reads.has(a) && isIP(e.sourceIPAddress) !== 0) reads.set(a, this.opts.alertSettings(a));
      }
      const read = await Promise.all(reads.values());
      [...reads.keys()].forEach((a, i) => settings.set(a, read[i]!));
    }
    for (const e of events) {
      if (e.principal?.isRoot && e.errorCode === undefined && (this.rootAlerted.get(e.principal.accessKeyId) ?? -Infinity) < this.now() - ROOT_ALERT_EVERY_MS) {
        this.rootAlerted.set(e.principal.accessKeyId, this.now());
        out.push(this.alert(e, 'medium', 'root-credentials-used', `${e.eventName} called with the account root's credentials (${e.accessKeyId}) from ${e.sourceIPAddress}`));
      }
      const decoy = e.details?.decoyKey;
      if (typeof decoy === 'string') {
        out.push({ ...this.alert(e, 'critical', 'honey-key-touched', `decoy key ${decoy} touched by ${e.principal?.arn ?? e.accessKeyId} (${e.eventName}) from ${e.sourceIPAddress}`), keyArn: decoy });
      }
      if (e.errorCode === 'AccessDeniedException' && e.principal) {
        const t = Date.parse(e.eventTime);
        const list = (this.denied.get(e.principal.arn) ?? []).filter((x) => x > t - ACCESS_DENIED_WINDOW_MS);
        list.push(t);
        this.denied.set(e.principal.arn, list);
        if (list.length === ACCESS_DENIED_BURST) {
          out.push(this.alert(e, 'high', 'access-denied-burst', `${ACCESS_DENIED_BURST} AccessDenied answers to ${e.principal.arn} within ${ACCESS_DENIED_WINDOW_MS / 1000} s`));
        }
      }
      // Most events have a principal and are not refused credentials: no await for them.
      if (e.accessKeyId && !e.principal) {
        const refused = await this.refusedCredential(e);
        if (refused) out.push(refused);
      }
      const widening = e.details?.policyWidening as { addedPrincipals: string[]; addedActions: { principal: string; actions: string[] }[]; removedDenies: { principal: string; actions: string[] }[] } | undefined;
      if (e.eventName === 'PutKeyPolicy' && e.errorCode === undefined && widening) {
        const parts = [
          ...(widening.addedPrincipals.length > 0 ? [`new principals ${widening.addedPrincipals.join(', ')}`] : []),
          ...widening.addedActions.map((a) => `${a.principal} may now ${a.actions.join(', ')}`),
          ...widening.removedDenies.map((d) => `${d.principal} no longer denied ${d.actions.join(', ')}`),
        ];
        out.push(this.alert(e, 'high', 'key-policy-widened', `${e.principal?.arn} widened the policy of ${keyOf(e)}: ${parts.join('; ')}`));
      }
      if (e.principal && this.opts.alertSettings) {
        const outside = this.outsideAllowlist(e, settings);
        if (outside) out.push(outside);
      }
    }
    return out;
  }

  /** A call of an account that has a source CIDR allowlist, from an address outside it. */
  private outsideAllowlist(e: AuditEvent, settings: ReadonlyMap<string, AccountAlertSettings>): Alert | undefined {
    const p = e.principal;
    if (!p || isIP(e.sourceIPAddress) === 0) return undefined;
    const cidrs = settings.get(p.accountId)?.sourceCidrAllowlist ?? [];
    if (cidrs.length === 0) return undefined;
    const text = cidrs.join(',');
    let cached = this.allowlists.get(p.accountId);
    if (cached?.text !== text) this.allowlists.set(p.accountId, (cached = { text, list: cidrList(cidrs) }));
    const ip = e.sourceIPAddress;
    if (cached.list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4')) return undefined;
    const k = `${p.arn} ${ip}`;
    const t = this.now();
    if ((this.outsideAlerted.get(k) ?? -Infinity) > t - OUTSIDE_ALLOWLIST_EVERY_MS) return undefined;
    this.outsideAlerted.set(k, t);
    if (this.outsideAlerted.size > 10_000) this.outsideAlerted.delete(this.outsideAlerted.keys().next().value!);
    return this.alert(e, 'high', 'source-outside-allowlist', `${p.arn} called ${e.eventName} from ${ip}, outside the account's allowed networks ${cidrs.join(', ')}`
      + (e.errorCode ? ` (the call failed: ${e.errorCode})` : ''));
  }

  /** Posts due alerts to their webhooks; failures retry with exponential backoff. */
  async deliver(): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    let again = false;
    try {
      const due = await this.store.claimDeliveries(DELIVERY_LEASE_MS, 20);
      await Promise.all(due.map(async (d) => {
        if (d.url.startsWith(ACCOUNT_WEBHOOKS_PREFIX)) {
          // Resolved now, so a webhook added after the alert was raised but before delivery gets it too.
          const account = d.url.slice(ACCOUNT_WEBHOOKS_PREFIX.length);
          const hooks = this.opts.accountWebhooks ? await this.opts.accountWebhooks(account) : [];
          await this.store.expandDelivery(d.id, hooks.map((h) => ({ url: h.url, webhookId: h.webhookId })), null);
          again ||= hooks.length > 0;
          return;
        }
        let secret = this.opts.webhookSecret;
        let guard: WebhookAddressGuard | undefined;
        if (d.webhookId !== null) {
          guard = this.guard;
          const s = d.accountId && this.opts.accountWebhookSecret ? await this.opts.accountWebhookSecret(d.accountId, d.webhookId) : undefined;
          if (!s) {
            await this.store.expandDelivery(d.id, [], 'the webhook was deleted before delivery');
            return;
          }
          secret = s;
        }
        try {
          await this.post(d.url, d.body, secret, guard);
          await this.store.deliveryResult(d.id, true, 0, null);
        } catch (e) {
          // A refused address is a failed delivery like any other: retried with the same backoff
          // (the operator may allow the network and restart), never in a loop.
          const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** d.attempts);
          const msg = e instanceof WebhookAddressRefused
            ? 'alert webhook delivery refused: the account webhook points at a forbidden address; will retry'
            : 'alert webhook delivery failed; will retry';
          this.opts.log('warn', msg, { webhook: d.webhookId ?? 'server', target: webhookTarget(d.url), attempt: d.attempts + 1, retryInMs: backoff, error: String(e) });
          await this.store.deliveryResult(d.id, false, this.now() + backoff, String(e));
        }
      }));
    } catch (e) {
      this.opts.log('error', 'alert delivery failed', { error: String(e) });
    } finally {
      this.delivering = false;
    }
    if (again) setImmediate(() => void this.deliver());
  }

  /** Runs the optional response for the critical ones among stored alerts; never throws. */
  private respond(alerts: readonly Alert[]): void {
    const respond = this.opts.respond;
    if (!respond) return;
    for (const a of alerts) {
      if (a.severity !== 'critical') continue;
      respond(a).catch((e) => this.opts.log('error', 'alert response failed', { alertId: a.alertId, error: String(e) }));
    }
  }

  /** Posts one alert; with `guard` (account webhooks), only to addresses it allows. */
  private post(url: string, body: string, secret: Buffer, guard?: WebhookAddressGuard): Promise<void> {
    const u = new URL(url);
    // Node calls `lookup` only for names, so a literal IP is checked here.
    const forbidden = guard?.literalForbidden(u);
    if (forbidden) return Promise.reject(new WebhookAddressRefused(WebhookAddressGuard.refusal(forbidden.address, forbidden.why)));
    const timestamp = String(Math.floor(this.now() / 1000));
    const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(u, {
        method: 'POST',
        timeout: DELIVERY_TIMEOUT_MS,
        ...(guard ? { lookup: guard.lookup } : {}),
        headers: {
          'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
          'x-keyhold-timestamp': timestamp, 'x-keyhold-signature': `sha256=${signature}`,
        },
      }, (res) => {
        res.resume();
        res.on('end', () => ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }
}

/**
 * What a log line may say about where a webhook points: scheme, host and port. Webhook URLs often
 * carry their credential (a token in the path or query, as chat services issue them, or user:password
 * before the host), so the rest of the URL is never written to the server log.
 */
export function webhookTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '[unparseable URL]';
  }
}
