/**
 * The README's BYOK procedure (openssl + AWS CLI), run verbatim: the shell block between the
 * byok-procedure markers in README.md is extracted and executed with bash against a real server.
 * Then the AWS SDK checks that what the CLI imported is exactly the material openssl generated: after
 * DeleteImportedKeyMaterial, re-importing PlaintextKeyMaterial.bin restores the CLI's ciphertext.
 * openssl and the aws CLI are required (scripts/test.sh installs them; under CI a missing one fails).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rejects } from '../helpers/assert.js';
import { REPO_ROOT, requireTool, startServer, tempDir } from '../helpers/server.js';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

function procedure(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const m = /<!-- byok-procedure:start -->\n```sh\n([\s\S]*?)```\n<!-- byok-procedure:end -->/.exec(readme);
  assert.ok(m, 'README.md has no byok-procedure block');
  return m[1]!;
}

describe('README BYOK procedure with openssl and the AWS CLI', () => {
  it('runs verbatim against the server and imports exactly the generated material', async (t) => {
    if (!requireTool('aws', has('aws')) || !requireTool('openssl', has('openssl'))) {
      t.skip('aws CLI or openssl not installed (required under CI=true)');
      return;
    }
    const s = await startServer();
    const work = tempDir('keyhold-byok-cli-');
    try {
      const env = {
        ...process.env,
        AWS_ENDPOINT_URL: s.url,
        AWS_CA_BUNDLE: s.caFile!,
        AWS_ACCESS_KEY_ID: s.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s.credentials.secretAccessKey,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_REGION: 'us-east-1',
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_PAGER: '',
      };
      // aws-cli v1 has no AWS_ENDPOINT_URL: wrap `aws` so it passes --endpoint-url, as the README allows.
      const script = `set -euo pipefail\naws() { command aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }\n${procedure()}\necho "KEY_ID=$KEY_ID"\n`;
      const run = spawnSync('bash', ['-c', script], { cwd: work, env, encoding: 'utf8', timeout: 120_000 });
      assert.equal(run.status, 0, `procedure failed:\n${run.stdout}\n${run.stderr}`);
      const lines = run.stdout.trim().split('\n');
      const keyId = /^KEY_ID=(.+)$/.exec(lines.at(-1)!)![1]!;
      assert.equal(lines.at(-3), 'Enabled', run.stdout);
      const cliCiphertext = Buffer.from(lines.at(-2)!, 'base64');

      const kms = s.kms();
      const meta = (await kms.describeKey({ KeyId: keyId })).KeyMetadata!;
      assert.equal(meta.Origin, 'EXTERNAL');
      assert.equal(meta.ExpirationModel, 'KEY_MATERIAL_EXPIRES');
      const days = (meta.ValidTo!.getTime() - Date.now()) / 86400_000;
      assert.ok(days > 29 && days <= 30, `ValidTo ${meta.ValidTo!.toISOString()}`);
      assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: cliCiphertext })).Plaintext!).toString(), 'hello');

      // The material openssl made is the material imported: delete it, re-import the file, decrypt again.
      const material = readFileSync(join(work, 'PlaintextKeyMaterial.bin'));
      assert.equal(material.length, 32);
      await kms.deleteImportedKeyMaterial({ KeyId: keyId });
      await rejects(kms.decrypt({ CiphertextBlob: cliCiphertext }), 'KMSInvalidStateException');
      const p = await kms.getParametersForImport({ KeyId: keyId, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1', WrappingKeySpec: 'RSA_2048' });
      const aesKey = randomBytes(32);
      const c = createCipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('a65959a6', 'hex'));
      const pub = createPublicKey({ key: Buffer.from(p.PublicKey!), format: 'der', type: 'spki' });
      const wrapped = Buffer.concat([publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, aesKey), c.update(material), c.final()]);
      await kms.importKeyMaterial({ KeyId: keyId, ImportToken: p.ImportToken!, EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
      assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: cliCiphertext })).Plaintext!).toString(), 'hello');
    } finally {
      await s.stop();
      s.cleanup();
      spawnSync('rm', ['-rf', work]);
    }
  });
});
