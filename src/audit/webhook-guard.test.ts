import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookAddressGuard, WebhookAddressRefused } from './webhook-guard.js';

describe('WebhookAddressGuard: where account webhooks may deliver', () => {
  it('forbids loopback, link-local, unspecified and multicast, in IPv4, IPv6 and IPv4-mapped IPv6 form', () => {
    const g = new WebhookAddressGuard();
    const cases: [string, string][] = [
      ['127.0.0.1', 'loopback'], ['127.255.0.9', 'loopback'], ['::1', 'loopback'], ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'],
      ['169.254.169.254', 'link-local'], ['fe80::1', 'link-local'], ['febf::1', 'link-local'], ['::ffff:169.254.169.254', 'link-local'],
      ['0.0.0.0', 'unspecified'], ['0.1.2.3', 'unspecified'], ['::', 'unspecified'], ['::ffff:0.0.0.0', 'unspecified'],
      ['224.0.0.1', 'multicast'], ['239.255.255.250', 'multicast'], ['ff02::1', 'multicast'], ['::ffff:239.1.1.1', 'multicast'],
    ];
    for (const [ip, why] of cases) assert.equal(g.forbidden(ip), why, ip);
    for (const ip of ['93.184.216.34', '10.0.0.1', '192.168.1.1', '240.0.0.1', '2001:db8::1', '::ffff:93.184.216.34', 'fec0::1', 'not-an-ip']) {
      assert.equal(g.forbidden(ip), undefined, ip);
    }
  });

  it('--account-webhook-allow opens exactly the networks given (the mapped form of an allowed IPv4 too)', () => {
    const g = new WebhookAddressGuard(['127.0.0.0/8', 'fe80::/64']);
    assert.equal(g.forbidden('127.0.0.1'), undefined);
    assert.equal(g.forbidden('::ffff:127.0.0.1'), undefined);
    assert.equal(g.forbidden('fe80::1'), undefined);
    assert.equal(g.forbidden('::1'), 'loopback');
    assert.equal(g.forbidden('169.254.169.254'), 'link-local');
    assert.equal(g.forbidden('fe80:0:0:1::1'), 'link-local');
  });

  it('literalForbidden reads the URL host as WHATWG normalizes it (brackets, hex, decimal forms)', () => {
    const g = new WebhookAddressGuard();
    assert.deepEqual(g.literalForbidden(new URL('http://[::ffff:127.0.0.1]:9/x')), { address: '::ffff:7f00:1', why: 'loopback' });
    assert.deepEqual(g.literalForbidden(new URL('http://2130706433/')), { address: '127.0.0.1', why: 'loopback' });
    assert.deepEqual(g.literalForbidden(new URL('http://0xa9.254.169.254/latest/meta-data/')), { address: '169.254.169.254', why: 'link-local' });
    assert.equal(g.literalForbidden(new URL('http://localhost:9/')), undefined, 'names are checked at connect time');
    assert.equal(g.literalForbidden(new URL('https://93.184.216.34/')), undefined);
  });

  it('as a request lookup, a name that resolves only to forbidden addresses never connects; allowed, it does', async () => {
    let hits = 0;
    const server = createServer((_req, res) => { hits++; res.writeHead(204).end(); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const get = (g: WebhookAddressGuard) => new Promise<number>((resolve, reject) => {
      const req = request({ host: 'localhost', port, method: 'POST', lookup: g.lookup, family: 4 }, (res) => { res.resume(); resolve(res.statusCode!); });
      req.on('error', reject);
      req.end('{}');
    });
    try {
      await assert.rejects(get(new WebhookAddressGuard()), (e: Error) => {
        assert.ok(e instanceof WebhookAddressRefused, String(e));
        assert.match(e.message, /^localhost resolves to 127\.0\.0\.1 \(loopback\), which account webhooks may not reach \(.*--account-webhook-allow CIDR\)$/);
        return true;
      });
      assert.equal(hits, 0);
      assert.equal(await get(new WebhookAddressGuard(['127.0.0.0/8'])), 204);
      assert.equal(hits, 1);
    } finally {
      server.close();
    }
  });
});
