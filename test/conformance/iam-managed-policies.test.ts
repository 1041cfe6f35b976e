/**
 * Customer-managed IAM policies (CreatePolicy, GetPolicy, GetPolicyVersion, ListPolicies,
 * ListPolicyVersions, CreatePolicyVersion, DeletePolicyVersion, DeletePolicy), black box: a real
 * server over HTTPS driven by @aws-sdk/client-iam and the AWS CLI. A policy is attached with
 * Attach*Policy, evaluated in its default version on KMS calls, and checked by the SoD guard.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { IAM } from '@aws-sdk/client-iam';
import { rejects } from '../helpers/assert.js';
import { iamClient, policy } from '../helpers/iam.js';
import { requireTool, startServer, type Credentials, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const ADMIN_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyAdministrator';
const USER_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyUser';

describe('customer-managed IAM policies (AWS SDK v3 and AWS CLI, HTTPS)', () => {
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

  it('create, get, list, version, attach: the default version decides KMS calls; delete needs detaching first', async () => {
    const kms = server.kms();
    const { KeyMetadata: k } = await kms.createKey({ Description: 'app' });
    const keyArn = k!.Arn!;
    const encryptOnly = policy({ Sid: 'Enc', Effect: 'Allow', Action: ['kms:Encrypt', 'kms:DescribeKey'], Resource: keyArn });
    const { Policy: p } = await iam.createPolicy({ PolicyName: 'app-encrypt', Path: '/apps/', PolicyDocument: encryptOnly, Description: 'encrypt for the app' });
    assert.equal(p!.Arn, `arn:aws:iam::${acct}:policy/apps/app-encrypt`);
    assert.match(p!.PolicyId!, /^ANPA[A-Z2-7]{17}$/);
    assert.equal(p!.DefaultVersionId, 'v1');
    assert.equal(p!.AttachmentCount, 0);
    assert.equal(p!.IsAttachable, true);
    assert.ok(p!.CreateDate instanceof Date);
    const arn = p!.Arn!;
    await rejects(iam.createPolicy({ PolicyName: 'APP-ENCRYPT', PolicyDocument: encryptOnly }), 'EntityAlreadyExistsException', /already exists/);
    await rejects(iam.createPolicy({ PolicyName: 'bad', PolicyDocument: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Principal":"*"}]}' }), 'MalformedPolicyDocumentException', /must not name a Principal/);
    await rejects(iam.createPolicy({ PolicyName: 'bad', PolicyDocument: 'not json' }), 'MalformedPolicyDocumentException', /not valid JSON/);
    await rejects(iam.createPolicy({ PolicyName: 'bad name!', PolicyDocument: encryptOnly }), 'ValidationError');

    assert.equal((await iam.getPolicy({ PolicyArn: arn })).Policy!.Description, 'encrypt for the app');
    const v1 = (await iam.getPolicyVersion({ PolicyArn: arn, VersionId: 'v1' })).PolicyVersion!;
    assert.equal(decodeURIComponent(v1.Document!), encryptOnly, 'the document comes back URL-encoded, as AWS sends it');
    assert.equal(v1.IsDefaultVersion, true);
    await rejects(iam.getPolicyVersion({ PolicyArn: arn, VersionId: 'v9' }), 'NoSuchEntityException');
    await rejects(iam.getPolicy({ PolicyArn: `arn:aws:iam::${acct}:policy/nope` }), 'NoSuchEntityException', /does not exist/);
    await rejects(iam.getPolicy({ PolicyArn: `arn:aws:iam::${acct}:policy/app-encrypt` }), 'NoSuchEntityException'); // the path is part of the ARN
    const local = (await iam.listPolicies({ Scope: 'Local' })).Policies!.map((x) => x.Arn);
    assert.deepEqual(local, [arn]);
    const awsScope = (await iam.listPolicies({ Scope: 'AWS' })).Policies!.map((x) => x.Arn).sort();
    assert.deepEqual(awsScope, [ADMIN_POLICY, USER_POLICY, 'arn:aws:iam::aws:policy/KeyholdBackupWriter', 'arn:aws:iam::aws:policy/KeyholdBackupRestoreDrill'].sort());
    assert.equal((await iam.listPolicies({})).Policies!.length, 5);
    assert.deepEqual((await iam.listPolicies({ PathPrefix: '/apps/' })).Policies!.map((x) => x.Arn), [arn]);
    assert.equal((await iam.getPolicy({ PolicyArn: USER_POLICY })).Policy!.PolicyName, 'KeyholdKeyUser');

    // Attached, the policy decides: Encrypt yes, Decrypt no.
    await iam.createUser({ UserName: 'app' });
    const { AccessKey: ak } = await iam.createAccessKey({ UserName: 'app' });
    const app: Credentials = { accessKeyId: ak!.AccessKeyId!, secretAccessKey: ak!.SecretAccessKey! };
    const asApp = server.kms({ credentials: app });
    await rejects(asApp.encrypt({ KeyId: keyArn, Plaintext: Buffer.from('x') }), 'AccessDeniedException');
    await iam.attachUserPolicy({ UserName: 'app', PolicyArn: arn });
    assert.deepEqual((await iam.listAttachedUserPolicies({ UserName: 'app' })).AttachedPolicies, [{ PolicyName: 'app-encrypt', PolicyArn: arn }]);
    assert.equal((await iam.getPolicy({ PolicyArn: arn })).Policy!.AttachmentCount, 1);
    assert.deepEqual((await iam.listPolicies({ OnlyAttached: true, Scope: 'Local' })).Policies!.map((x) => x.Arn), [arn]);
    const { CiphertextBlob } = await asApp.encrypt({ KeyId: keyArn, Plaintext: Buffer.from('x') });
    await rejects(asApp.decrypt({ CiphertextBlob }), 'AccessDeniedException', /app is not authorized to perform: kms:Decrypt/);
    await rejects(iam.attachUserPolicy({ UserName: 'app', PolicyArn: `arn:aws:iam::${acct}:policy/nope` }), 'NoSuchEntityException', /does not exist or is not attachable/);
    await rejects(iam.attachUserPolicy({ UserName: 'app', PolicyArn: `arn:aws:iam::999988887777:policy/apps/app-encrypt` }), 'NoSuchEntityException');

    // A new version, not yet default: nothing changes. Made default: Decrypt works.
    const both = policy({ Sid: 'Use', Effect: 'Allow', Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:DescribeKey'], Resource: keyArn });
    const v2 = (await iam.createPolicyVersion({ PolicyArn: arn, PolicyDocument: both })).PolicyVersion!;
    assert.equal(v2.VersionId, 'v2');
    assert.equal(v2.IsDefaultVersion, false);
    await rejects(asApp.decrypt({ CiphertextBlob }), 'AccessDeniedException');
    const v3 = (await iam.createPolicyVersion({ PolicyArn: arn, PolicyDocument: both, SetAsDefault: true })).PolicyVersion!;
    assert.equal(v3.VersionId, 'v3');
    assert.equal(v3.IsDefaultVersion, true);
    assert.equal(Buffer.from((await asApp.decrypt({ CiphertextBlob })).Plaintext!).toString(), 'x');
    assert.deepEqual((await iam.listPolicyVersions({ PolicyArn: arn })).Versions!.map((v) => `${v.VersionId}:${v.IsDefaultVersion}`), ['v3:true', 'v2:false', 'v1:false']);
    assert.equal((await iam.getPolicy({ PolicyArn: arn })).Policy!.DefaultVersionId, 'v3');
    await rejects(iam.deletePolicyVersion({ PolicyArn: arn, VersionId: 'v3' }), 'DeleteConflictException', /default version/);
    await iam.createPolicyVersion({ PolicyArn: arn, PolicyDocument: both });
    await iam.createPolicyVersion({ PolicyArn: arn, PolicyDocument: both });
    await rejects(iam.createPolicyVersion({ PolicyArn: arn, PolicyDocument: both }), 'LimitExceededException', /up to 5 versions/);

    // Delete: refused while attached and while other versions exist.
    await rejects(iam.deletePolicy({ PolicyArn: arn }), 'DeleteConflictException', /attached to entities/);
    await iam.detachUserPolicy({ UserName: 'app', PolicyArn: arn });
    await rejects(asApp.decrypt({ CiphertextBlob }), 'AccessDeniedException');
    await rejects(iam.deletePolicy({ PolicyArn: arn }), 'DeleteConflictException', /more than one version/);
    for (const v of ['v1', 'v2', 'v4', 'v5']) await iam.deletePolicyVersion({ PolicyArn: arn, VersionId: v });
    await iam.deletePolicy({ PolicyArn: arn });
    await rejects(iam.getPolicy({ PolicyArn: arn }), 'NoSuchEntityException');
    await rejects(iam.deletePolicy({ PolicyArn: USER_POLICY }), 'InvalidInputException', /AWS managed policy/);
  });

  it('the SoD guard checks customer-managed policies: attaching to a user, group or role, and a new default version', async () => {
    await iam.createUser({ UserName: 'keyadmin' });
    await iam.attachUserPolicy({ UserName: 'keyadmin', PolicyArn: ADMIN_POLICY });
    const decryptAll = policy({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*' });
    const describeAll = policy({ Effect: 'Allow', Action: 'kms:DescribeKey', Resource: '*' });
    const { Policy: dec } = await iam.createPolicy({ PolicyName: 'decrypt-all', PolicyDocument: decryptAll });
    await rejects(iam.attachUserPolicy({ UserName: 'keyadmin', PolicyArn: dec!.Arn! }), 'MalformedPolicyDocumentException', /user\/keyadmin both key administration \(.*\) and key use \(kms:Decrypt\)/);
    await iam.createGroup({ GroupName: 'admins' });
    await iam.addUserToGroup({ GroupName: 'admins', UserName: 'keyadmin' });
    await rejects(iam.attachGroupPolicy({ GroupName: 'admins', PolicyArn: dec!.Arn! }), 'MalformedPolicyDocumentException', /keyadmin/);
    await iam.createRole({ RoleName: 'adminrole', AssumeRolePolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'sts:AssumeRole' }) });
    await iam.attachRolePolicy({ RoleName: 'adminrole', PolicyArn: ADMIN_POLICY });
    await rejects(iam.attachRolePolicy({ RoleName: 'adminrole', PolicyArn: dec!.Arn! }), 'MalformedPolicyDocumentException', /role\/adminrole/);
    assert.equal((await iam.getPolicy({ PolicyArn: dec!.Arn! })).Policy!.AttachmentCount, 0, 'nothing was attached');

    // A harmless policy attached to the administrator, whose new default version would add Decrypt: refused.
    const { Policy: desc } = await iam.createPolicy({ PolicyName: 'describe', PolicyDocument: describeAll });
    await iam.attachUserPolicy({ UserName: 'keyadmin', PolicyArn: desc!.Arn! });
    await rejects(iam.createPolicyVersion({ PolicyArn: desc!.Arn!, PolicyDocument: decryptAll, SetAsDefault: true }), 'MalformedPolicyDocumentException', /this policy version \(attached to user keyadmin\) would give .*user\/keyadmin both/);
    assert.deepEqual((await iam.listPolicyVersions({ PolicyArn: desc!.Arn! })).Versions!.map((v) => v.VersionId), ['v1'], 'no version was stored');
    // Not as default, it is stored (it is not in force).
    assert.equal((await iam.createPolicyVersion({ PolicyArn: desc!.Arn!, PolicyDocument: decryptAll })).PolicyVersion!.IsDefaultVersion, false);
  });

  it('the AWS CLI: aws iam create-policy, get-policy, get-policy-version, list-policies, delete-policy', async () => {
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
    const doc = policy({ Effect: 'Allow', Action: 'kms:ListKeys', Resource: '*' });
    const created = (await aws('iam', 'create-policy', '--policy-name', 'cli-list', '--policy-document', doc, '--description', 'from the CLI')).Policy;
    assert.equal(created.Arn, `arn:aws:iam::${acct}:policy/cli-list`);
    assert.equal(created.DefaultVersionId, 'v1');
    assert.equal((await aws('iam', 'get-policy', '--policy-arn', created.Arn)).Policy.Description, 'from the CLI');
    const version = (await aws('iam', 'get-policy-version', '--policy-arn', created.Arn, '--version-id', 'v1')).PolicyVersion;
    assert.equal(version.Document.Statement[0].Action, 'kms:ListKeys', 'the CLI decodes the URL-encoded document');
    const listed = (await aws('iam', 'list-policies', '--scope', 'Local')).Policies.map((x: { PolicyName: string }) => x.PolicyName);
    assert.ok(listed.includes('cli-list'));
    await aws('iam', 'create-user', '--user-name', 'cli-lister');
    await aws('iam', 'attach-user-policy', '--user-name', 'cli-lister', '--policy-arn', created.Arn);
    assert.equal((await aws('iam', 'list-attached-user-policies', '--user-name', 'cli-lister')).AttachedPolicies[0].PolicyName, 'cli-list');
    await assert.rejects(aws('iam', 'delete-policy', '--policy-arn', created.Arn), /DeleteConflict/);
    await aws('iam', 'detach-user-policy', '--user-name', 'cli-lister', '--policy-arn', created.Arn);
    await aws('iam', 'delete-policy', '--policy-arn', created.Arn);
    await assert.rejects(aws('iam', 'get-policy', '--policy-arn', created.Arn), /NoSuchEntity/);
  });
});
