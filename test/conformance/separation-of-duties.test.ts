/**
 * The incident as a black-box test, through the AWS SDK against a really started server: an
 * administrator, a backup service that assumes a role, and a developer. Duties stay apart; the
 * developer is offboarded in one step and both their access key and their role session stop at once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IAM } from '@aws-sdk/client-iam';
import { rejects } from '../helpers/assert.js';
import { cliEnv, NO_AWS_PROFILE, runCli, startServer, type Credentials, type TestServer } from '../helpers/server.js';
import { iamClient, policy, stsClient } from '../helpers/iam.js';

const ADMIN_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyAdministrator';
const USER_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyUser';

describe('separation of duties and offboarding: the incident (AWS SDK v3, HTTPS)', () => {
  let server: TestServer;
  let iam: IAM;
  const acct = '111122223333';
  let keyId: string;
  let keyArn: string;
  let admin: Credentials;
  let backupSvc: Credentials;
  let dev: Credentials;

  async function userWithKey(name: string): Promise<Credentials> {
    await iam.createUser({ UserName: name });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: name });
    return { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
  }

  async function assume(creds: Credentials, role: string, session: string): Promise<Credentials> {
    const out = await stsClient(server, creds).assumeRole({ RoleArn: `arn:aws:iam::${acct}:role/${role}`, RoleSessionName: session });
    return { accessKeyId: out.Credentials!.AccessKeyId!, secretAccessKey: out.Credentials!.SecretAccessKey!, sessionToken: out.Credentials!.SessionToken! };
  }

  before(async () => {
    server = await startServer({ accountId: acct });
    iam = iamClient(server);
    const { KeyMetadata: m } = await server.kms().createKey({ Description: 'backups' });
    keyId = m!.KeyId!;
    keyArn = m!.Arn!;
    admin = await userWithKey('ada');
    await iam.attachUserPolicy({ UserName: 'ada', PolicyArn: ADMIN_POLICY });
    backupSvc = await userWithKey('backup-svc');
    await iam.createRole({ RoleName: 'backup', AssumeRolePolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:user/backup-svc` }, Action: 'sts:AssumeRole' }) });
    await iam.attachRolePolicy({ RoleName: 'backup', PolicyArn: USER_POLICY });
    dev = await userWithKey('dev');
    await iam.createGroup({ GroupName: 'developers' });
    await iam.attachGroupPolicy({ GroupName: 'developers', PolicyArn: USER_POLICY });
    await iam.addUserToGroup({ GroupName: 'developers', UserName: 'dev' });
    await iam.createRole({ RoleName: 'dev-tools', AssumeRolePolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:user/dev` }, Action: 'sts:AssumeRole' }) });
    await iam.attachRolePolicy({ RoleName: 'dev-tools', PolicyArn: USER_POLICY });
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('the backup role decrypts but cannot ScheduleKeyDeletion or PutKeyPolicy', async () => {
    const session = await assume(backupSvc, 'backup', 'nightly');
    const kms = server.kms({ credentials: session });
    const { CiphertextBlob } = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('db dump'), EncryptionContext: { job: 'nightly' } });
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob, EncryptionContext: { job: 'nightly' } })).Plaintext!).toString(), 'db dump');
    await rejects(kms.scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 }), 'AccessDeniedException', /assumed-role\/backup\/nightly is not authorized to perform: kms:ScheduleKeyDeletion/);
    await rejects(kms.putKeyPolicy({ KeyId: keyId, PolicyName: 'default', Policy: policy({ Effect: 'Allow', Principal: { AWS: acct }, Action: 'kms:*', Resource: '*' }) }), 'AccessDeniedException');
    // The backup service itself (not the role) has no key rights.
    await rejects(server.kms({ credentials: backupSvc }).decrypt({ CiphertextBlob, EncryptionContext: { job: 'nightly' } }), 'AccessDeniedException');
  });

  it('the administrator rotates, disables and enables, but cannot Decrypt or Encrypt', async () => {
    const kms = server.kms({ credentials: admin });
    await kms.rotateKeyOnDemand({ KeyId: keyId });
    await kms.disableKey({ KeyId: keyId });
    await kms.enableKey({ KeyId: keyId });
    const { CiphertextBlob } = await server.kms().encrypt({ KeyId: keyId, Plaintext: Buffer.from('secret') });
    await rejects(kms.decrypt({ CiphertextBlob }), 'AccessDeniedException', /ada is not authorized to perform: kms:Decrypt/);
    await rejects(kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') }), 'AccessDeniedException');
  });

  it('the SoD guard rejects a policy that merges the duties, naming the principal and the actions', async () => {
    await rejects(iam.attachUserPolicy({ UserName: 'ada', PolicyArn: USER_POLICY }), 'MalformedPolicyDocumentException', /user\/ada both key administration \(.*kms:PutKeyPolicy.*\) and key use \(kms:Decrypt/);
    await rejects(iam.putUserPolicy({ UserName: 'ada', PolicyName: 'sneaky', PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn }) }), 'MalformedPolicyDocumentException', /ada/);
    await rejects(iam.addUserToGroup({ GroupName: 'developers', UserName: 'ada' }), 'MalformedPolicyDocumentException', /adding ada to group developers/);
    const merged = policy(
      { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'Ops', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:user/dev` }, Action: ['kms:Decrypt', 'kms:ScheduleKeyDeletion'], Resource: '*' },
    );
    await rejects(server.kms().putKeyPolicy({ KeyId: keyId, PolicyName: 'default', Policy: merged }), 'MalformedPolicyDocumentException', /user\/dev both key administration \(kms:ScheduleKeyDeletion\) and key use \(kms:Decrypt\)/);
    await rejects(server.kms().createKey({ Policy: merged }), 'MalformedPolicyDocumentException', /Separation of duties/);
    // Nothing was changed by the refused calls.
    assert.deepEqual((await iam.listAttachedUserPolicies({ UserName: 'ada' })).AttachedPolicies!.map((p) => p.PolicyArn), [ADMIN_POLICY]);
    assert.equal(JSON.parse((await server.kms().getKeyPolicy({ KeyId: keyId, PolicyName: 'default' })).Policy!).Statement.length, 1);
    // Split duties in one key policy are fine.
    const split = policy(
      { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'Use', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:user/dev` }, Action: ['kms:Decrypt'], Resource: '*' },
      { Sid: 'Admin', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:user/ada` }, Action: ['kms:ScheduleKeyDeletion'], Resource: '*' },
    );
    const { KeyMetadata: k2 } = await server.kms().createKey({ Policy: split });
    assert.equal(k2!.KeyState, 'Enabled');
  });

  it('offboarding the developer revokes key and session at once and reports what they could use and decrypted', async () => {
    const kms = server.kms({ credentials: dev });
    const { CiphertextBlob } = await server.kms().encrypt({ KeyId: keyId, Plaintext: Buffer.from('customer data') });
    await kms.decrypt({ CiphertextBlob });
    await kms.decrypt({ CiphertextBlob });
    const session = await assume(dev, 'dev-tools', 'laptop');
    const viaRole = server.kms({ credentials: session });
    await viaRole.decrypt({ CiphertextBlob });
    const versionsBefore = (await server.kms().listKeyRotations({ KeyId: keyId })).Rotations!.length;

    const env = cliEnv(server, undefined, NO_AWS_PROFILE);
    const r = await runCli(['access', 'offboard', 'dev', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      userArn: string; deactivatedAccessKeys: string[]; endedSessions: { accessKeyId: string; roleArn: string }[]; removedFromGroups: string[];
      keysUsable: { keyArn: string; actions: string[]; via: string[] }[]; keysDecrypted: { keyArn: string; count: number; firstTime: string; lastTime: string }[];
      rotatedKeys: string[];
    };
    assert.equal(report.userArn, `arn:aws:iam::${acct}:user/dev`);
    assert.deepEqual(report.deactivatedAccessKeys, [dev.accessKeyId]);
    assert.deepEqual(report.endedSessions.map((s) => s.accessKeyId), [session.accessKeyId]);
    assert.equal(report.endedSessions[0]!.roleArn, `arn:aws:iam::${acct}:role/dev-tools`);
    assert.deepEqual(report.removedFromGroups, ['developers']);
    const usable = report.keysUsable.find((k) => k.keyArn === keyArn);
    assert.ok(usable, 'the key the developer could use is named');
    assert.ok(usable.actions.includes('Decrypt'));
    assert.ok(usable.via.some((v) => v.includes('group developers')) && usable.via.some((v) => v.includes('session laptop of role dev-tools')));
    const used = report.keysDecrypted.find((k) => k.keyArn === keyArn);
    assert.ok(used, 'the key the developer decrypted with is named');
    assert.equal(used.count, 3, 'two decrypts with the access key and one through the role session');
    assert.ok(Date.parse(used.firstTime) <= Date.parse(used.lastTime));
    assert.ok(report.rotatedKeys.includes(keyArn));
    assert.equal((await server.kms().listKeyRotations({ KeyId: keyId })).Rotations!.length, versionsBefore + 1, 'the key was rotated on demand');

    // Both credentials stop at once.
    await rejects(kms.decrypt({ CiphertextBlob }), 'UnrecognizedClientException');
    await rejects(viaRole.decrypt({ CiphertextBlob }), 'UnrecognizedClientException');
    await rejects(stsClient(server, dev).getCallerIdentity({}), 'InvalidClientTokenId');
    // The key cannot be brought back by the user's own old keys, and the record stays for the audit trail.
    assert.equal((await iam.getUser({ UserName: 'dev' })).User!.UserName, 'dev');
    assert.deepEqual((await iam.listGroupsForUser({ UserName: 'dev' })).Groups, []);
    assert.ok((await iam.listAccessKeys({ UserName: 'dev' })).AccessKeyMetadata!.every((k) => k.Status === 'Inactive'));
    // Data encrypted before the rotation still decrypts for those who may.
    const backup = await assume(backupSvc, 'backup', 'after');
    assert.equal(Buffer.from((await server.kms({ credentials: backup }).decrypt({ CiphertextBlob })).Plaintext!).toString(), 'customer data');

    const text = await runCli(['access', 'offboard', 'nobody'], env);
    assert.equal(text.code, 1);
    assert.match(text.stderr, /NotFoundException: The user with name nobody cannot be found/);
  });
});
