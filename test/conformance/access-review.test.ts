/**
 * Access review (KeyholdService.ReviewAccess, `keyhold access review`), black box: real server
 * processes over HTTPS; identities, keys, grants and uses made through the AWS SDK v3; the review
 * read through Keyhold's client and the CLI. Each flag (sod-conflict, orphaned-access, owner-gone,
 * unused-access) is made to appear and then to disappear; "who can" names its reason.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { dirname, join } from 'node:path';
import type { IAM } from '@aws-sdk/client-iam';
import { KMS } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { callKeyhold } from '../../src/cli/keyhold-client.js';
import type { ClientSettings } from '../../src/cli/client.js';
import { iamClient, policy } from '../helpers/iam.js';
import { cliEnv, NO_AWS_PROFILE, newCredentials, requireTool, runCli, startServer, tempDir, type Credentials, type TestServer } from '../helpers/server.js';

const ADMIN_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyAdministrator';
const USER_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyUser';
const DAY = 86_400_000;

interface Reviewed {
  accountId: string;
  unusedDays: number;
  keys: {
    keyArn: string;
    owner: string;
    ownerStatus: string;
    principals: {
      principalArn: string; principalType: string; status: string; actions: string[]; via: { reason: string; actions: string[] }[];
      namedIn: string[]; lastUsedDate: string | null; lastUsedOperation: string | null; useCount: number; flags: string[];
    }[];
    flags: { flag: string; principalArn: string; message: string }[];
  }[];
}

async function reviewCli(server: TestServer, args: string[] = [], extraEnv: Record<string, string> = {}): Promise<Reviewed> {
  const r = await runCli(['access', 'review', '--json', ...args], cliEnv(server, undefined, { ...NO_AWS_PROFILE, ...extraEnv }));
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Reviewed;
}

const keyOf = (r: Reviewed, arn: string) => {
  const k = r.keys.find((x) => x.keyArn === arn);
  assert.ok(k, `key ${arn} is in the review`);
  return k;
};
const principalOf = (r: Reviewed, keyArn: string, arn: string) => keyOf(r, keyArn).principals.find((p) => p.principalArn === arn);
const flagsOf = (r: Reviewed, keyArn: string, flag: string) => keyOf(r, keyArn).flags.filter((f) => f.flag === flag).map((f) => f.principalArn);

describe('access review: who can, through what, last use, and flags (AWS SDK v3, Keyhold client, CLI, HTTPS)', () => {
  let server: TestServer;
  let iam: IAM;
  let kms: KMS;
  let settings: ClientSettings;
  const acct = '111122223333';
  const arn = (kind: string, name: string) => `arn:aws:iam::${acct}:${kind}/${name}`;

  async function userWithKey(name: string): Promise<Credentials> {
    await iam.createUser({ UserName: name });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: name });
    return { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
  }

  before(async () => {
    server = await startServer({ accountId: acct });
    iam = iamClient(server);
    kms = server.kms();
    settings = { endpoint: server.url, region: 'us-east-1', credentials: server.credentials, caBundle: server.caFile };
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('names each principal that can act on a key, the actions, the reason (key policy, group managed policy, role, grant) and the last use', async () => {
    const alice = await userWithKey('alice');
    await iam.createGroup({ GroupName: 'key-users' });
    await iam.attachGroupPolicy({ GroupName: 'key-users', PolicyArn: USER_POLICY });
    await iam.addUserToGroup({ GroupName: 'key-users', UserName: 'alice' });
    await userWithKey('carol');
    await userWithKey('dave');
    await iam.createRole({ RoleName: 'batch', AssumeRolePolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: arn('user', 'alice') }, Action: 'sts:AssumeRole' }) });
    await iam.putRolePolicy({ RoleName: 'batch', PolicyName: 'encrypt-only', PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:Encrypt', Resource: '*' }) });
    const { KeyMetadata: k } = await kms.createKey({
      Description: 'reviewed',
      Policy: policy(
        { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' },
        { Sid: 'CarolDecrypts', Effect: 'Allow', Principal: { AWS: arn('user', 'carol') }, Action: 'kms:Decrypt', Resource: '*' },
      ),
    });
    const keyArn = k!.Arn!;
    await kms.createGrant({ KeyId: keyArn, GranteePrincipal: arn('user', 'dave'), Operations: ['Encrypt'], Constraints: { EncryptionContextEquals: { app: 'billing' } } });
    const asAlice = server.kms({ credentials: alice });
    const { CiphertextBlob } = await asAlice.encrypt({ KeyId: keyArn, Plaintext: Buffer.from('x') });
    await asAlice.decrypt({ CiphertextBlob });
    await asAlice.decrypt({ CiphertextBlob });

    const r = await reviewCli(server, ['--key', keyArn]);
    assert.equal(r.keys.length, 1);
    assert.equal(r.unusedDays, 90);
    const a = principalOf(r, keyArn, arn('user', 'alice'))!;
    assert.ok(a.actions.includes('Decrypt') && a.actions.includes('Encrypt') && !a.actions.includes('PutKeyPolicy'));
    assert.ok(a.via.some((v) => /managed policy arn:aws:iam::aws:policy\/KeyholdKeyUser attached to group key-users/.test(v.reason) && v.actions.includes('Decrypt')), JSON.stringify(a.via));
    assert.equal(a.lastUsedOperation, 'Decrypt');
    assert.equal(a.useCount, 3, 'one Encrypt and two Decrypts');
    assert.ok(Math.abs(Date.parse(a.lastUsedDate!) - Date.now()) < 5 * 60_000);
    const c = principalOf(r, keyArn, arn('user', 'carol'))!;
    assert.deepEqual(c.actions, ['Decrypt']);
    assert.match(c.via[0]!.reason, /key policy statement 'CarolDecrypts'/);
    assert.equal(c.lastUsedDate, null);
    assert.deepEqual(c.namedIn, ["key policy statement 'CarolDecrypts' (Allow)"]);
    const d = principalOf(r, keyArn, arn('user', 'dave'))!;
    assert.deepEqual(d.actions, ['Encrypt']);
    assert.match(d.via[0]!.reason, /grant [0-9a-f]+ \(with encryption context \{"app":"billing"\}\)/);
    const b = principalOf(r, keyArn, arn('role', 'batch'))!;
    assert.deepEqual(b.actions, ['Encrypt']);
    assert.match(b.via[0]!.reason, /inline policy 'encrypt-only' of role batch/);
    assert.equal(principalOf(r, keyArn, `arn:aws:iam::${acct}:root`)!.principalType, 'Root');
    assert.deepEqual(keyOf(r, keyArn).flags, [], 'nothing to flag yet');

    // --principal narrows to one principal; the text form names it too.
    const only = await reviewCli(server, ['--principal', arn('user', 'carol')]);
    assert.ok(only.keys.every((x) => x.principals.every((p) => p.principalArn === arn('user', 'carol'))));
    assert.ok(principalOf(only, keyArn, arn('user', 'carol')));
    const text = await runCli(['access', 'review', '--key', keyArn], cliEnv(server, undefined, NO_AWS_PROFILE));
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /user\/carol \[User, active\] never used/);
    assert.match(text.stdout, /Decrypt <- allowed by key policy statement 'CarolDecrypts'/);
  });

  it('sod-conflict appears when one principal gets admin and Decrypt (guard off), and disappears when one is taken away', async () => {
    await userWithKey('bob');
    await iam.attachUserPolicy({ UserName: 'bob', PolicyArn: ADMIN_POLICY });
    const { KeyMetadata: k } = await kms.createKey({ Description: 'sod' });
    const keyArn = k!.Arn!;
    type Wire = { Keys: { KeyArn: string; Flags: { Flag: string; PrincipalArn: string; Message: string }[] }[] };
    let r = await callKeyhold<Wire>(settings, 'ReviewAccess', { KeyId: keyArn });
    assert.equal(r.Keys[0]!.Flags.length, 0, JSON.stringify(r.Keys[0]!.Flags));
    await callKeyhold(settings, 'UpdateAccountSettings', { SeparationOfDuties: false });
    await iam.attachUserPolicy({ UserName: 'bob', PolicyArn: USER_POLICY });
    r = await callKeyhold<Wire>(settings, 'ReviewAccess', { KeyId: keyArn });
    const f = r.Keys[0]!.Flags.find((x) => x.Flag === 'sod-conflict');
    assert.ok(f, JSON.stringify(r.Keys[0]!.Flags));
    assert.equal(f.PrincipalArn, arn('user', 'bob'));
    assert.match(f.Message, /administer the key \(.*PutKeyPolicy.*\) and decrypt with it \(Decrypt/);
    await iam.detachUserPolicy({ UserName: 'bob', PolicyArn: USER_POLICY });
    await callKeyhold(settings, 'UpdateAccountSettings', { SeparationOfDuties: true });
    const after = await reviewCli(server, ['--key', keyArn]);
    assert.deepEqual(flagsOf(after, keyArn, 'sod-conflict'), []);
  });

  it('orphaned-access appears for an offboarded user still named in a key policy and a deleted principal named in a grant, and disappears when removed', async () => {
    await userWithKey('erin');
    const { KeyMetadata: k } = await kms.createKey({
      Description: 'orphans',
      Policy: policy(
        { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' },
        { Sid: 'ErinDecrypts', Effect: 'Allow', Principal: { AWS: arn('user', 'erin') }, Action: 'kms:Decrypt', Resource: '*' },
      ),
    });
    const keyArn = k!.Arn!;
    const ghost = arn('user', 'ghost');
    const { GrantId } = await kms.createGrant({ KeyId: keyArn, GranteePrincipal: ghost, Operations: ['Decrypt'] });
    const off = await runCli(['access', 'offboard', 'erin', '--no-rotate', '--json'], cliEnv(server, undefined, NO_AWS_PROFILE));
    assert.equal(off.code, 0, off.stderr);

    let r = await reviewCli(server, ['--key', keyArn]);
    assert.deepEqual(flagsOf(r, keyArn, 'orphaned-access').sort(), [arn('user', 'erin'), ghost].sort());
    const e = principalOf(r, keyArn, arn('user', 'erin'))!;
    assert.equal(e.status, 'offboarded');
    assert.deepEqual(e.actions, ['Decrypt'], 'the key policy still names erin: a user re-created under that name would decrypt');
    assert.equal(principalOf(r, keyArn, ghost)!.status, 'deleted');
    assert.match(keyOf(r, keyArn).flags.find((f) => f.principalArn === ghost)!.message, /deleted but still named in grant [0-9a-f]+ \(grantee\)/);

    await kms.putKeyPolicy({ KeyId: keyArn, PolicyName: 'default', Policy: policy({ Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' }) });
    await kms.revokeGrant({ KeyId: keyArn, GrantId: GrantId! });
    r = await reviewCli(server, ['--key', keyArn]);
    assert.deepEqual(flagsOf(r, keyArn, 'orphaned-access'), []);
    assert.equal(principalOf(r, keyArn, arn('user', 'erin')), undefined, 'erin has no access left');
  });

  it('owner-gone appears when the key\'s owner is offboarded and disappears when the Owner tag names an active principal', async () => {
    const frank = await userWithKey('frank');
    await iam.putUserPolicy({ UserName: 'frank', PolicyName: 'create', PolicyDocument: policy({ Effect: 'Allow', Action: 'kms:CreateKey', Resource: '*' }) });
    const { KeyMetadata: k } = await server.kms({ credentials: frank }).createKey({ Description: 'frank owns it' });
    const keyArn = k!.Arn!;
    let r = await reviewCli(server, ['--key', keyArn]);
    assert.equal(keyOf(r, keyArn).owner, arn('user', 'frank'));
    assert.deepEqual(flagsOf(r, keyArn, 'owner-gone'), []);
    assert.equal((await runCli(['access', 'offboard', 'frank', '--no-rotate'], cliEnv(server, undefined, NO_AWS_PROFILE))).code, 0);
    r = await reviewCli(server, ['--key', keyArn]);
    assert.deepEqual(flagsOf(r, keyArn, 'owner-gone'), [arn('user', 'frank')]);
    assert.equal(keyOf(r, keyArn).ownerStatus, 'offboarded');
    await kms.tagResource({ KeyId: keyArn, Tags: [{ TagKey: 'Owner', TagValue: arn('user', 'alice') }] });
    r = await reviewCli(server, ['--key', keyArn]);
    assert.deepEqual(flagsOf(r, keyArn, 'owner-gone'), []);
  });

  it('is refused without keyhold:ReviewAccess, and bad input gets ValidationException', async () => {
    const intern = await userWithKey('intern');
    const r = await runCli(['access', 'review'], cliEnv(server, intern, NO_AWS_PROFILE));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /AccessDeniedException: .*keyhold:ReviewAccess/);
    await assert.rejects(callKeyhold(settings, 'ReviewAccess', { PrincipalArn: 'bob' }), (e: Error & { type?: string }) => e.type === 'ValidationException');
    await assert.rejects(callKeyhold(settings, 'ReviewAccess', { UnusedDays: 0 }), (e: Error & { type?: string }) => e.type === 'ValidationException');
    await assert.rejects(callKeyhold(settings, 'ReviewAccess', { KeyId: 'alias/none' }), (e: Error & { type?: string }) => e.type === 'NotFoundException');
    assert.equal((await runCli(['access', 'review', '--unused-days', 'x'], cliEnv(server, undefined, NO_AWS_PROFILE))).code, 2);
  });
});

// ---- unused access, under a clock moved 100 days ahead (libfaketime) ----

function libfaketime(): string | undefined {
  const dirs = ['/usr/local/lib/faketime', '/usr/lib/faketime'];
  try {
    for (const d of readdirSync('/usr/lib')) dirs.push(join('/usr/lib', d, 'faketime'));
  } catch {
    // no /usr/lib
  }
  return dirs.map((d) => join(d, 'libfaketime.so.1')).find((f) => existsSync(f));
}

function hasFaketime(): boolean {
  try {
    execFileSync('faketime', ['-f', '+0d', 'true'], { stdio: 'ignore' });
    return libfaketime() !== undefined;
  } catch {
    return false;
  }
}

describe('access review: unused-access after N days (server and CLI under faketime)', { skip: !requireTool('faketime', hasFaketime()) }, () => {
  it('flags a user who can decrypt but has not for more than N days, and clears the flag once they use the key', async () => {
    const dataDir = join(tempDir(), 'data');
    const credentials = newCredentials();
    const acct = '111122223333';
    let s = await startServer({ dataDir, credentials, accountId: acct });
    let used: string;
    let idle: string;
    let grace: Credentials;
    try {
      const iam = iamClient(s);
      await iam.createUser({ UserName: 'grace' });
      await iam.attachUserPolicy({ UserName: 'grace', PolicyArn: USER_POLICY });
      const { AccessKey: ak } = await iam.createAccessKey({ UserName: 'grace' });
      grace = { accessKeyId: ak!.AccessKeyId!, secretAccessKey: ak!.SecretAccessKey! };
      used = (await s.kms().createKey({ Description: 'used' })).KeyMetadata!.Arn!;
      idle = (await s.kms().createKey({ Description: 'idle' })).KeyMetadata!.Arn!;
      const asGrace = s.kms({ credentials: grace });
      await asGrace.decrypt({ CiphertextBlob: (await asGrace.encrypt({ KeyId: used, Plaintext: Buffer.from('x') })).CiphertextBlob! });
      const now = await reviewCli(s);
      assert.deepEqual(flagsOf(now, used, 'unused-access'), [], 'used just now');
      assert.deepEqual(flagsOf(now, idle, 'unused-access'), [], 'the key and the user are new');
    } finally {
      await s.stop();
    }

    const lib = libfaketime()!;
    const fake = { LD_PRELOAD: lib, FAKETIME: '+100d' };
    s = await startServer({ dataDir, credentials, accountId: acct, wrapper: ['env', `LD_PRELOAD=${lib}`, 'FAKETIME=+100d'] });
    try {
      const graceArn = `arn:aws:iam::${acct}:user/grace`;
      let r = await reviewCli(s, [], fake);
      assert.deepEqual(flagsOf(r, used, 'unused-access'), [graceArn]);
      assert.deepEqual(flagsOf(r, idle, 'unused-access'), [graceArn]);
      assert.match(keyOf(r, used).flags.find((f) => f.flag === 'unused-access')!.message, /more than 90 days \(last used 20/);
      assert.match(keyOf(r, idle).flags.find((f) => f.flag === 'unused-access')!.message, /never used/);
      r = await reviewCli(s, ['--unused-days', '120'], fake);
      assert.deepEqual(flagsOf(r, used, 'unused-access'), [], 'not yet 120 days');

      const asGrace = new KMS({
        endpoint: s.url, region: 'us-east-1', credentials: grace!, maxAttempts: 1, systemClockOffset: 100 * DAY,
        requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(join(dataDir, 'tls', 'ca.pem')) }) }),
      });
      await asGrace.encrypt({ KeyId: used, Plaintext: Buffer.from('again') });
      r = await reviewCli(s, [], fake);
      assert.deepEqual(flagsOf(r, used, 'unused-access'), [], 'used again');
      assert.deepEqual(flagsOf(r, idle, 'unused-access'), [graceArn], 'still idle');
    } finally {
      await s.stop();
      rmSync(dirname(dataDir), { recursive: true, force: true });
    }
  });
});
