/**
 * Conformance: IAM and STS over the AWS query protocol, driven by @aws-sdk/client-iam and
 * client-sts (and the AWS CLI) against a really started server over HTTPS; IAM users' and role
 * sessions' credentials then used against KMS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { IAM } from '@aws-sdk/client-iam';
import { rejects } from '../helpers/assert.js';
import { requireTool, startServer, type Credentials, type TestServer } from '../helpers/server.js';
import { iamClient, policy, stsClient } from '../helpers/iam.js';

const run = promisify(execFile);

describe('IAM and STS (AWS SDK v3, query protocol, HTTPS)', () => {
  let server: TestServer;
  let iam: IAM;
  const acct = '111122223333';

  before(async () => {
    server = await startServer({ accountId: acct });
    iam = iamClient(server);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('GetCallerIdentity names the root', async () => {
    const id = await stsClient(server).getCallerIdentity({});
    assert.equal(id.Account, acct);
    assert.equal(id.Arn, `arn:aws:iam::${acct}:root`);
  });

  it('users: create, get, list, tag, duplicate and missing names, delete conflicts', async () => {
    const { User: u } = await iam.createUser({ UserName: 'carol', Tags: [{ Key: 'team', Value: 'ops' }] });
    assert.equal(u!.Arn, `arn:aws:iam::${acct}:user/carol`);
    assert.match(u!.UserId!, /^AIDA[A-Z2-7]{17}$/);
    assert.ok(u!.CreateDate instanceof Date);
    assert.equal((await iam.getUser({ UserName: 'carol' })).User!.UserId, u!.UserId);
    assert.ok((await iam.listUsers({})).Users!.some((x) => x.UserName === 'carol'));
    await iam.tagUser({ UserName: 'carol', Tags: [{ Key: 'cost', Value: '42' }] });
    const tags = (await iam.listUserTags({ UserName: 'carol' })).Tags!;
    assert.deepEqual(tags.map((t) => `${t.Key}=${t.Value}`).sort(), ['cost=42', 'team=ops']);
    await rejects(iam.createUser({ UserName: 'CAROL' }), 'EntityAlreadyExistsException', /already exists/);
    await rejects(iam.getUser({ UserName: 'nobody' }), 'NoSuchEntityException', 'The user with name nobody cannot be found.');
    await rejects(iam.createUser({ UserName: 'bad name!' }), 'ValidationError');
    const { AccessKey } = await iam.createAccessKey({ UserName: 'carol' });
    await rejects(iam.deleteUser({ UserName: 'carol' }), 'DeleteConflictException', /access keys/);
    await iam.deleteAccessKey({ UserName: 'carol', AccessKeyId: AccessKey!.AccessKeyId! });
    await iam.deleteUser({ UserName: 'carol' });
    await rejects(iam.getUser({ UserName: 'carol' }), 'NoSuchEntityException');
  });

  it('access keys: shown once, at most two, Inactive keys are refused, last use is tracked', async () => {
    await iam.createUser({ UserName: 'dave' });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: 'dave' });
    assert.match(k!.AccessKeyId!, /^AKIA[A-Z2-7]{16}$/);
    assert.ok(k!.SecretAccessKey!.length >= 40);
    const listed = (await iam.listAccessKeys({ UserName: 'dave' })).AccessKeyMetadata!;
    assert.equal(listed.length, 1);
    assert.equal((listed[0] as Record<string, unknown>).SecretAccessKey, undefined, 'the secret is shown only once');
    await iam.createAccessKey({ UserName: 'dave' });
    await rejects(iam.createAccessKey({ UserName: 'dave' }), 'LimitExceededException', /AccessKeysPerUser: 2/);
    const creds: Credentials = { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
    const never = await iam.getAccessKeyLastUsed({ AccessKeyId: k!.AccessKeyId! });
    assert.equal(never.AccessKeyLastUsed!.ServiceName, 'N/A');
    const id = await stsClient(server, creds).getCallerIdentity({});
    assert.equal(id.Arn, `arn:aws:iam::${acct}:user/dave`);
    const used = await iam.getAccessKeyLastUsed({ AccessKeyId: k!.AccessKeyId! });
    assert.equal(used.UserName, 'dave');
    assert.equal(used.AccessKeyLastUsed!.ServiceName, 'sts');
    assert.ok(used.AccessKeyLastUsed!.LastUsedDate instanceof Date);
    await iam.updateAccessKey({ UserName: 'dave', AccessKeyId: k!.AccessKeyId!, Status: 'Inactive' });
    await rejects(stsClient(server, creds).getCallerIdentity({}), 'InvalidClientTokenId');
    await rejects(server.kms({ credentials: creds }).listKeys({}), 'UnrecognizedClientException');
    await iam.updateAccessKey({ UserName: 'dave', AccessKeyId: k!.AccessKeyId!, Status: 'Active' });
    assert.equal((await stsClient(server, creds).getCallerIdentity({})).Arn, `arn:aws:iam::${acct}:user/dave`);
    await rejects(stsClient(server, { ...creds, secretAccessKey: 'wrong' + creds.secretAccessKey }).getCallerIdentity({}), 'SignatureDoesNotMatch');
  });

  it('a user with no policy is denied; an identity policy lets it use keys the default key policy delegates to IAM', async () => {
    await iam.createUser({ UserName: 'erin' });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: 'erin' });
    const creds = { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
    const kms = server.kms({ credentials: creds });
    const { KeyMetadata: key } = await server.kms().createKey({ Description: 'shared' });
    await rejects(kms.encrypt({ KeyId: key!.KeyId!, Plaintext: Buffer.from('x') }), 'AccessDeniedException', /erin is not authorized to perform: kms:Encrypt/);
    await rejects(kms.createKey({}), 'AccessDeniedException', /no identity-based policy allows the kms:CreateKey action/);
    await iam.putUserPolicy({ UserName: 'erin', PolicyName: 'use', PolicyDocument: policy({ Effect: 'Allow', Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: key!.Arn! }) });
    const got = await iam.getUserPolicy({ UserName: 'erin', PolicyName: 'use' });
    assert.equal(JSON.parse(decodeURIComponent(got.PolicyDocument!)).Statement[0].Resource, key!.Arn);
    assert.deepEqual((await iam.listUserPolicies({ UserName: 'erin' })).PolicyNames, ['use']);
    const { CiphertextBlob } = await kms.encrypt({ KeyId: key!.KeyId!, Plaintext: Buffer.from('hello') });
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob })).Plaintext!).toString(), 'hello');
    await rejects(kms.disableKey({ KeyId: key!.KeyId! }), 'AccessDeniedException');
    await rejects(iam.putUserPolicy({ UserName: 'erin', PolicyName: 'bad', PolicyDocument: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}' }), 'MalformedPolicyDocumentException', /must not name a Principal/);
    await iam.deleteUserPolicy({ UserName: 'erin', PolicyName: 'use' });
    await rejects(kms.encrypt({ KeyId: key!.KeyId!, Plaintext: Buffer.from('x') }), 'AccessDeniedException');
  });

  it('groups: a group policy reaches its members, and stops when they leave', async () => {
    await iam.createUser({ UserName: 'frank' });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: 'frank' });
    const kms = server.kms({ credentials: { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! } });
    await iam.createGroup({ GroupName: 'listers' });
    await iam.putGroupPolicy({ GroupName: 'listers', PolicyName: 'list', PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:ListKeys', Resource: '*' }) });
    await rejects(kms.listKeys({}), 'AccessDeniedException');
    await iam.addUserToGroup({ GroupName: 'listers', UserName: 'frank' });
    assert.deepEqual((await iam.listGroupsForUser({ UserName: 'frank' })).Groups!.map((g) => g.GroupName), ['listers']);
    await kms.listKeys({});
    await iam.removeUserFromGroup({ GroupName: 'listers', UserName: 'frank' });
    await rejects(kms.listKeys({}), 'AccessDeniedException');
  });

  it('managed policies attach, list and detach; unknown ones are refused', async () => {
    await iam.createUser({ UserName: 'gina' });
    await iam.attachUserPolicy({ UserName: 'gina', PolicyArn: 'arn:aws:iam::aws:policy/KeyholdKeyUser' });
    const att = await iam.listAttachedUserPolicies({ UserName: 'gina' });
    assert.deepEqual(att.AttachedPolicies, [{ PolicyName: 'KeyholdKeyUser', PolicyArn: 'arn:aws:iam::aws:policy/KeyholdKeyUser' }]);
    await rejects(iam.attachUserPolicy({ UserName: 'gina', PolicyArn: 'arn:aws:iam::aws:policy/NoSuchThing' }), 'NoSuchEntityException');
    await iam.detachUserPolicy({ UserName: 'gina', PolicyArn: 'arn:aws:iam::aws:policy/KeyholdKeyUser' });
    assert.deepEqual((await iam.listAttachedUserPolicies({ UserName: 'gina' })).AttachedPolicies, []);
  });

  it('roles: AssumeRole evaluates the trust policy and hands out expiring session credentials', async () => {
    await iam.createUser({ UserName: 'hank' });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: 'hank' });
    const hank = { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
    const trust = policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:user/hank` }, Action: 'sts:AssumeRole' });
    const { Role: role } = await iam.createRole({ RoleName: 'backup', AssumeRolePolicyDocument: trust, Description: 'nightly backups' });
    assert.match(role!.RoleId!, /^AROA/);
    assert.equal(JSON.parse(decodeURIComponent(role!.AssumeRolePolicyDocument!)).Statement[0].Action, 'sts:AssumeRole');
    assert.ok((await iam.listRoles({})).Roles!.some((r) => r.RoleName === 'backup'));
    await iam.putRolePolicy({ RoleName: 'backup', PolicyName: 'list', PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:ListKeys', Resource: '*' }) });
    assert.deepEqual((await iam.listRolePolicies({ RoleName: 'backup' })).PolicyNames, ['list']);
    const sts = stsClient(server, hank);
    const before = Date.now();
    const out = await sts.assumeRole({ RoleArn: role!.Arn!, RoleSessionName: 'night', DurationSeconds: 900 });
    assert.match(out.Credentials!.AccessKeyId!, /^ASIA/);
    assert.ok(out.Credentials!.SessionToken!.length > 100);
    const exp = out.Credentials!.Expiration!.getTime();
    assert.ok(exp >= before + 899_000 && exp <= Date.now() + 901_000, 'expires after DurationSeconds');
    assert.equal(out.AssumedRoleUser!.Arn, `arn:aws:sts::${acct}:assumed-role/backup/night`);
    const session = { accessKeyId: out.Credentials!.AccessKeyId!, secretAccessKey: out.Credentials!.SecretAccessKey!, sessionToken: out.Credentials!.SessionToken! };
    const who = await stsClient(server, session).getCallerIdentity({});
    assert.equal(who.Arn, `arn:aws:sts::${acct}:assumed-role/backup/night`);
    assert.equal(who.UserId, `${role!.RoleId}:night`);
    await server.kms({ credentials: session }).listKeys({});
    await rejects(server.kms({ credentials: { ...session, sessionToken: session.sessionToken.slice(0, -4) + 'AAAA' } }).listKeys({}), 'UnrecognizedClientException');
    await rejects(server.kms({ credentials: { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey } }).listKeys({}), 'UnrecognizedClientException');
    await rejects(sts.assumeRole({ RoleArn: role!.Arn!, RoleSessionName: 'x1', DurationSeconds: 899 }), 'ValidationError');
    await rejects(sts.assumeRole({ RoleArn: role!.Arn!, RoleSessionName: 'x1', DurationSeconds: 3601 }), 'ValidationError', /MaxSessionDuration/);
    // Someone the trust policy does not name is refused.
    await iam.createUser({ UserName: 'ivan' });
    const { AccessKey: k2 } = await iam.createAccessKey({ UserName: 'ivan' });
    await rejects(stsClient(server, { accessKeyId: k2!.AccessKeyId!, secretAccessKey: k2!.SecretAccessKey! }).assumeRole({ RoleArn: role!.Arn!, RoleSessionName: 'ss' }), 'AccessDenied', /not authorized to perform: sts:AssumeRole/);
    await iam.updateAssumeRolePolicy({ RoleName: 'backup', PolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:user/ivan` }, Action: 'sts:AssumeRole' }) });
    await stsClient(server, { accessKeyId: k2!.AccessKeyId!, secretAccessKey: k2!.SecretAccessKey! }).assumeRole({ RoleArn: role!.Arn!, RoleSessionName: 'ss' });
    await rejects(iam.deleteRole({ RoleName: 'backup' }), 'DeleteConflictException');
    await iam.deleteRolePolicy({ RoleName: 'backup', PolicyName: 'list' });
    await iam.deleteRole({ RoleName: 'backup' });
    await rejects(iam.getRole({ RoleName: 'backup' }), 'NoSuchEntityException');
  });

  it('an IAM user without IAM permissions cannot manage identities', async () => {
    await iam.createUser({ UserName: 'judy' });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: 'judy' });
    const judy = iamClient(server, { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! });
    await rejects(judy.createUser({ UserName: 'mallory' }), 'AccessDenied', /iam:CreateUser/);
    await rejects(judy.createAccessKey({}), 'AccessDenied', /iam:CreateAccessKey/);
  });

  it('the AWS CLI works with --endpoint-url (aws iam, aws sts)', async () => {
    let found = true;
    try {
      await run('aws', ['--version']);
    } catch {
      found = false;
    }
    if (!requireTool('aws', found)) return;
    const env = {
      ...process.env, AWS_ACCESS_KEY_ID: server.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1', AWS_CA_BUNDLE: server.caFile ?? '', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    };
    const aws = async (...args: string[]) => JSON.parse((await run('aws', ['--endpoint-url', server.url, '--output', 'json', ...args], { env })).stdout || '{}');
    assert.equal((await aws('sts', 'get-caller-identity')).Arn, `arn:aws:iam::${acct}:root`);
    assert.equal((await aws('iam', 'create-user', '--user-name', 'cli-user')).User.UserName, 'cli-user');
    const key = (await aws('iam', 'create-access-key', '--user-name', 'cli-user')).AccessKey;
    assert.match(key.AccessKeyId, /^AKIA/);
    await aws('iam', 'put-user-policy', '--user-name', 'cli-user', '--policy-name', 'p', '--policy-document', policy({ Effect: 'Allow', Action: 'kms:ListKeys', Resource: '*' }));
    const doc = (await aws('iam', 'get-user-policy', '--user-name', 'cli-user', '--policy-name', 'p')).PolicyDocument;
    assert.equal(doc.Statement[0].Action, 'kms:ListKeys', 'the CLI decodes the URL-encoded document as it does for AWS');
    await assert.rejects(aws('iam', 'get-user', '--user-name', 'nobody'), /NoSuchEntity/);
  });
});
