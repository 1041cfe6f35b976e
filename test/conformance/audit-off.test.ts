/**
 * `--audit-log none`: the benchmark's way to measure what the durable audit log costs. It must be a
 * deliberate act (command line only, never from --config), say loudly that nothing is audited, and
 * leave the default durable.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';

function healthz(s: TestServer): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    get(`${s.url}/healthz`, { ca: s.caFile ? readFileSync(s.caFile) : undefined }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
    }).on('error', fail);
  });
}

describe('--audit-log none (benchmark only)', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) {
      await s.stop();
      s.cleanup();
    }
  });

  it('is refused from a --config file: switching the audit log off must be given on the command line', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify({ 'audit-log': 'none' }));
    const r = await runCli(['server', '--config', cfg, '--data-dir', join(dir, 'data'), '--port', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /"audit-log" can only be given on the command line/);
    assert.equal(existsSync(join(dir, 'data')), false, 'nothing was created');
  });

  it('takes only durable or none', async () => {
    const dir = tempDir();
    const r = await runCli(['server', '--audit-log', 'off', '--data-dir', join(dir, 'data'), '--port', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--audit-log must be durable or none/);
  });

  it('serves without writing an audit log, and warns at start and in /healthz', async () => {
    const s = await startServer({ args: ['--audit-log', 'none'] });
    servers.push(s);
    const kms = s.kms();
    const keyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
    const { CiphertextBlob } = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('hello') });
    const { Plaintext } = await kms.decrypt({ CiphertextBlob });
    assert.equal(Buffer.from(Plaintext!).toString(), 'hello');
    kms.destroy();
    assert.match(s.stderr, /the audit log is OFF \(--audit-log none\)/);
    assert.equal(existsSync(join(s.dataDir, 'audit', 'audit.db')), false, 'no audit database is opened');
    const h = await healthz(s);
    assert.equal(h.status, 200);
    const body = JSON.parse(h.body) as { status: string; warnings?: string[] };
    assert.equal(body.status, 'ok');
    assert.match(String(body.warnings), /audit log is OFF/);
  });

  it('defaults to durable: the same calls on a default server are in its audit database', async () => {
    const s = await startServer();
    servers.push(s);
    const kms = s.kms();
    await kms.createKey({});
    kms.destroy();
    assert.ok(existsSync(join(s.dataDir, 'audit', 'audit.db')));
    assert.doesNotMatch(s.stderr, /audit log is OFF/);
  });
});
