import { createHmac, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Alert, AuditEvent, Severity } from './event.js';

export type { Alert, Severity };

/** What the engine needs from the audit log's writer (SqliteAuditLog implements it). */
export interface AlertStore {
  addAlerts(alerts: Alert[], webhooks: readonly string[]): Promise<void>;
  claimDeliveries(leaseMs: number, limit: number): Promise<{ id: number; url: string; attempts: number; body: string }[]>;
  deliveryResult(id: number, ok: boolean, nextAt: number, error: string | null): Promise<void>;
  /** Whether the access key has ever been used successfully (before these events). */
  accessKeySeenBefore(accessKeyId: string): Promise<boolean>;
}

export interface AlertOptions {
  webhooks: readonly string[];
  /** HMAC-SHA256 key for the X-Keyhold-Signature header. */
  webhookSecret: Buffer;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  now?: () => number;
}

/** AccessDenied answers to one principal within the window that make a burst. */
export const ACCESS_DENIED_BURST = 5;
const ACCESS_DENIED_WINDOW_MS = 60_000;
const ROOT_ALERT_EVERY_MS = 3_600_000;
/** How often the outbox is looked at; an alert is posted within this plus the commit time. */
const DELIVERY_POLL_MS = 200;
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
 * credentials). In a cluster each process examines the events it wrote, so burst counting is
 * per process.
 */
export class AlertEngine {
  private readonly denied = new Map<string, number[]>();
  /** Root use is alerted once per access key per hour (per process), not on every call. */
  private readonly rootAlerted = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private delivering = false;
  private readonly now: () => number;

  constructor(private readonly store: AlertStore, private readonly opts: AlertOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.deliver(), DELIVERY_POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Called with each committed batch; never throws into the caller. */
  examine(events: readonly AuditEvent[]): void {
    setImmediate(() => {
      this.detect(events).then(
        (alerts) => (alerts.length > 0 ? this.store.addAlerts(alerts, this.opts.webhooks).then(() => this.deliver()) : undefined),
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

  private async detect(events: readonly AuditEvent[]): Promise<Alert[]> {
    const out: Alert[] = [];
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
      if (e.errorCode === 'UnrecognizedClientException' && e.accessKeyId && (await this.store.accessKeySeenBefore(e.accessKeyId))) {
        out.push(this.alert(e, 'critical', 'revoked-credentials-used', `access key ${e.accessKeyId}, which worked before, was presented after it was deleted or deactivated (${e.eventName} from ${e.sourceIPAddress})`));
      }
    }
    return out;
  }

  /** Posts due alerts to their webhooks; failures retry with exponential backoff. */
  async deliver(): Promise<void> {
    if (this.delivering || this.opts.webhooks.length === 0) return;
    this.delivering = true;
    try {
      const due = await this.store.claimDeliveries(DELIVERY_LEASE_MS, 20);
      await Promise.all(due.map(async (d) => {
        try {
          await this.post(d.url, d.body);
          await this.store.deliveryResult(d.id, true, 0, null);
        } catch (e) {
          const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** d.attempts);
          this.opts.log('warn', 'alert webhook delivery failed; will retry', { url: d.url, attempt: d.attempts + 1, retryInMs: backoff, error: String(e) });
          await this.store.deliveryResult(d.id, false, this.now() + backoff, String(e));
        }
      }));
    } catch (e) {
      this.opts.log('error', 'alert delivery failed', { error: String(e) });
    } finally {
      this.delivering = false;
    }
  }

  private post(url: string, body: string): Promise<void> {
    const u = new URL(url);
    const timestamp = String(Math.floor(this.now() / 1000));
    const signature = createHmac('sha256', this.opts.webhookSecret).update(`${timestamp}.${body}`).digest('hex');
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(u, {
        method: 'POST',
        timeout: DELIVERY_TIMEOUT_MS,
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
