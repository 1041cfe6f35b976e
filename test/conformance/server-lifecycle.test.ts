/**
 * Conformance: the server as an operator runs it. Bootstrap, file modes, restart persistence,
 * SIGTERM, the AWS CLI and boto3 against the generated CA, plain HTTP with --no-tls.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent } from 'node:https';
import { KMS } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { cliEnv, requireTool, runCli, startServer, tempDir } from '../helpers/server.js';

const run = promisify(execFile);

function hasCommand(cmd: string, args: string[]): Promise<boolean> {
  return run(cmd, args).then(() => true, () => false);
}

describe('server lifecycle', () => {
  it('first start generates root credentials (0600), a 0700 data dir and a local CA; a restart keeps keys, aliases and old ciphertexts', async () => {
    const base = tempDir();
    const dataDir = join(base, 'data');
    try {
      // Empty values count as unset, so this start generates the root credentials.
      const s1 = await startServer({ dataDir, env: { KEYHOLD_ROOT_ACCESS_KEY_ID: '', KEYHOLD_ROOT_SECRET_ACCESS_KEY: '' } });
      const credFile = join(dataDir, 'root-credentials.json');
      assert.ok(existsSync(credFile), s1.stdout);
      assert.match(s1.stdout, /root credentials for account 111122223333 written to .*root-credentials\.json/);
      assert.equal(statSync(credFile).mode & 0o777, 0o600);
      assert.equal(statSync(dataDir).mode & 0o777, 0o700);
      assert.ok(existsSync(join(dataDir, 'tls', 'ca.pem')));
      const creds = JSON.parse(readFileSync(credFile, 'utf8')) as { accessKeyId: string; secretAccessKey: string; accountId: string };
      assert.match(creds.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
      const kms = s1.kms({ credentials: creds });
      const key = (await kms.createKey({ Description: 'persist' })).KeyMetadata!;
      await kms.createAlias({ AliasName: 'alias/persist', TargetKeyId: key.KeyId! });
      const ct = await kms.encrypt({ KeyId: 'alias/persist', Plaintext: Buffer.from('survives'), EncryptionContext: { r: '1' } });
      const caBefore = readFileSync(join(dataDir, 'tls', 'ca.pem'), 'utf8');
      // The secret is not stored in the clear anywhere but the credentials file handed to the operator.
      const db = readFileSync(join(dataDir, 'keyhold.db'));
      assert.ok(!db.includes(Buffer.from(creds.secretAccessKey)), 'secret access key stored in the clear');
      assert.equal(await s1.stop('SIGTERM'), 0, s1.stderr);

      const s2 = await startServer({ dataDir, env: { KEYHOLD_ROOT_ACCESS_KEY_ID: '', KEYHOLD_ROOT_SECRET_ACCESS_KEY: '' } });
      try {
        assert.doesNotMatch(s2.stdout, /root credentials .* written/);
        assert.equal(readFileSync(join(dataDir, 'tls', 'ca.pem'), 'utf8'), caBefore, 'the CA is reused on restart');
        const k2 = s2.kms({ credentials: creds });
        const d = await k2.decrypt({ CiphertextBlob: ct.CiphertextBlob!, EncryptionContext: { r: '1' } });
        assert.equal(Buffer.from(d.Plaintext!).toString(), 'survives');
        assert.equal((await k2.describeKey({ KeyId: 'alias/persist' })).KeyMetadata!.Description, 'persist');
      } finally {
        await s2.stop();
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('the passphrase seal: a restart with the wrong passphrase refuses to start, the right one opens everything', async () => {
    const base = tempDir();
    const dataDir = join(base, 'data');
    try {
      const env = { KEYHOLD_SEAL: 'passphrase', KEYHOLD_SEAL_PASSPHRASE: 'correct horse battery staple' };
      const s1 = await startServer({ dataDir, env });
      const kms = s1.kms();
      const key = (await kms.createKey({})).KeyMetadata!;
      const ct = await kms.encrypt({ KeyId: key.KeyId!, Plaintext: Buffer.from('sealed') });
      await s1.stop();
      assert.ok(!existsSync(join(dataDir, 'seal.key')), 'no key file with a passphrase seal');
      await assert.rejects(startServer({ dataDir, credentials: s1.credentials, env: { ...env, KEYHOLD_SEAL_PASSPHRASE: 'wrong passphrase here' } }), /exited/);
      await assert.rejects(startServer({ dataDir, credentials: s1.credentials }), /exited/); // file seal configured: refused
      const s2 = await startServer({ dataDir, credentials: s1.credentials, env });
      try {
        assert.equal(Buffer.from((await s2.kms().decrypt({ CiphertextBlob: ct.CiphertextBlob! })).Plaintext!).toString(), 'sealed');
      } finally {
        await s2.stop();
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('aws kms encrypt/decrypt work with AWS_CA_BUNDLE set to the generated CA', async (t) => {
    if (!requireTool('aws (AWS CLI)', await hasCommand('aws', ['--version']))) return t.skip('aws CLI not installed');
    const s = await startServer();
    try {
      const env = {
        ...process.env,
        AWS_ACCESS_KEY_ID: s.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s.credentials.secretAccessKey,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CA_BUNDLE: s.caFile!,
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      };
      const aws = (args: string[]) => run('aws', ['--endpoint-url', s.url, '--output', 'json', ...args], { env });
      const created = JSON.parse((await aws(['kms', 'create-key', '--description', 'from-cli'])).stdout);
      const keyId = created.KeyMetadata.KeyId as string;
      await aws(['kms', 'create-alias', '--alias-name', 'alias/cli', '--target-key-id', keyId]);
      // fileb:// passes raw bytes the same way in AWS CLI v1 and v2.
      const dir = tempDir('keyhold-cli-');
      writeFileSync(join(dir, 'plain'), 'hello cli');
      const enc = JSON.parse((await aws(['kms', 'encrypt', '--key-id', 'alias/cli', '--plaintext', `fileb://${join(dir, 'plain')}`, '--encryption-context', 'app=cli'])).stdout);
      assert.equal(enc.KeyId, created.KeyMetadata.Arn);
      writeFileSync(join(dir, 'blob'), Buffer.from(enc.CiphertextBlob, 'base64'));
      const dec = JSON.parse((await aws(['kms', 'decrypt', '--ciphertext-blob', `fileb://${join(dir, 'blob')}`, '--encryption-context', 'app=cli'])).stdout);
      assert.equal(Buffer.from(dec.Plaintext, 'base64').toString(), 'hello cli');
      const err = await aws(['kms', 'decrypt', '--ciphertext-blob', `fileb://${join(dir, 'blob')}`]).catch((e: { stderr: string }) => e);
      assert.match((err as { stderr: string }).stderr, /InvalidCiphertextException/);
      rmSync(dir, { recursive: true, force: true });
      const listed = JSON.parse((await aws(['kms', 'list-keys'])).stdout);
      assert.ok(listed.Keys.some((k: { KeyId: string }) => k.KeyId === keyId));
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('boto3 works unchanged with endpoint_url and verify=<CA>', async (t) => {
    if (!requireTool('python3 with boto3', await hasCommand('python3', ['-c', 'import boto3']))) return t.skip('boto3 not installed');
    const s = await startServer();
    try {
      const script = `
import base64, boto3, json, sys
kms = boto3.client('kms', endpoint_url=sys.argv[1], region_name='eu-central-1', verify=sys.argv[2],
                   aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])
key = kms.create_key(Description='boto3')['KeyMetadata']
ct = kms.encrypt(KeyId=key['KeyId'], Plaintext=b'from boto3', EncryptionContext={'lang': 'python'})
pt = kms.decrypt(CiphertextBlob=ct['CiphertextBlob'], EncryptionContext={'lang': 'python'})
dk = kms.generate_data_key(KeyId=key['Arn'], KeySpec='AES_256')
try:
    kms.decrypt(CiphertextBlob=ct['CiphertextBlob'])
    err = None
except kms.exceptions.InvalidCiphertextException as e:
    err = e.response['Error']['Code']
print(json.dumps({'arn': key['Arn'], 'pt': pt['Plaintext'].decode(), 'keyId': pt['KeyId'], 'dk': len(dk['Plaintext']), 'err': err}))
`;
      const { stdout } = await run('python3', ['-c', script, s.url, s.caFile!, s.credentials.accessKeyId, s.credentials.secretAccessKey]);
      const out = JSON.parse(stdout);
      assert.match(out.arn, /^arn:aws:kms:eu-central-1:111122223333:key\//);
      assert.equal(out.pt, 'from boto3');
      assert.equal(out.keyId, out.arn);
      assert.equal(out.dk, 32);
      assert.equal(out.err, 'InvalidCiphertextException');
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('--no-tls serves plain HTTP and warns', async () => {
    const s = await startServer({ args: ['--no-tls'] });
    try {
      assert.match(s.url, /^http:\/\//);
      assert.match(s.stderr, /TLS is off/);
      const kms = new KMS({ endpoint: s.url, region: 'us-east-1', credentials: s.credentials, maxAttempts: 1 });
      const key = (await kms.createKey({})).KeyMetadata!;
      assert.ok(key.Arn);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('an operator-supplied certificate is served with --tls-cert/--tls-key', async () => {
    const first = await startServer();
    await first.stop();
    try {
      const cert = join(first.dataDir, 'tls', 'server.pem');
      const key = join(first.dataDir, 'tls', 'server-key.pem');
      const s = await startServer({ args: ['--tls-cert', cert, '--tls-key', key] });
      try {
        assert.equal(s.caFile, undefined, 'no local CA is made when a certificate is supplied');
        const ca = readFileSync(join(first.dataDir, 'tls', 'ca.pem'));
        const kms = new KMS({
          endpoint: s.url, region: 'us-east-1', credentials: s.credentials, maxAttempts: 1,
          requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca }) }),
        });
        assert.ok((await kms.createKey({})).KeyMetadata!.Arn);
        const untrusting = new KMS({ endpoint: s.url, region: 'us-east-1', credentials: s.credentials, maxAttempts: 1 });
        await assert.rejects(untrusting.listKeys({}), /certificate/);
      } finally {
        await s.stop();
        s.cleanup();
      }
    } finally {
      first.cleanup();
    }
  });

  it('the keyhold CLI finds the server and credentials from the AWS environment variables', async () => {
    const s = await startServer();
    try {
      const env = cliEnv(s, undefined, { AWS_REGION: 'us-west-2' });
      const created = await runCli(['keys', 'create', '--description', 'cli', '--alias', 'alias/from-cli', '--json'], env);
      assert.equal(created.code, 0, created.stderr);
      const key = JSON.parse(created.stdout) as { keyId: string; arn: string };
      assert.match(key.arn, /^arn:aws:kms:us-west-2:/);
      const listed = await runCli(['keys', 'list', '--json'], env);
      assert.equal(listed.code, 0, listed.stderr);
      const rows = JSON.parse(listed.stdout) as { keyId: string; aliases: string[]; state: string }[];
      assert.deepEqual(rows.find((r) => r.keyId === key.keyId)?.aliases, ['alias/from-cli']);
      const table = await runCli(['keys', 'list'], env);
      assert.match(table.stdout, new RegExp(`${key.keyId}\\s+Enabled\\s+alias/from-cli`));
      const noServer = await runCli(['keys', 'list'], { ...env, AWS_ENDPOINT_URL: '' , AWS_ENDPOINT_URL_KMS: '' });
      assert.equal(noServer.code, 2);
      assert.match(noServer.stderr, /AWS_ENDPOINT_URL/);
      const badCreds = await runCli(['keys', 'list'], { ...env, AWS_SECRET_ACCESS_KEY: 'wrong-secret-wrong-secret' });
      assert.equal(badCreds.code, 1);
      assert.match(badCreds.stderr, /InvalidSignatureException/);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('SIGTERM as soon as `keyhold listening on` is printed shuts down cleanly (exit 0), every time', async () => {
    // The line is printed while the server is still starting; the signal handlers must already be
    // there (they were not: about half of such stops killed the process outright).
    for (let i = 0; i < 10; i++) {
      const s = await startServer();
      assert.equal(await s.stop(), 0, `stop ${i}: ${s.stderr.slice(-500)}`);
      s.cleanup();
    }
  });
});
