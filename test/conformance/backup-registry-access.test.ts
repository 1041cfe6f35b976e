/**
 * The backup registry's actions are authorized like every other call, by the policy engine:
 * kms:RegisterBackup on every wrapping key, kms:RecordBackupVerification on every wrapping key of
 * the registered backup, kms:ListBackups on the key named (or on the account when unfiltered).
 * The shipped policies: a backup writer (KeyholdBackupWriter) writes and registers but cannot
 * decrypt or record drills; a restore-only drill identity (KeyholdBackupRestoreDrill) drills and
 * records but cannot register; the separation-of-duties guard still keeps decrypt and
 * administration apart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IAM } from '@aws-sdk/client-iam';
import { rejects } from '../helpers/assert.js';
import { createUserWithKey, iamClient, policy } from '../helpers/iam.js';
import { cliEnv, runCli, startServer, tempDir, type Credentials, type TestServer } from '../helpers/server.js';
import { callKeyhold } from '../../src/cli/keyhold-client.js';
import type { ClientSettings } from '../../src/cli/client.js';

const WRITER_POLICY = 'arn:aws:iam::aws:policy/KeyholdBackupWriter';
const DRILL_POLICY = 'arn:aws:iam::aws:policy/KeyholdBackupRestoreDrill';
const ADMIN_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyAdministrator';
const USER_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyUser';

describe('backup registry: RegisterBackup, ListBackups and RecordBackupVerification are authorized actions', () => {
  const acct = '111122223333';
  let server: TestServer;
  let iam: IAM;
  let dir: string;
  let keyA: string;
  let keyB: string;
  let keyDeny: string;
  const creds: Record<string, Credentials> = {};
  let plain: string;

  const cliAs = (who: string, args: string[]) => runCli(args, cliEnv(server, who === 'root' ? server.credentials : creds[who]!));
  const settingsOf = (who: string): ClientSettings => ({ endpoint: server.url, region: 'us-east-1', credentials: creds[who]!, caBundle: server.caFile! });
  const register = (who: string, keyArns: string[], extra: Record<string, unknown> = {}) =>
    callKeyhold(settingsOf(who), 'RegisterBackup', {
      MessageId: randomBytes(32).toString('hex'), Location: `/backups/${randomBytes(4).toString('hex')}.kh`, SizeBytes: 100, Suite: '0x0478 test',
      WrappingKeys: keyArns.map((KeyArn) => ({ KeyArn, KeyVersion: 1 })), ...extra,
    });

  async function user(name: string, attach: string[] = [], inline?: string): Promise<void> {
    creds[name] = await createUserWithKey(iam, name, attach, inline);
  }

  before(async () => {
    server = await startServer({ accountId: acct });
    iam = iamClient(server);
    dir = tempDir('keyhold-backup-access-');
    plain = join(dir, 'dump.sql');
    writeFileSync(plain, randomBytes(30_000));
    keyA = (await server.kms().createKey({ Description: 'backups A' })).KeyMetadata!.Arn!;
    keyB = (await server.kms().createKey({ Description: 'backups B' })).KeyMetadata!.Arn!;
    // IAM policies decide for this key, except that its key policy denies the writer RegisterBackup.
    keyDeny = (await server.kms().createKey({
      Description: 'no registering by the writer',
      Policy: policy(
        { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' },
        { Sid: 'NoWriterRegistry', Effect: 'Deny', Principal: { AWS: `arn:aws:iam::${acct}:user/writer` }, Action: 'kms:RegisterBackup', Resource: '*' },
      ),
    })).KeyMetadata!.Arn!;
    await user('writer', [WRITER_POLICY]);
    await user('driller', [DRILL_POLICY]);
    await user('keyuser', [USER_POLICY]);
    await user('encryptor', [], policy({ Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Encrypt', 'kms:DescribeKey'], Resource: '*' }));
    await user('scoped', [], policy({ Effect: 'Allow', Action: 'kms:ListBackups', Resource: keyA }));
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('RegisterBackup needs kms:RegisterBackup: encrypt without it writes the file but the registration is denied (AccessDeniedException)', async () => {
    const out = join(dir, 'by-encryptor.kh');
    const r = await cliAs('encryptor', ['backup', 'encrypt', '--key', keyA, plain, '-o', out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`AccessDeniedException: User: arn:aws:iam::${acct}:user/encryptor is not authorized to perform: kms:RegisterBackup on resource: ${keyA} because no resource-based policy allows the kms:RegisterBackup action`));
    await rejects(register('encryptor', [keyA]), 'AccessDeniedException', /kms:RegisterBackup/);
    // Nothing was registered by the denied calls.
    const listed = JSON.parse((await cliAs('root', ['backup', 'list', '--json'])).stdout) as { Location: string }[];
    assert.equal(listed.length, 0);
  });

  it('a backup writer (KeyholdBackupWriter) writes, registers and lists, but cannot decrypt or record a verification', async () => {
    const out = join(dir, 'nightly.kh');
    const r = await cliAs('writer', ['backup', 'encrypt', '--key', keyA, '--key', keyB, plain, '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).registered, true);
    const listed = await cliAs('writer', ['backup', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as { MessageId: string; Location: string; RegisteredBy: string }[];
    assert.deepEqual(rows.map((b) => [b.Location, b.RegisteredBy]), [[out, `arn:aws:iam::${acct}:user/writer`]]);
    const dec = await cliAs('writer', ['backup', 'decrypt', out, '-o', join(dir, 'nope.sql')]);
    assert.notEqual(dec.code, 0);
    assert.match(dec.stderr, /AccessDeniedException/);
    await rejects(callKeyhold(settingsOf('writer'), 'RecordBackupVerification', { MessageId: rows[0]!.MessageId, Ok: true }), 'AccessDeniedException', /kms:RecordBackupVerification on resource: /);
  });

  it('RegisterBackup is checked on every wrapping key: an explicit deny in one key policy stops it', async () => {
    await rejects(register('writer', [keyA, keyDeny]), 'AccessDeniedException',
      new RegExp(`user/writer is not authorized to perform: kms:RegisterBackup on resource: ${keyDeny} with an explicit deny in a resource-based policy`));
    const r = await cliAs('writer', ['backup', 'encrypt', '--key', keyDeny, plain, '-o', join(dir, 'denied.kh')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /explicit deny/);
    // The same key through --no-register is fine: only the registry is denied.
    const ok = await cliAs('writer', ['backup', 'encrypt', '--key', keyDeny, '--no-register', plain, '-o', join(dir, 'unregistered.kh')]);
    assert.equal(ok.code, 0, ok.stderr);
    // A key this server does not hold: the identity policy decides, with the key ARN as resource.
    const foreign = 'arn:aws:kms:eu-west-1:999988887777:key/11111111-2222-3333-4444-555555555555';
    await register('writer', [foreign]);
    await rejects(register('encryptor', [foreign]), 'AccessDeniedException', new RegExp(`kms:RegisterBackup on resource: ${foreign} because no identity-based policy allows`));
    // Recording a verification with the registration needs kms:RecordBackupVerification as well.
    await rejects(register('writer', [keyA], { Verified: true }), 'AccessDeniedException', /kms:RecordBackupVerification/);
  });

  it('ListBackups: on the key named, or on the account when unfiltered', async () => {
    const byKey = await cliAs('scoped', ['backup', 'list', '--key', keyA, '--json']);
    assert.equal(byKey.code, 0, byKey.stderr);
    assert.equal((JSON.parse(byKey.stdout) as unknown[]).length, 1);
    const other = await cliAs('scoped', ['backup', 'list', '--key', keyB]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, new RegExp(`AccessDeniedException: User: arn:aws:iam::${acct}:user/scoped is not authorized to perform: kms:ListBackups on resource: ${keyB}`));
    const all = await cliAs('scoped', ['backup', 'list']);
    assert.equal(all.code, 1);
    assert.match(all.stderr, /not authorized to perform: kms:ListBackups on resource: \* because no identity-based policy allows the kms:ListBackups action/);
    const risk = await cliAs('scoped', ['backup', 'list', '--at-risk-without', keyB]);
    assert.equal(risk.code, 1);
    assert.match(risk.stderr, /kms:ListBackups/);
    const none = await cliAs('encryptor', ['backup', 'list']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /AccessDeniedException/);
  });

  it('a restore-only drill identity (KeyholdBackupRestoreDrill) drills and records the result, but cannot register or encrypt', async () => {
    // The registry holds nightly.kh and the record under a foreign key (no file behind it): one
    // proven, one failed, both results recorded by the driller.
    const r = await cliAs('driller', ['backup', 'drill', '--json']);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { checked: number; failed: number };
    assert.deepEqual([report.checked, report.failed], [2, 1]);
    const rows = JSON.parse((await cliAs('root', ['backup', 'list', '--json'])).stdout) as { Location: string; LastVerifyOk?: boolean; LastVerifiedBy?: string }[];
    const driller = `arn:aws:iam::${acct}:user/driller`;
    assert.deepEqual(rows.map((b) => [b.Location.endsWith('nightly.kh'), b.LastVerifyOk, b.LastVerifiedBy]).sort(), [[false, false, driller], [true, true, driller]]);
    await rejects(register('driller', [keyA]), 'AccessDeniedException', /user\/driller is not authorized to perform: kms:RegisterBackup/);
    const enc = await cliAs('driller', ['backup', 'encrypt', '--key', keyA, plain, '-o', join(dir, 'by-driller.kh')]);
    assert.notEqual(enc.code, 0);
    assert.match(enc.stderr, /AccessDeniedException/);
  });

  it('a key user (KeyholdKeyUser) keeps working with the registry, and rewrap --all runs as one', async () => {
    const out = join(dir, 'keyuser.kh');
    const e = await cliAs('keyuser', ['backup', 'encrypt', '--key', keyB, plain, '-o', out]);
    assert.equal(e.code, 0, e.stderr);
    await server.kms().rotateKeyOnDemand({ KeyId: keyB });
    const r = await cliAs('keyuser', ['backup', 'rewrap', '--all', '--from-key', keyB, '--state', join(dir, 'state.json'), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = JSON.parse(r.stdout) as { rewrapped: number; retirable: boolean };
    assert.equal(s.rewrapped, 2); // nightly.kh (keyA + keyB) and keyuser.kh
    assert.equal(s.retirable, true);
  });

  it('the separation-of-duties guard still keeps drills (decrypt) and key administration apart; a writer may administer', async () => {
    await iam.createUser({ UserName: 'ops' });
    await iam.attachUserPolicy({ UserName: 'ops', PolicyArn: ADMIN_POLICY });
    await rejects(iam.attachUserPolicy({ UserName: 'ops', PolicyArn: DRILL_POLICY }), 'MalformedPolicyDocumentException', /Separation of duties.*ops/);
    await iam.attachUserPolicy({ UserName: 'ops', PolicyArn: WRITER_POLICY });
  });
  it('RecordBackupVerification is authorized per record: with a Location on that record\'s keys; without (older clients) on the keys of every record of the message id', async () => {
    await user('verifierA', [], policy({ Effect: 'Allow', Action: 'kms:RecordBackupVerification', Resource: keyA }));
    const root: ClientSettings = { endpoint: server.url, region: 'us-east-1', credentials: server.credentials, caBundle: server.caFile! };
    const MessageId = randomBytes(32).toString('hex');
    const reg = (Location: string, KeyArn: string) => callKeyhold(root, 'RegisterBackup', { MessageId, Location, SizeBytes: 100, Suite: '0x0478 test', WrappingKeys: [{ KeyArn, KeyVersion: 1 }] });
    // One backup and its copy: the same message id at two locations, under different keys.
    await reg('/backups/east/x.kh', keyA);
    await reg('/backups/west/x.kh', keyB);
    const rowsOf = async () => (JSON.parse((await cliAs('root', ['backup', 'list', '--json'])).stdout) as { MessageId: string; Location: string; LastVerifiedBy?: string }[]).filter((b) => b.MessageId === MessageId);
    assert.equal((await rowsOf()).length, 2);
    const ok = await callKeyhold<{ Locations: string[] }>(settingsOf('verifierA'), 'RecordBackupVerification', { MessageId, Location: '/backups/east/x.kh', Ok: true });
    assert.deepEqual(ok.Locations, ['/backups/east/x.kh']);
    await rejects(callKeyhold(settingsOf('verifierA'), 'RecordBackupVerification', { MessageId, Location: '/backups/west/x.kh', Ok: true }), 'AccessDeniedException', new RegExp(`kms:RecordBackupVerification on resource: ${keyB}`));
    // Without a Location both records are affected, so both keys must allow it: denied, nothing changed.
    await rejects(callKeyhold(settingsOf('verifierA'), 'RecordBackupVerification', { MessageId, Ok: false }), 'AccessDeniedException', new RegExp(`kms:RecordBackupVerification on resource: ${keyB}`));
    const verifier = `arn:aws:iam::${acct}:user/verifierA`;
    assert.deepEqual((await rowsOf()).map((b) => [b.Location, b.LastVerifiedBy]).sort(), [['/backups/east/x.kh', verifier], ['/backups/west/x.kh', undefined]]);
  });
});
