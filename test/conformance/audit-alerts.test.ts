/**
 * Conformance: alerts (issue 5). Detectors read committed events off the request path; alerts are
 * stored, listed and acknowledged through the API and `keyhold alerts`, and POSTed to webhooks
 * with an HMAC-SHA256 signature from a persistent outbox (delivered after a restart when the
 * webhook was down).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { rejects } from '../helpers/assert.js';
import { cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';

const SECRET = 'webhook-test-secret';

interface Received { at: number; body: string; alert: { alertId: string; rule: string; severity: string; keyArn: string | null; eventIds: string[]; principalArn: string | null }; signature: string; timestamp: string }

function receiver(port = 0): Promise<{ server: Server; url: string; port: number; got: Received[]; waitFor: (rule: string, ms: number) => Promise<Received> }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.push({ at: Date.now(), body, alert: JSON.parse(body), signature: String(req.headers['x-keyhold-signature']), timestamp: String(req.headers['x-keyhold-timestamp']) });
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => {
    const p = (server.address() as AddressInfo).port;
    resolve({
      server, url: `http://127.0.0.1:${p}/hook`, port: p, got,
      async waitFor(rule, ms) {
        const end = Date.now() + ms;
        for (;;) {
          const r = got.find((g) => g.alert.rule === rule);
          if (r) return r;
          if (Date.now() > end) throw new Error(`no ${rule} alert within ${ms} ms; got ${got.map((g) => g.alert.rule).join(', ')}`);
          await new Promise((x) => setTimeout(x, 20));
        }
      },
    });
  }));
}

describe('alerts', () => {
  let hook: Awaited<ReturnType<typeof receiver>>;
  let s: TestServer;
  before(async () => {
    hook = await receiver();
    s = await startServer({ args: ['--alert-webhook', hook.url], env: { KEYHOLD_ALERT_WEBHOOK_SECRET: SECRET } });
  });
  after(async () => {
    await s.stop();
    s.cleanup();
    hook.server.close();
  });

  it('a touch of a honey key reaches the webhook within 2 s, signed', async () => {
    const kms = s.kms();
    const decoy = (await kms.createKey({ Tags: [{ TagKey: 'KeyholdDecoy', TagValue: 'true' }] })).KeyMetadata!;
    const root = await hook.waitFor('root-credentials-used', 2000);
    assert.equal(root.alert.severity, 'medium');
    const t0 = Date.now();
    await kms.encrypt({ KeyId: decoy.KeyId!, Plaintext: Buffer.from('bait') });
    const hit = await hook.waitFor('honey-key-touched', 2000);
    assert.ok(hit.at - t0 < 2000, `delivered ${hit.at - t0} ms after the call`);
    assert.equal(hit.alert.severity, 'critical');
    assert.equal(hit.alert.keyArn, decoy.Arn);
    assert.equal(hit.alert.principalArn, `arn:aws:iam::${s.accountId}:root`);
    assert.equal(hit.alert.eventIds.length, 1);
    assert.equal(hit.signature, `sha256=${createHmac('sha256', SECRET).update(`${hit.timestamp}.${hit.body}`).digest('hex')}`);
    // The triggering event is the Encrypt in the audit log.
    const r = await runCli(['audit', '--event-id', hit.alert.eventIds[0]!, '--json'], cliEnv(s));
    assert.equal((JSON.parse(r.stdout) as { eventName: string }[])[0]!.eventName, 'Encrypt');
    assert.equal(hook.got.filter((g) => g.alert.rule === 'root-credentials-used').length, 1, 'root use is alerted once, not per call');
  });

  it('a burst of AccessDenied raises one alert', async () => {
    const kms = s.kms();
    const key = (await kms.createKey({})).KeyMetadata!;
    const root = `arn:aws:iam::${s.accountId}:root`;
    await kms.putKeyPolicy({
      KeyId: key.KeyId!, PolicyName: 'default',
      Policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'admin', Effect: 'Allow', Principal: { AWS: root }, Action: 'kms:*', Resource: '*' },
          { Sid: 'no-encrypt', Effect: 'Deny', Principal: { AWS: root }, Action: 'kms:Encrypt', Resource: '*' },
        ],
      }),
    });
    for (let i = 0; i < 5; i++) await rejects(kms.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') }), 'AccessDeniedException');
    const burst = await hook.waitFor('access-denied-burst', 2000);
    assert.equal(burst.alert.severity, 'high');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(hook.got.filter((g) => g.alert.rule === 'access-denied-burst').length, 1);
  });

  it('lists and acknowledges alerts through the API and `keyhold alerts`', async () => {
    const list = await runCli(['alerts', '--json'], cliEnv(s));
    assert.equal(list.code, 0, list.stderr);
    const alerts = JSON.parse(list.stdout) as { alertId: string; rule: string; acknowledged: boolean; eventIds: string[]; time: string }[];
    assert.deepEqual(alerts.map((a) => a.rule), ['access-denied-burst', 'honey-key-touched', 'root-credentials-used']);
    const honey = alerts[1]!;
    assert.equal(honey.alertId, hook.got.find((g) => g.alert.rule === 'honey-key-touched')!.alert.alertId);
    const ack = await runCli(['alerts', 'ack', honey.alertId], cliEnv(s));
    assert.equal(ack.code, 0, ack.stderr);
    const open = JSON.parse((await runCli(['alerts', 'list', '--json'], cliEnv(s))).stdout) as { alertId: string }[];
    assert.ok(!open.some((a) => a.alertId === honey.alertId));
    const all = JSON.parse((await runCli(['alerts', 'list', '--all', '--json'], cliEnv(s))).stdout) as { alertId: string; acknowledged: boolean; acknowledgedBy: string }[];
    const acked = all.find((a) => a.alertId === honey.alertId)!;
    assert.equal(acked.acknowledged, true);
    assert.equal(acked.acknowledgedBy, `arn:aws:iam::${s.accountId}:root`);
    const missing = await runCli(['alerts', 'ack', '00000000-0000-0000-0000-000000000000'], cliEnv(s));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NotFoundException/);
    const table = await runCli(['alerts', '--all'], cliEnv(s));
    assert.match(table.stdout.split('\n')[0]!, /^ALERT ID\s+TIME\s+SEVERITY\s+RULE\s+ACK\s+SUMMARY$/);
  });
});

describe('alert delivery survives a restart', () => {
  it('an alert raised while its webhook is down is delivered after the server restarts', async () => {
    const root = tempDir();
    const dataDir = join(root, 'data');
    // A port with nothing listening yet.
    const probe = await receiver();
    const port = probe.port;
    await new Promise((r) => probe.server.close(r));
    const url = `http://127.0.0.1:${port}/hook`;
    let s = await startServer({ dataDir, args: ['--alert-webhook', url], env: { KEYHOLD_ALERT_WEBHOOK_SECRET: SECRET } });
    const creds = s.credentials;
    let hook: Awaited<ReturnType<typeof receiver>> | undefined;
    try {
      const kms = s.kms();
      const decoy = (await kms.createKey({ Tags: [{ TagKey: 'KeyholdDecoy', TagValue: 'true' }] })).KeyMetadata!;
      await kms.describeKey({ KeyId: decoy.KeyId! });
      await new Promise((r) => setTimeout(r, 700)); // at least one failed attempt
      assert.ok(/alert webhook delivery failed/.test(s.stderr), s.stderr);
      assert.equal(await s.stop(), 0);
      hook = await receiver(port);
      s = await startServer({ dataDir, credentials: creds, args: ['--alert-webhook', url], env: { KEYHOLD_ALERT_WEBHOOK_SECRET: SECRET } });
      const hit = await hook.waitFor('honey-key-touched', 10_000);
      assert.equal(hit.alert.keyArn, decoy.Arn);
      assert.equal(hit.signature, `sha256=${createHmac('sha256', SECRET).update(`${hit.timestamp}.${hit.body}`).digest('hex')}`);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(hook.got.filter((g) => g.alert.alertId === hit.alert.alertId).length, 1, 'delivered once');
    } finally {
      await s.stop();
      hook?.server.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
