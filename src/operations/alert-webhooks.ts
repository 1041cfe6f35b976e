import { ACCOUNT_WEBHOOK_ALLOW_HINT } from '../audit/index.js';
import { NotFoundException, validationError } from '../errors/index.js';
import { authorizeAccount } from './common.js';
import type { Operation } from './context.js';
import { KEYHOLD_EVENT_SOURCE } from './verify-audit-log.js';

/**
 * PutAlertWebhook (Keyhold's own): adds a webhook that receives every alert of the caller's
 * account, through the same persistent outbox and with the same signature headers as the server's
 * `--alert-webhook`, but keyed by a secret of its own. The secret is generated here, sealed at rest
 * and returned in this answer only (never in the audit event, which names the webhook by its id and
 * its URL's origin).
 */
export const putAlertWebhook: Operation<{ url: string }, { webhookId: string; url: string; secret: string; creationDate: Date }> = {
  name: 'PutAlertWebhook',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'PutAlertWebhook', audit);
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      throw validationError([`Value '${input.url}' at 'url' failed to satisfy constraint: Member must be an absolute http(s) URL`]);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw validationError([`Value '${input.url}' at 'url' failed to satisfy constraint: Member must be an absolute http(s) URL`]);
    }
    if (url.username || url.password) throw validationError(["Value at 'url' failed to satisfy constraint: Member must not carry credentials"]);
    // A literal IP is refused here; a name is checked on the addresses it resolves to at each delivery.
    const forbidden = svc.accountWebhookGuard.literalForbidden(url);
    if (forbidden) {
      throw validationError([`Value '${input.url}' at 'url' failed to satisfy constraint: Member must not point at a loopback, link-local, unspecified or multicast address `
        + `(${forbidden.address} is ${forbidden.why}; ${ACCOUNT_WEBHOOK_ALLOW_HINT})`]);
    }
    const w = await svc.identity.addAlertWebhook(call.principal.accountId, url.href, svc.clock.now());
    audit.detail('webhookId', w.webhookId);
    // Scheme, host and port only: a webhook's path and query often carry its own bearer token
    // (e.g. /services/T0/B0/<token>), and audit events are exported to SIEMs.
    audit.detail('url', `${url.origin}${url.pathname === '/' && !url.search ? '/' : '/…'}`);
    return { webhookId: w.webhookId, url: w.url, secret: w.secret, creationDate: new Date(w.createdAt) };
  },
};

/** ListAlertWebhooks (Keyhold's own): the account's webhooks, without their secrets. */
export const listAlertWebhooks: Operation<Record<string, never>, { webhooks: { webhookId: string; url: string; creationDate: Date }[] }> = {
  name: 'ListAlertWebhooks',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: true,
  async run(svc, call, _input, audit) {
    await authorizeAccount(svc, call, 'ListAlertWebhooks', audit);
    const list = await svc.identity.listAlertWebhooks(call.principal.accountId);
    return { webhooks: list.map((w) => ({ webhookId: w.webhookId, url: w.url, creationDate: new Date(w.createdAt) })) };
  },
};

/** DeleteAlertWebhook (Keyhold's own): removes a webhook; deliveries still queued for it are dropped. */
export const deleteAlertWebhook: Operation<{ webhookId: string }, Record<string, never>> = {
  name: 'DeleteAlertWebhook',
  eventSource: KEYHOLD_EVENT_SOURCE,
  readOnly: false,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'DeleteAlertWebhook', audit);
    audit.detail('webhookId', input.webhookId);
    if (!(await svc.identity.deleteAlertWebhook(call.principal.accountId, input.webhookId))) {
      throw new NotFoundException(`Alert webhook '${input.webhookId}' does not exist`);
    }
    return {};
  },
};
