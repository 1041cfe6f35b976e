/**
 * Backups that were moved or deleted: `keyhold backup relocate OLD NEW` (KeyholdService.RelocateBackup)
 * moves a record with its verification history; `keyhold backup forget LOCATION`
 * (KeyholdService.DeregisterBackup) removes records. Both through the real server and the CLI, with
 * their refusals (unknown record, wrong message id, a copy taken for a move, a live file, access
 * denied without kms:RelocateBackup / kms:DeregisterBackup), and both audited.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IAM } from '@aws-sdk/client-iam';
import { readAuditEvents } from '../helpers/audit.js';
import { createUserWithKey, iamClient } from '../helpers/iam.js';
import { cliEnv, runCli, startServer, tempDir, type Credentials, type TestServer } from '../helpers/server.js';

const ACCT = '111122223333';

interface Row { MessageId: string; Location: string; RegisteredDate: string; LastVerifiedDate?: string; LastVerifiedBy?: string; LastVerifyOk?: boolean }

describe('keyhold backup relocate and forget', () => {
  let server: TestServer;
  let iam: IAM;
  let dir: string;
  let key: string;
  let plain: string;
  const creds: Record<string, Credentials> = {};
  const cliAs = (who: string, args: string[]) => runCli(args, cliEnv(server, who === 'root' ? server.credentials : creds[who]!));
  const cli = (args: string[]) => cliAs('root', args);
  const rows = async () => JSON.parse((await cli(['backup', 'list', '--json'])).stdout) as Row[];
  const at = async (loc: string) => (await rows()).filter((r) => r.Location === loc);
  const p = (n: string) => join(dir, n);
  const idOf = async (file: string) => (JSON.parse((await cli(['backup', 'inspect', '--json', file])).stdout) as { messageId: string }).messageId;
  const enc = async (out: string) => {
    const r = await cli(['backup', 'encrypt', '--key', key, plain, '-o', out]);
    assert.equal(r.code, 0, r.stderr);
  };


  before(async () => {
    server = await startServer({ accountId: ACCT });
    iam = iamClient(server);
    dir = tempDir('keyhold-lineage-');
    mkdirSync(p('moved'));
    plain = p('dump.sql');
    writeFileSync(plain, randomBytes(20_000));
    key = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    for (const [name, policyName] of [['keyuser', 'KeyholdKeyUser'], ['writer', 'KeyholdBackupWriter'], ['driller', 'KeyholdBackupRestoreDrill']] as const) {
      creds[name] = await createUserWithKey(iam, name, [`arn:aws:iam::aws:policy/${policyName}`]);
    }
    for (const n of ['a.kh', 'b.kh', 'c.kh']) await enc(p(n));
    const d = await cli(['backup', 'drill', '--json']);
    assert.equal(d.code, 0, d.stdout + d.stderr);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('relocate moves the record of a moved file, with its registration and verification history; a principal without kms:RelocateBackup is denied', async () => {
    const [before] = await at(p('a.kh'));
    assert.ok(before?.LastVerifiedDate, 'drilled');
    renameSync(p('a.kh'), p('moved/a.kh'));
    const denied = await cliAs('driller', ['backup', 'relocate', p('a.kh'), p('moved/a.kh')]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, new RegExp(`AccessDeniedException: User: arn:aws:iam::${ACCT}:user/driller is not authorized to perform: kms:RelocateBackup on resource: ${key}`));
    assert.equal((await at(p('a.kh'))).length, 1, 'nothing moved');
    const r = await cliAs('writer', ['backup', 'relocate', '--json', p('a.kh'), p('moved/a.kh')]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { messageId: before.MessageId, location: p('moved/a.kh'), previousLocation: p('a.kh') });
    assert.deepEqual(await at(p('a.kh')), []);
    const [after] = await at(p('moved/a.kh'));
    assert.deepEqual({ ...after, Location: undefined }, { ...before, Location: undefined });
    // The tree scans clean again: nothing missing, nothing unregistered.
    const scan = await cli(['backup', 'scan', '--json', dir]);
    const report = JSON.parse(scan.stdout) as { registry: unknown[]; findings: { path: string; problems: string[] }[] };
    assert.deepEqual(report.registry, []);
    assert.deepEqual(report.findings.filter((f) => f.path.endsWith('.kh')).flatMap((f) => f.problems), []);
  });

  it('relocate refuses an unknown record, a record of another message, a copy, an already registered destination and a NEW that is not a message', async () => {
    const aId = await idOf(p('moved/a.kh'));
    const unknown = await cli(['backup', 'relocate', p('nowhere.kh'), p('moved/a.kh')]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, new RegExp(`NotFoundException: Backup ${aId} at ${p('nowhere.kh')} is not registered`));
    // b.kh's record is of another message than the file at NEW.
    rmSync(p('b.kh'));
    const wrong = await cli(['backup', 'relocate', p('b.kh'), p('moved/a.kh')]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /NotFoundException: .*the record at .*b\.kh must be of that message/);
    assert.equal((await at(p('moved/a.kh')))[0]?.MessageId, aId, 'a.kh record untouched');
    // A copy (the file is still at OLD) is not a move.
    copyFileSync(p('moved/a.kh'), p('copy.kh'));
    const copy = await cli(['backup', 'relocate', p('moved/a.kh'), p('copy.kh')]);
    assert.equal(copy.code, 1);
    assert.match(copy.stderr, /still holds message .* is a copy; register it/);
    // The message is already registered at NEW.
    assert.equal((await cli(['backup', 'register', p('copy.kh')])).code, 0);
    const moved = p('moved/a.kh');
    renameSync(moved, p('moved/a.kh.bak'));
    const exists = await cli(['backup', 'relocate', moved, p('copy.kh')]);
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /AlreadyExistsException: Backup .* is already registered at .*copy\.kh/);
    assert.equal((await rows()).filter((r) => r.MessageId === aId).length, 2, 'both records still there');
    renameSync(p('moved/a.kh.bak'), moved);
    writeFileSync(p('plain.txt'), 'CREATE TABLE t (id int);\n');
    const notMessage = await cli(['backup', 'relocate', p('c.kh'), p('plain.txt')]);
    assert.equal(notMessage.code, 3, notMessage.stderr);
    const gone = await cli(['backup', 'relocate', p('c.kh'), p('absent.kh')]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /absent\.kh does not exist/);
  });

  it('forget removes the records of deleted files; a live file needs --message-id; unknown and wrong ids are refused; without kms:DeregisterBackup, denied', async () => {
    const bId = (await at(p('b.kh')))[0]!.MessageId;
    // The writer may register and relocate, but not make the registry forget.
    const denied = await cliAs('writer', ['backup', 'forget', p('b.kh')]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, new RegExp(`AccessDeniedException: User: arn:aws:iam::${ACCT}:user/writer is not authorized to perform: kms:DeregisterBackup on resource: ${key}`));
    assert.equal((await at(p('b.kh'))).length, 1);
    const wrongId = await cliAs('keyuser', ['backup', 'forget', p('b.kh'), '--message-id', 'ab'.repeat(32)]);
    assert.equal(wrongId.code, 1);
    assert.match(wrongId.stderr, new RegExp(`NotFoundException: Backup ${'ab'.repeat(32)} at ${p('b.kh')} is not registered`));
    const r = await cliAs('keyuser', ['backup', 'forget', '--json', p('b.kh'), p('never.kh')]);
    assert.equal(r.code, 1, 'never.kh was not registered');
    const out = JSON.parse(r.stdout) as { forgotten: number; results: { location: string; forgotten: { messageId: string }[]; error?: string }[] };
    assert.equal(out.forgotten, 1);
    assert.deepEqual(out.results[0]!.forgotten.map((f) => f.messageId), [bId]);
    assert.match(out.results[1]!.error!, /NotFoundException: No backup is registered at .*never\.kh/);
    assert.deepEqual(await at(p('b.kh')), []);
    const again = await cliAs('keyuser', ['backup', 'forget', p('b.kh')]);
    assert.equal(again.code, 1);
    // c.kh still holds its message: forgetting it needs the id.
    const cId = await idOf(p('c.kh'));
    const live = await cli(['backup', 'forget', p('c.kh')]);
    assert.equal(live.code, 1);
    assert.match(live.stderr, new RegExp(`still holds message ${cId}: give --message-id`));
    assert.equal((await at(p('c.kh'))).length, 1);
    const ok = await cli(['backup', 'forget', p('c.kh'), '--message-id', cId]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /forgot .*c\.kh/);
    assert.deepEqual(await at(p('c.kh')), []);
  });

  it('every call is audited, allowed and denied, with the message id and locations', () => {
    const events = readAuditEvents(server.dataDir);
    const of = (name: string) => events.filter((e) => e.eventName === name);
    const relocated = of('RelocateBackup').filter((e) => !e.errorCode);
    assert.equal(relocated.length, 1);
    assert.equal(relocated[0]!.details?.location, p('a.kh'));
    assert.equal(relocated[0]!.details?.newLocation, p('moved/a.kh'));
    assert.deepEqual(relocated[0]!.resources.map((r) => r.arn), [key]);
    assert.ok(of('RelocateBackup').some((e) => e.errorCode === 'AccessDeniedException' && e.principal?.arn.endsWith('user/driller')));
    assert.ok(of('RelocateBackup').some((e) => e.errorCode === 'AlreadyExistsException'));
    const forgotten = of('DeregisterBackup').filter((e) => !e.errorCode);
    assert.equal(forgotten.length, 2);
    assert.ok(forgotten.every((e) => e.decision?.effect === 'Allow' && e.resources[0]?.arn === key));
    assert.ok(of('DeregisterBackup').some((e) => e.errorCode === 'AccessDeniedException' && e.principal?.arn.endsWith('user/writer')));
    assert.ok(of('DeregisterBackup').some((e) => e.errorCode === 'NotFoundException'));
  });
});
