/**
 * Conformance: HMAC of encryption-context values in the audit log (issue 5). With the account
 * setting on (UpdateAccountSettings AuditEncryptionContextHmac, `keyhold settings
 * --audit-context-hmac on`), audit events carry `hmac-sha256:<hex>` of each value under a key the
 * keystore holds: equal values still match, and the values are in neither audit.db's bytes nor
 * LookupEvents nor an export.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { CloudTrail } from '@aws-sdk/client-cloudtrail';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { cliEnv, runCli, startServer, type TestServer } from '../helpers/server.js';

const HMAC_FORM = /^hmac-sha256:[0-9a-f]{64}$/;

describe('audit log: HMAC of encryption-context values (account setting)', () => {
  let s: TestServer;
  const tag = randomBytes(6).toString('hex');
  const before_ = `plain-before-${tag}`;
  const tenant = `tenant-secret-${tag}`;
  const purpose = `purpose-secret-${tag}`;
  const dest = `dest-secret-${tag}`;
  const wrong = `wrong-secret-${tag}`;
  const secrets = [tenant, purpose, dest, wrong];
  let records: { eventName: string; errorCode?: string; requestParameters: { encryptionContext?: Record<string, string> } | null; additionalEventData?: { details?: Record<string, unknown> } }[] = [];
  let lookupText = '';

  before(async () => {
    s = await startServer();
    const kms = s.kms();
    const keyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
    // Off by default: the value is recorded as given (and so can be found in the file's bytes).
    await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('a'), EncryptionContext: { tenant: before_ } });
    const on = await runCli(['settings', '--audit-context-hmac', 'on', '--json'], cliEnv(s));
    assert.equal(on.code, 0, on.stderr);
    assert.equal((JSON.parse(on.stdout) as { auditEncryptionContextHmac: boolean }).auditEncryptionContextHmac, true);
    const shown = await runCli(['settings'], cliEnv(s));
    assert.match(shown.stdout, /encryption-context values: HMAC-SHA256/);

    const ctx = { tenant, purpose };
    const blob = (await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('b'), EncryptionContext: ctx })).CiphertextBlob!;
    await kms.decrypt({ CiphertextBlob: blob, EncryptionContext: ctx });
    await kms.generateDataKey({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { tenant } });
    await kms.reEncrypt({ CiphertextBlob: blob, SourceEncryptionContext: ctx, DestinationKeyId: keyId, DestinationEncryptionContext: { dest } });
    await assert.rejects(kms.decrypt({ CiphertextBlob: blob, EncryptionContext: { tenant: wrong, purpose } }), { name: 'InvalidCiphertextException' });

    const ct = new CloudTrail({
      endpoint: s.url, region: 'us-east-1', credentials: s.credentials,
      requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(s.caFile!) }) }),
    });
    const page = await ct.lookupEvents({ MaxResults: 50 });
    ct.destroy();
    lookupText = JSON.stringify(page.Events);
    records = page.Events!.map((e) => JSON.parse(e.CloudTrailEvent!) as (typeof records)[number]).reverse();
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  it('LookupEvents shows hmac-sha256 forms, equal for equal values, keyed (not a bare hash)', () => {
    const ctxOf = (name: string, i = 0) => records.filter((r) => r.eventName === name && !r.errorCode)[i]!.requestParameters!.encryptionContext!;
    const enc = ctxOf('Encrypt', 1);
    assert.match(enc.tenant!, HMAC_FORM);
    assert.match(enc.purpose!, HMAC_FORM);
    assert.notEqual(enc.tenant, enc.purpose);
    assert.deepEqual(ctxOf('Decrypt'), enc, 'the same values give the same HMACs: events can be matched');
    assert.equal(ctxOf('GenerateDataKey').tenant, enc.tenant);
    assert.notEqual(enc.tenant, `hmac-sha256:${createHash('sha256').update(tenant).digest('hex')}`);
    const re = records.find((r) => r.eventName === 'ReEncrypt')!;
    assert.deepEqual(re.requestParameters!.encryptionContext, enc);
    assert.match((re.additionalEventData!.details!.destinationEncryptionContext as Record<string, string>).dest!, HMAC_FORM);
    const failed = records.find((r) => r.eventName === 'Decrypt' && r.errorCode === 'InvalidCiphertextException')!;
    assert.match(failed.requestParameters!.encryptionContext!.tenant!, HMAC_FORM);
    assert.notEqual(failed.requestParameters!.encryptionContext!.tenant, enc.tenant);
    assert.equal(failed.requestParameters!.encryptionContext!.purpose, enc.purpose);
    // Before the setting was turned on, the value was recorded as given.
    assert.equal(ctxOf('Encrypt', 0).tenant, before_);
    for (const v of secrets) assert.ok(!lookupText.includes(v), `${v} appears in LookupEvents`);
  });

  it('an export carries the HMAC forms and none of the values', async () => {
    const r = await runCli(['audit', 'export', '--to', 'stdout'], cliEnv(s));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"tenant":"hmac-sha256:[0-9a-f]{64}"/);
    for (const v of secrets) assert.ok(!r.stdout.includes(v), `${v} appears in the export`);
  });

  it('the values are absent from the audit database files, byte for byte', async () => {
    assert.equal(await s.stop(), 0);
    const dir = join(s.dataDir, 'audit');
    // Every file under audit/, the intake journals' directory included.
    const files = (readdirSync(dir, { recursive: true }) as string[]).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    assert.ok(bytes.includes(Buffer.from(before_)), 'control: a value recorded as given is found in the bytes');
    for (const v of secrets) assert.ok(!bytes.includes(Buffer.from(v)), `${v} found in ${dir}`);
    for (const v of secrets) assert.ok(!s.stderr.includes(v) && !s.stdout.includes(v), `${v} in the server's output`);
  });
});
