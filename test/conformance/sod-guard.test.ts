/**
 * The separation-of-duties guard as an account setting (KeyholdService.UpdateAccountSettings,
 * `keyhold settings --separation-of-duties on|off`), black box: a real server over HTTPS, KMS and
 * IAM calls through the AWS SDK v3, settings through Keyhold's client and the CLI. With the guard
 * off a policy that merges duties is accepted; with it on the same policy is rejected; each change
 * of the setting is audited with its previous value.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IAM } from '@aws-sdk/client-iam';
import { callKeyhold } from '../../src/cli/keyhold-client.js';
import type { ClientSettings } from '../../src/cli/client.js';
import { rejects } from '../helpers/assert.js';
import { readAuditEvents } from '../helpers/audit.js';
import { iamClient, policy } from '../helpers/iam.js';
import { cliEnv, NO_AWS_PROFILE, runCli, startServer, type Credentials, type TestServer } from '../helpers/server.js';

const ADMIN_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyAdministrator';
const USER_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyUser';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SettingsWire {
  AccountId: string;
  DefaultRotationPeriodInDays: number;
  SeparationOfDuties: boolean;
}

async function rejectsKeyhold(p: Promise<unknown>, type: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error & { type?: string }) => {
    assert.equal(e.type ?? e.name, type, `expected ${type}, got ${e.name}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('the separation-of-duties guard as an account setting (AWS SDK v3, Keyhold client, CLI, HTTPS)', () => {
  let server: TestServer;
  let iam: IAM;
  let settings: ClientSettings;
  let env: Record<string, string | undefined>;
  const acct = '111122223333';

  before(async () => {
    server = await startServer({ accountId: acct });
    iam = iamClient(server);
    settings = { endpoint: server.url, region: 'us-east-1', credentials: server.credentials, caBundle: server.caFile };
    env = cliEnv(server, undefined, NO_AWS_PROFILE);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('is on by default; off, merged duties are accepted; on again, the same writes are rejected; each change is audited', async () => {
    const kms = server.kms();
    const { KeyMetadata: key } = await kms.createKey({ Description: 'guarded' });
    const keyArn = key!.Arn!;
    const got = await callKeyhold<SettingsWire>(settings, 'GetAccountSettings', {});
    assert.equal(got.SeparationOfDuties, true);
    const merged = policy(
      { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'Both', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:user/mallory` }, Action: ['kms:Decrypt', 'kms:PutKeyPolicy'], Resource: '*' },
    );
    await iam.createUser({ UserName: 'mallory' });
    await iam.attachUserPolicy({ UserName: 'mallory', PolicyArn: ADMIN_POLICY });

    // On: refused.
    await rejects(kms.putKeyPolicy({ KeyId: keyArn, PolicyName: 'default', Policy: merged }), 'MalformedPolicyDocumentException', /mallory both key administration \(kms:PutKeyPolicy\) and key use \(kms:Decrypt\)/);
    await rejects(iam.attachUserPolicy({ UserName: 'mallory', PolicyArn: USER_POLICY }), 'MalformedPolicyDocumentException', /Separation of duties/);
    await rejects(kms.createGrant({ KeyId: keyArn, GranteePrincipal: `arn:aws:iam::${acct}:user/mallory`, Operations: ['Decrypt', 'CreateGrant'] }), 'ValidationException', /Separation of duties/);

    // Off, through the API: the same writes are accepted.
    const off = await callKeyhold<SettingsWire>(settings, 'UpdateAccountSettings', { SeparationOfDuties: false });
    assert.equal(off.SeparationOfDuties, false);
    assert.equal(off.DefaultRotationPeriodInDays, 365, 'the other setting is untouched');
    assert.equal((await callKeyhold<SettingsWire>(settings, 'GetAccountSettings', {})).SeparationOfDuties, false);
    await kms.putKeyPolicy({ KeyId: keyArn, PolicyName: 'default', Policy: merged });
    assert.equal(JSON.parse((await kms.getKeyPolicy({ KeyId: keyArn, PolicyName: 'default' })).Policy!).Statement[1].Sid, 'Both');
    await iam.attachUserPolicy({ UserName: 'mallory', PolicyArn: USER_POLICY });
    const grant = await kms.createGrant({ KeyId: keyArn, GranteePrincipal: `arn:aws:iam::${acct}:user/mallory`, Operations: ['Decrypt', 'CreateGrant'] });
    assert.ok(grant.GrantId);

    // On again, through the CLI: the merged writes are refused again (existing policies stay as they are).
    const on = await runCli(['settings', '--separation-of-duties', 'on', '--json'], env);
    assert.equal(on.code, 0, on.stderr);
    assert.deepEqual(JSON.parse(on.stdout), { accountId: acct, defaultRotationPeriodInDays: 365, separationOfDuties: true, auditEncryptionContextHmac: false });
    const { KeyMetadata: key2 } = await kms.createKey({ Description: 'second' });
    await rejects(kms.putKeyPolicy({ KeyId: key2!.Arn!, PolicyName: 'default', Policy: merged }), 'MalformedPolicyDocumentException', /mallory/);
    await iam.createUser({ UserName: 'trent' });
    await iam.attachUserPolicy({ UserName: 'trent', PolicyArn: ADMIN_POLICY });
    await rejects(iam.attachUserPolicy({ UserName: 'trent', PolicyArn: USER_POLICY }), 'MalformedPolicyDocumentException', /trent/);
    const text = await runCli(['settings'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /separation-of-duties guard: on/);
    const bad = await runCli(['settings', '--separation-of-duties', 'maybe'], env);
    assert.equal(bad.code, 2);
    await rejectsKeyhold(callKeyhold(settings, 'UpdateAccountSettings', { SeparationOfDuties: 'no' }), 'SerializationException', /boolean/);
    assert.equal((await callKeyhold<SettingsWire>(settings, 'GetAccountSettings', {})).SeparationOfDuties, true, 'a refused change changes nothing');

    await sleep(300);
    const changes = readAuditEvents(server.dataDir).filter((e) => e.eventName === 'UpdateAccountSettings' && !e.errorCode);
    assert.equal(changes.length, 2);
    assert.equal(changes[0]!.details?.previousSeparationOfDuties, true);
    assert.equal(changes[0]!.details?.separationOfDuties, false);
    assert.equal(changes[1]!.details?.previousSeparationOfDuties, false);
    assert.equal(changes[1]!.details?.separationOfDuties, true);
    assert.equal(changes[0]!.principal?.isRoot, true);
  });

  it('only principals allowed kms:UpdateAccountSettings may change it', async () => {
    const iam = iamClient(server);
    await iam.createUser({ UserName: 'intern' });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: 'intern' });
    const creds: Credentials = { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
    const asIntern: ClientSettings = { ...settings, credentials: creds };
    await rejectsKeyhold(callKeyhold(asIntern, 'UpdateAccountSettings', { SeparationOfDuties: false }), 'AccessDeniedException', /kms:UpdateAccountSettings/);
    assert.equal((await callKeyhold<SettingsWire>(settings, 'GetAccountSettings', {})).SeparationOfDuties, true);
    await sleep(300);
    const denied = readAuditEvents(server.dataDir).filter((e) => e.eventName === 'UpdateAccountSettings' && e.errorCode === 'AccessDeniedException');
    assert.equal(denied.length, 1);
  });
});

describe('the separation-of-duties guard across policy kinds: key policy + identity policies + grants (AWS SDK v3, HTTPS)', () => {
  let server: TestServer;
  let iam: IAM;
  const acct = '111122223333';
  const arn = (kind: string, name: string) => `arn:aws:iam::${acct}:${kind}/${name}`;
  const root = { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' };

  before(async () => {
    server = await startServer({ accountId: acct });
    iam = iamClient(server);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('a key policy naming P as administrator, then any identity-policy write giving P Decrypt on that key, is rejected naming P, the actions and the key', async () => {
    const kms = server.kms();
    await iam.createUser({ UserName: 'kpadmin' });
    await iam.createRole({ RoleName: 'ops', AssumeRolePolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: arn('user', 'kpadmin') }, Action: 'sts:AssumeRole' }) });
    const { KeyMetadata: k } = await kms.createKey({
      Description: 'administered in the key policy',
      Policy: policy(root, { Sid: 'Admins', Effect: 'Allow', Principal: { AWS: [arn('user', 'kpadmin'), arn('role', 'ops')] }, Action: ['kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion'], Resource: '*' }),
    });
    const keyArn = k!.Arn!;
    const conflict = (who: string) => new RegExp(`${who} both key administration \\(kms:PutKeyPolicy, kms:ScheduleKeyDeletion\\) and key use \\(kms:Decrypt[^)]*\\) on ${keyArn.replace(/[/.]/g, '\\$&')} \\(administration: allowed by key policy statement 'Admins'`);
    const decrypt = policy({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn });

    await rejects(iam.putUserPolicy({ UserName: 'kpadmin', PolicyName: 'dec', PolicyDocument: decrypt }), 'MalformedPolicyDocumentException', conflict('user/kpadmin'));
    await rejects(iam.attachUserPolicy({ UserName: 'kpadmin', PolicyArn: USER_POLICY }), 'MalformedPolicyDocumentException', conflict('user/kpadmin'));
    await iam.createGroup({ GroupName: 'readers' });
    await iam.attachGroupPolicy({ GroupName: 'readers', PolicyArn: USER_POLICY });
    await rejects(iam.addUserToGroup({ GroupName: 'readers', UserName: 'kpadmin' }), 'MalformedPolicyDocumentException', /adding kpadmin to group readers would give .*user\/kpadmin both key administration/);
    await iam.createGroup({ GroupName: 'staff' });
    await iam.addUserToGroup({ GroupName: 'staff', UserName: 'kpadmin' });
    await rejects(iam.putGroupPolicy({ GroupName: 'staff', PolicyName: 'dec', PolicyDocument: decrypt }), 'MalformedPolicyDocumentException', conflict('user/kpadmin'));
    await rejects(iam.attachGroupPolicy({ GroupName: 'staff', PolicyArn: USER_POLICY }), 'MalformedPolicyDocumentException', conflict('user/kpadmin'));
    await rejects(iam.putRolePolicy({ RoleName: 'ops', PolicyName: 'dec', PolicyDocument: decrypt }), 'MalformedPolicyDocumentException', conflict('role/ops'));
    await rejects(iam.attachRolePolicy({ RoleName: 'ops', PolicyArn: USER_POLICY }), 'MalformedPolicyDocumentException', conflict('role/ops'));
    await rejects(kms.createGrant({ KeyId: keyArn, GranteePrincipal: arn('user', 'kpadmin'), Operations: ['Decrypt'] }), 'ValidationException', /user\/kpadmin both key administration \(kms:PutKeyPolicy, kms:ScheduleKeyDeletion\) and key use \(kms:Decrypt\)/);
    await rejects(kms.createGrant({ KeyId: keyArn, GranteePrincipal: arn('user', 'kpadmin'), Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { a: 'b' } } }), 'ValidationException', /Separation of duties/);

    // Nothing was stored by the refused writes.
    assert.deepEqual((await iam.listUserPolicies({ UserName: 'kpadmin' })).PolicyNames, []);
    assert.deepEqual((await iam.listAttachedUserPolicies({ UserName: 'kpadmin' })).AttachedPolicies, []);
    assert.deepEqual((await iam.listGroupsForUser({ UserName: 'kpadmin' })).Groups!.map((g) => g.GroupName), ['staff']);
    assert.deepEqual((await iam.listGroupPolicies({ GroupName: 'staff' })).PolicyNames, []);
    assert.deepEqual((await iam.listRolePolicies({ RoleName: 'ops' })).PolicyNames, []);
    assert.deepEqual((await kms.listGrants({ KeyId: keyArn })).Grants, []);

    // Decrypt on another key, or a non-conflicting action on this one, is fine.
    const { KeyMetadata: other } = await kms.createKey({ Description: 'other' });
    await iam.putUserPolicy({ UserName: 'kpadmin', PolicyName: 'dec-other', PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: other!.Arn! }) });
    await iam.putUserPolicy({ UserName: 'kpadmin', PolicyName: 'describe', PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:DescribeKey', Resource: keyArn }) });
    // An explicit Deny in the key policy takes the conflict away.
    await kms.putKeyPolicy({
      KeyId: keyArn, PolicyName: 'default',
      Policy: policy(root, { Sid: 'Admins', Effect: 'Allow', Principal: { AWS: arn('user', 'kpadmin') }, Action: ['kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion'], Resource: '*' },
        { Sid: 'NoDecrypt', Effect: 'Deny', Principal: { AWS: arn('user', 'kpadmin') }, Action: 'kms:Decrypt', Resource: '*' }),
    });
    await iam.putUserPolicy({ UserName: 'kpadmin', PolicyName: 'dec', PolicyDocument: decrypt });
  });

  it('identity policies first, then a key policy naming P as administrator is rejected (PutKeyPolicy and CreateKey)', async () => {
    const kms = server.kms();
    await iam.createUser({ UserName: 'reader' });
    await iam.attachUserPolicy({ UserName: 'reader', PolicyArn: USER_POLICY });
    const { KeyMetadata: k } = await kms.createKey({ Description: 'read by reader' });
    const withAdmin = policy(root, { Sid: 'ReaderAdmin', Effect: 'Allow', Principal: { AWS: arn('user', 'reader') }, Action: 'kms:DisableKey', Resource: '*' });
    await rejects(kms.putKeyPolicy({ KeyId: k!.Arn!, PolicyName: 'default', Policy: withAdmin }), 'MalformedPolicyDocumentException',
      /this key policy would give arn:aws:iam::111122223333:user\/reader both key administration \(kms:DisableKey\) and key use \(kms:Decrypt, kms:ReEncryptFrom\) .*use: allowed by key policy statement 'Root' enables IAM policies; allowed by managed policy arn:aws:iam::aws:policy\/KeyholdKeyUser attached to user reader/);
    await rejects(kms.createKey({ Policy: withAdmin }), 'MalformedPolicyDocumentException', /user\/reader both key administration/);
    assert.equal(JSON.parse((await kms.getKeyPolicy({ KeyId: k!.Arn!, PolicyName: 'default' })).Policy!).Statement.length, 1, 'the old policy stays');
    // A key policy that does not delegate to IAM policies leaves reader's IAM rights without effect: no conflict.
    const noDelegation = policy(
      { Sid: 'RootAdmin', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: ['kms:PutKeyPolicy', 'kms:GetKeyPolicy', 'kms:DescribeKey'], Resource: '*' },
      { Sid: 'ReaderAdmin', Effect: 'Allow', Principal: { AWS: arn('user', 'reader') }, Action: 'kms:DisableKey', Resource: '*' },
    );
    await kms.putKeyPolicy({ KeyId: k!.Arn!, PolicyName: 'default', Policy: noDelegation });

    // With the guard off, the cross-policy merge is accepted.
    const settings: ClientSettings = { endpoint: server.url, region: 'us-east-1', credentials: server.credentials, caBundle: server.caFile };
    await callKeyhold(settings, 'UpdateAccountSettings', { SeparationOfDuties: false });
    const { KeyMetadata: k2 } = await kms.createKey({ Policy: withAdmin });
    assert.equal(k2!.KeyState, 'Enabled');
    await callKeyhold(settings, 'UpdateAccountSettings', { SeparationOfDuties: true });
  });
});
