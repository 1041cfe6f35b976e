/** Conformance: grants through the AWS SDK against a really started server over HTTPS. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IAM } from '@aws-sdk/client-iam';
import { rejects } from '../helpers/assert.js';
import { startServer, type Credentials, type TestServer } from '../helpers/server.js';
import { iamClient } from '../helpers/iam.js';

describe('grants (AWS SDK v3, HTTPS)', () => {
  let server: TestServer;
  let iam: IAM;
  const acct = '111122223333';
  let worker: Credentials;
  const workerArn = `arn:aws:iam::${acct}:user/worker`;

  before(async () => {
    server = await startServer({ accountId: acct });
    iam = iamClient(server);
    await iam.createUser({ UserName: 'worker' });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: 'worker' });
    worker = { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('a grant gives its grantee its operations within its constraints, until revoked or retired', async () => {
    const kms = server.kms();
    const { KeyMetadata: m } = await kms.createKey({});
    const keyId = m!.KeyId!;
    const wk = server.kms({ credentials: worker });
    const { CiphertextBlob } = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('pay'), EncryptionContext: { app: 'payroll' } });
    const { CiphertextBlob: other } = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('hr'), EncryptionContext: { app: 'hr' } });
    await rejects(wk.decrypt({ CiphertextBlob, EncryptionContext: { app: 'payroll' } }), 'AccessDeniedException');
    const g = await kms.createGrant({
      KeyId: keyId, GranteePrincipal: workerArn, RetiringPrincipal: `arn:aws:iam::${acct}:root`, Operations: ['Decrypt'],
      Constraints: { EncryptionContextSubset: { app: 'payroll' } }, Name: 'payroll-decrypt',
    });
    assert.match(g.GrantId!, /^[0-9a-f]{64}$/);
    assert.ok(g.GrantToken);
    assert.equal(Buffer.from((await wk.decrypt({ CiphertextBlob, EncryptionContext: { app: 'payroll' } })).Plaintext!).toString(), 'pay');
    await rejects(wk.decrypt({ CiphertextBlob: other, EncryptionContext: { app: 'hr' } }), 'AccessDeniedException');
    await rejects(wk.encrypt({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionContext: { app: 'payroll' } }), 'AccessDeniedException');
    const listed = (await kms.listGrants({ KeyId: keyId })).Grants!;
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.GranteePrincipal, workerArn);
    assert.deepEqual(listed[0]!.Operations, ['Decrypt']);
    assert.deepEqual(listed[0]!.Constraints, { EncryptionContextSubset: { app: 'payroll' } });
    assert.equal(listed[0]!.Name, 'payroll-decrypt');
    const retirable = (await kms.listRetirableGrants({ RetiringPrincipal: `arn:aws:iam::${acct}:root` })).Grants!;
    assert.ok(retirable.some((x) => x.GrantId === g.GrantId));
    await kms.revokeGrant({ KeyId: keyId, GrantId: g.GrantId! });
    await rejects(wk.decrypt({ CiphertextBlob, EncryptionContext: { app: 'payroll' } }), 'AccessDeniedException');
    await rejects(kms.revokeGrant({ KeyId: keyId, GrantId: g.GrantId! }), 'InvalidGrantIdException');

    const g2 = await kms.createGrant({ KeyId: keyId, GranteePrincipal: workerArn, Operations: ['Decrypt'], Constraints: { EncryptionContextEquals: { app: 'hr' } } });
    assert.equal(Buffer.from((await wk.decrypt({ CiphertextBlob: other, EncryptionContext: { app: 'hr' } })).Plaintext!).toString(), 'hr');
    await kms.retireGrant({ GrantToken: g2.GrantToken! });
    await rejects(wk.decrypt({ CiphertextBlob: other, EncryptionContext: { app: 'hr' } }), 'AccessDeniedException');
    await rejects(kms.retireGrant({ GrantToken: g2.GrantToken! }), 'InvalidGrantTokenException');
  });

  it('a grant merging grant management with Decrypt is refused (SoD); bad operations are refused', async () => {
    const kms = server.kms();
    const { KeyMetadata: m } = await kms.createKey({});
    await rejects(kms.createGrant({ KeyId: m!.KeyId!, GranteePrincipal: workerArn, Operations: ['Decrypt', 'CreateGrant'] }), 'ValidationException', /Separation of duties: .*worker both grant management \(CreateGrant\) and key use \(Decrypt\)/);
    await rejects(kms.createGrant({ KeyId: m!.KeyId!, GranteePrincipal: workerArn, Operations: ['Fly'] as never }), 'ValidationException');
    assert.deepEqual((await kms.listGrants({ KeyId: m!.KeyId! })).Grants, []);
    await rejects(server.kms({ credentials: worker }).createGrant({ KeyId: m!.KeyId!, GranteePrincipal: workerArn, Operations: ['Decrypt'] }), 'AccessDeniedException');
  });

  it('GrantTokens: each token is checked for form (InvalidGrantTokenException); a new grant\'s token works; an unknown or retired grant\'s token gives nothing and is no error', async () => {
    const kms = server.kms();
    const wk = server.kms({ credentials: worker });
    const { KeyMetadata: m } = await kms.createKey({});
    const keyId = m!.KeyId!;
    const g = await kms.createGrant({ KeyId: keyId, GranteePrincipal: workerArn, Operations: ['Encrypt', 'Decrypt', 'GenerateDataKey'] });
    const token = g.GrantToken!;
    // The fresh grant's token, at once.
    const { CiphertextBlob } = await wk.encrypt({ KeyId: keyId, Plaintext: Buffer.from('t'), GrantTokens: [token] });
    assert.equal(Buffer.from((await wk.decrypt({ CiphertextBlob, GrantTokens: [token] })).Plaintext!).toString(), 't');
    assert.equal((await wk.generateDataKey({ KeyId: keyId, KeySpec: 'AES_256', GrantTokens: [token] })).Plaintext!.length, 32);
    // Malformed tokens, in every operation that takes them, before anything else happens.
    for (const bad of ['not-a-grant-token', token.slice(1), token + '=', 'x'.repeat(8192)]) {
      await rejects(wk.decrypt({ CiphertextBlob, GrantTokens: [token, bad] }), 'InvalidGrantTokenException', /position 2 of GrantTokens is not valid/);
    }
    await rejects(wk.encrypt({ KeyId: keyId, Plaintext: Buffer.from('x'), GrantTokens: ['bad'] }), 'InvalidGrantTokenException');
    await rejects(wk.generateDataKey({ KeyId: keyId, KeySpec: 'AES_256', GrantTokens: ['bad'] }), 'InvalidGrantTokenException');
    await rejects(kms.reEncrypt({ CiphertextBlob, DestinationKeyId: keyId, GrantTokens: ['bad'] }), 'InvalidGrantTokenException');
    await rejects(kms.createGrant({ KeyId: keyId, GranteePrincipal: workerArn, Operations: ['Encrypt'], GrantTokens: ['bad'] }), 'InvalidGrantTokenException');
    await rejects(kms.retireGrant({ GrantToken: 'bad' }), 'InvalidGrantTokenException', /not valid/);
    // Outside the model's bounds: ValidationException (an empty token, more than 10 tokens).
    await rejects(wk.decrypt({ CiphertextBlob, GrantTokens: [''] }), 'ValidationException');
    await rejects(wk.decrypt({ CiphertextBlob, GrantTokens: Array(11).fill(token) }), 'ValidationException');
    // A well-formed token of a grant that does not exist: no error, and it grants nothing.
    const unknown = Buffer.alloc(48, 7).toString('base64url');
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob, GrantTokens: [unknown] })).Plaintext!).toString(), 't');
    // A retired grant's token: no longer gives access, and is no error for a caller allowed otherwise.
    await kms.retireGrant({ GrantToken: token });
    await rejects(wk.decrypt({ CiphertextBlob, GrantTokens: [token] }), 'AccessDeniedException');
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob, GrantTokens: [token] })).Plaintext!).toString(), 't');
    // DescribeKey takes GrantTokens, but its model lists no InvalidGrantTokenException: not checked there.
    assert.equal((await kms.describeKey({ KeyId: keyId, GrantTokens: ['bad'] })).KeyMetadata!.KeyId, keyId);
  });
});
