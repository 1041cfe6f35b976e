/**
 * Conformance: secrets stay where the API puts them. A real server is driven, through the AWS SDK,
 * into successes and errors that carry known secrets (plaintext, a data key, a KeyStorePassword, an
 * IAM secret access key, an STS session token, credentials inside an --alert-webhook URL); then the
 * server log (at --log-level info), the audit log, every error the client saw and every byte under
 * the data dir are searched for them, raw and base64.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { startServer, tempDir } from '../helpers/server.js';
import { iamClient, policy, stsClient } from '../helpers/iam.js';
import { readAuditText } from '../helpers/audit.js';

/** A port that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** The forms a secret may take on its way out: as given, and base64 (JSON blobs) when it is bytes. */
function forms(secret: string | Buffer): Buffer[] {
  const b = Buffer.isBuffer(secret) ? secret : Buffer.from(secret);
  return [b, Buffer.from(b.toString('base64'))];
}

function assertAbsent(where: string, haystack: Buffer | string, secrets: Record<string, string | Buffer>): void {
  const h = Buffer.isBuffer(haystack) ? haystack : Buffer.from(haystack);
  for (const [name, secret] of Object.entries(secrets)) {
    for (const f of forms(secret)) assert.ok(!h.includes(f), `${name} appears in ${where}`);
  }
}

describe('key-material hygiene: secrets never reach logs, audit events, errors or files', () => {
  it('plaintext, data keys, passwords, access-key secrets, session tokens and webhook credentials stay out', async () => {
    const tag = randomBytes(6).toString('hex');
    const plaintext = `plaintext-${tag}-the-secret-message`;
    const keyStorePassword = `ksp-${tag}`;
    const tooLongPassword = `ksplong-${tag}${tag}${tag}`; // over the model's 32 characters
    const hookPassword = `hookpass${tag}`;
    const hookPathToken = `pathtoken${tag}`;
    const hookQueryToken = `querytoken${tag}`;
    const webhook = `http://hookuser:${hookPassword}@127.0.0.1:${await closedPort()}/services/T0/B0/${hookPathToken}?token=${hookQueryToken}`;
    const base = tempDir();
    const dataDir = join(base, 'data');
    const s = await startServer({ dataDir, args: ['--log-level', 'info', '--alert-webhook', webhook], env: { KEYHOLD_ALERT_WEBHOOK_SECRET: `whsecret-${tag}` } });
    const seen: string[] = []; // every error the client was given
    const expectError = async (p: Promise<unknown>, type: string) => {
      const e = await p.then(() => assert.fail(`expected ${type}`), (err: unknown) => err as { name: string; message: string; $metadata?: unknown });
      assert.equal(e.name, type, e.message);
      seen.push(`${e.name}: ${e.message}`);
    };
    try {
      const kms = s.kms();
      const key = (await kms.createKey({ Description: 'hygiene' })).KeyMetadata!;
      const ct = await kms.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from(plaintext), EncryptionContext: { purpose: 'hygiene' } });
      const dec = await kms.decrypt({ CiphertextBlob: ct.CiphertextBlob, EncryptionContext: { purpose: 'hygiene' } });
      assert.equal(Buffer.from(dec.Plaintext!).toString(), plaintext);
      const dataKey = Buffer.from((await kms.generateDataKey({ KeyId: key.KeyId!, KeySpec: 'AES_256' })).Plaintext!);

      // Errors on requests that carry the secrets.
      await expectError(kms.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from(plaintext.repeat(200)) }), 'ValidationException');
      await expectError(kms.encrypt({ KeyId: 'alias/does-not-exist', Plaintext: Buffer.from(plaintext) }), 'NotFoundException');
      await expectError(kms.decrypt({ CiphertextBlob: ct.CiphertextBlob, EncryptionContext: { purpose: 'other' } }), 'InvalidCiphertextException');
      const tampered = Buffer.from(ct.CiphertextBlob!);
      tampered[tampered.length - 1]! ^= 1;
      await expectError(kms.decrypt({ CiphertextBlob: tampered, EncryptionContext: { purpose: 'hygiene' } }), 'InvalidCiphertextException');
      await kms.disableKey({ KeyId: key.KeyId! });
      await expectError(kms.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from(plaintext) }), 'DisabledException');
      await expectError(kms.decrypt({ CiphertextBlob: ct.CiphertextBlob, EncryptionContext: { purpose: 'hygiene' } }), 'DisabledException');
      await kms.enableKey({ KeyId: key.KeyId! });
      await expectError(
        kms.createCustomKeyStore({ CustomKeyStoreName: 'hygiene', CloudHsmClusterId: 'cluster-notdeclaredhere', TrustAnchorCertificate: 'x', KeyStorePassword: keyStorePassword }),
        'CloudHsmClusterNotFoundException',
      );
      await expectError(kms.createCustomKeyStore({ CustomKeyStoreName: 'hygiene2', KeyStorePassword: tooLongPassword }), 'ValidationException');

      // An IAM user's secret, and a session token: used right, then wrongly.
      const iam = iamClient(s);
      await iam.createUser({ UserName: 'hygiene-user' });
      const ak = (await iam.createAccessKey({ UserName: 'hygiene-user' })).AccessKey!;
      const userCreds = { accessKeyId: ak.AccessKeyId!, secretAccessKey: ak.SecretAccessKey! };
      await expectError(s.kms({ credentials: userCreds }).describeKey({ KeyId: key.KeyId! }), 'AccessDeniedException');
      await expectError(s.kms({ credentials: { ...userCreds, secretAccessKey: userCreds.secretAccessKey + 'x' } }).listKeys({}), 'InvalidSignatureException');
      const trust = policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${s.accountId}:user/hygiene-user` }, Action: 'sts:AssumeRole' });
      const role = (await iam.createRole({ RoleName: 'hygiene-role', AssumeRolePolicyDocument: trust })).Role!;
      await iam.putRolePolicy({ RoleName: 'hygiene-role', PolicyName: 'list', PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:ListKeys', Resource: '*' }) });
      const session = (await stsClient(s, userCreds).assumeRole({ RoleArn: role.Arn!, RoleSessionName: 'hygiene', DurationSeconds: 900 })).Credentials!;
      const sessionCreds = { accessKeyId: session.AccessKeyId!, secretAccessKey: session.SecretAccessKey!, sessionToken: session.SessionToken! };
      await s.kms({ credentials: sessionCreds }).listKeys({});
      const wrongToken = `${sessionCreds.sessionToken.slice(0, -8)}AAAAAAAA`;
      await expectError(s.kms({ credentials: { ...sessionCreds, sessionToken: wrongToken } }).listKeys({}), 'UnrecognizedClientException');

      // An alert whose delivery to the (unreachable) webhook fails and is logged.
      const decoy = (await kms.createKey({ Tags: [{ TagKey: 'KeyholdDecoy', TagValue: 'true' }] })).KeyMetadata!;
      await kms.describeKey({ KeyId: decoy.KeyId! });
      for (let i = 0; i < 50 && !/alert webhook delivery failed/.test(s.stderr); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(s.stderr, /alert webhook delivery failed/, 'the failed delivery is logged (so the log line is checked)');
      assert.match(s.stderr, /"target":"http:\/\/127\.0\.0\.1:\d+"/, 'the log names the webhook by scheme, host and port');
      assert.equal(await s.stop(), 0);

      const keyMaterialSecrets = {
        plaintext,
        dataKey,
        keyStorePassword,
        tooLongPassword,
        webhookSecret: `whsecret-${tag}`,
        iamSecretAccessKey: userCreds.secretAccessKey,
        sessionSecretAccessKey: sessionCreds.secretAccessKey,
        sessionToken: sessionCreds.sessionToken,
        wrongSessionToken: wrongToken,
        rootSecretAccessKey: s.credentials.secretAccessKey,
      };
      const webhookSecrets = { hookPassword, hookPathToken, hookQueryToken };
      assertAbsent('the server log', s.stdout + s.stderr, { ...keyMaterialSecrets, ...webhookSecrets });
      assertAbsent('the errors the client got', seen.join('\n'), { ...keyMaterialSecrets, ...webhookSecrets });
      const audit = readAuditText(dataDir);
      assert.match(audit, /"eventName":"CreateCustomKeyStore"/, 'the audit log was read');
      assertAbsent('the audit log', audit, { ...keyMaterialSecrets, ...webhookSecrets });
      // At rest, secrets are sealed (barrier) or hashed (session tokens) or not kept at all. The
      // --alert-webhook URL is the operator's configuration and the delivery outbox keeps it as given,
      // so only the key-material secrets are looked for in the files.
      for (const f of filesUnder(dataDir)) assertAbsent(f, readFileSync(f), keyMaterialSecrets);
    } finally {
      await s.stop();
      rmSync(base, { recursive: true, force: true });
    }
  });
});
