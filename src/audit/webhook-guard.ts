import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** A CIDR block in canonical form, or undefined when it is not one (`10.0.0.0/8`, `2001:db8::/32`, or a bare address). */
export function parseCidr(text: string): string | undefined {
  const [addr, bits, extra] = text.trim().split('/');
  if (extra !== undefined || !addr) return undefined;
  const v = isIP(addr);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  if (bits === undefined) return `${addr}/${max}`;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
  return `${addr}/${Number(bits)}`;
}

/** A CIDR allowlist as a node:net BlockList (matching is node's); invalid entries were refused when set. */
export function cidrList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/') as [string, string | undefined];
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(addr, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
  }
  return list;
}

/**
 * Networks a tenant must not aim the server at through an account webhook (SSRF): the server's own
 * loopback ports, the cloud metadata address 169.254.169.254 and the rest of link-local, the
 * unspecified address (0.0.0.0 reaches the local host on Linux) and multicast (RFC 6890 special
 * purpose blocks). The IPv4-mapped IPv6 forms (::ffff:0:0/96, RFC 4291 2.5.5.2) are listed too;
 * node's BlockList also matches them against the IPv4 rules, this keeps it explicit.
 */
const FORBIDDEN: readonly { name: string; cidrs: readonly string[] }[] = [
  { name: 'loopback', cidrs: ['127.0.0.0/8', '::1/128', '::ffff:127.0.0.0/104'] },
  { name: 'link-local', cidrs: ['169.254.0.0/16', 'fe80::/10', '::ffff:169.254.0.0/112'] },
  { name: 'unspecified', cidrs: ['0.0.0.0/8', '::/128', '::ffff:0.0.0.0/104'] },
  { name: 'multicast', cidrs: ['224.0.0.0/4', 'ff00::/8', '::ffff:224.0.0.0/100'] },
];
const FORBIDDEN_LISTS = FORBIDDEN.map((f) => ({ name: f.name, list: cidrList(f.cidrs) }));

/** The hint the refusals end with: what the operator can do about it. */
export const ACCOUNT_WEBHOOK_ALLOW_HINT = 'the server operator can allow a network with --account-webhook-allow CIDR';

/** A delivery (or a PutAlertWebhook) refused because of where the webhook points; its message names the address and why. */
export class WebhookAddressRefused extends Error {
  override readonly name = 'WebhookAddressRefused';
}

/**
 * Where account webhooks (PutAlertWebhook) may deliver: anywhere but the FORBIDDEN networks, except
 * those the operator allows (`--account-webhook-allow`). The operator's own `--alert-webhook` URLs are
 * trusted and not checked. Checked at PutAlertWebhook for a literal IP, and at connect time on every
 * address a name resolves to (`lookup`), so `localhost` or a DNS-rebinding name cannot get around it.
 */
export class WebhookAddressGuard {
  private readonly allow: BlockList;

  constructor(readonly allowed: readonly string[] = []) {
    this.allow = cidrList(allowed);
  }

  /** What a refusal says: the address, why, and what the operator can do. */
  static refusal(address: string, why: string): string {
    return `${address} is a ${why} address, which account webhooks may not reach (${ACCOUNT_WEBHOOK_ALLOW_HINT})`;
  }

  /** Why an account webhook may not reach `ip` ('loopback', 'link-local', ...), or undefined when it may. */
  forbidden(ip: string): string | undefined {
    const v = isIP(ip);
    if (v === 0) return undefined;
    const type = v === 6 ? 'ipv6' : 'ipv4';
    const hit = FORBIDDEN_LISTS.find((f) => f.list.check(ip, type));
    if (!hit || this.allow.check(ip, type)) return undefined;
    return hit.name;
  }

  /** The URL's host, when it is a literal IP address account webhooks may not reach, and why; else undefined. */
  literalForbidden(url: URL): { address: string; why: string } | undefined {
    const address = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const why = this.forbidden(address);
    return why === undefined ? undefined : { address, why };
  }

  /**
   * A `lookup` for http(s).request: resolves as dns.lookup does and hands the socket only the
   * addresses account webhooks may reach; when there is none, fails with WebhookAddressRefused. Node
   * does not call it for a literal IP host: check those with literalForbidden first.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true } as LookupAllOptions, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const usable = addresses.filter((a) => this.forbidden(a.address) === undefined);
      if (usable.length === 0) {
        const seen = addresses.map((a) => `${a.address} (${this.forbidden(a.address) ?? 'unknown'})`).join(', ');
        return callback(new WebhookAddressRefused(`${hostname} resolves to ${seen || 'no address'}, which account webhooks may not reach (${ACCOUNT_WEBHOOK_ALLOW_HINT})`), '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      return callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
}
