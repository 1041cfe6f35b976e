/**
 * `keyhold backup` lineage: backups written by the CLI are registered with the server
 * (KeyholdService.RegisterBackup); ListBackups / `backup list` answer which backups depend on a key
 * or a version and which would become undecryptable without a key; DisableKey and
 * ScheduleKeyDeletion carry that in their audit event; `keys report` flags the key; drills record
 * when each backup was last proven decryptable.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { readAuditEvents } from '../helpers/audit.js';
import { callKeyhold } from '../../src/cli/keyhold-client.js';

interface Listed {
  MessageId: string;
  Location: string;
  Decryptable: boolean;
  WrappingKeys: { KeyArn: string; KeyVersion?: number; KeyState: string; Usable: boolean }[];
  LastVerifiedDate?: string;
  LastVerifyOk?: boolean;
  LastVerifyMessage?: string;
}

describe('keyhold backup: registry, dependencies, drills', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  let keyA: string;
  let keyB: string;
  let keyC: string;
  const files: Record<string, string> = {};

  const cli = (args: string[]) => runCli(args, env);
  async function list(args: string[] = []): Promise<Listed[]> {
    const r = await cli(['backup', 'list', '--json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Listed[];
  }
  const names = (rows: Listed[]) => rows.map((b) => Object.entries(files).find(([, p]) => p === b.Location)?.[0] ?? b.Location).sort();

  before(async () => {
    server = await startServer();
    dir = tempDir('keyhold-backup-reg-');
    env = cliEnv(server);
    keyA = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    keyB = (await server.kms({ region: 'us-west-2' }).createKey({})).KeyMetadata!.Arn!;
    keyC = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    const enc = async (name: string, keys: string[]) => {
      const plain = join(dir, `${name}.sql`);
      writeFileSync(plain, randomBytes(20_000));
      files[name] = resolve(dir, `${name}.kh`);
      const r = await cli(['backup', 'encrypt', ...keys.flatMap((k) => ['--key', k]), '--context', `name=${name}`, plain, '-o', files[name]!]);
      assert.equal(r.code, 0, r.stderr);
    };
    await enc('onlyA', [keyA]);
    await enc('AandB', [keyA, keyB]);
    await enc('onlyC', [keyC]);
    await server.kms().rotateKeyOnDemand({ KeyId: keyA });
    await enc('onlyA-v2', [keyA]);
    // Not registered: written to stdout.
    const r = await cli(['backup', 'encrypt', '--key', keyA, '--no-register', join(dir, 'onlyA.sql'), '-o', join(dir, 'unregistered.kh')]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('every backup the CLI wrote to a file is registered with its location, keys and versions', async () => {
    const rows = await list();
    assert.deepEqual(names(rows), ['AandB', 'onlyA', 'onlyA-v2', 'onlyC']);
    const ab = rows.find((b) => b.Location === files.AandB)!;
    assert.deepEqual(ab.WrappingKeys.map((k) => [k.KeyArn, k.KeyVersion, k.KeyState, k.Usable]), [[keyA, 1, 'Enabled', true], [keyB, 1, 'Enabled', true]]);
    const inspect = JSON.parse((await cli(['backup', 'inspect', '--json', files.AandB!])).stdout);
    assert.equal(ab.MessageId, inspect.messageId);
    assert.ok(rows.every((b) => b.Decryptable && b.LastVerifiedDate === undefined));
  });

  it('answers which backups depend on a key, and on one version of it', async () => {
    assert.deepEqual(names(await list(['--key', keyA])), ['AandB', 'onlyA', 'onlyA-v2']);
    assert.deepEqual(names(await list(['--key', keyA, '--key-version', '1'])), ['AandB', 'onlyA']);
    assert.deepEqual(names(await list(['--key', keyA, '--key-version', '2'])), ['onlyA-v2']);
    assert.deepEqual(names(await list(['--key', keyC])), ['onlyC']);
  });

  it('answers what would become undecryptable without a key (a second usable key saves a backup)', async () => {
    assert.deepEqual(names(await list(['--at-risk-without', keyA])), ['onlyA', 'onlyA-v2']);
    assert.deepEqual(names(await list(['--at-risk-without', keyC])), ['onlyC']);
  });

  it('keys report flags a key that is the only way into registered backups', async () => {
    const r = await cli(['keys', 'report', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { keyId: string; flags: string[]; backups?: { dependent: number; undecryptableWithout: number } }[];
    const a = rows.find((x) => keyA.endsWith(x.keyId))!;
    assert.deepEqual(a.backups, { dependent: 3, undecryptableWithout: 2 });
    assert.ok(a.flags.includes('sole-key-of-backups'));
    const text = await cli(['keys', 'report']);
    assert.match(text.stdout, /2 sole-key-of-backups/);
  });

  it('DisableKey and ScheduleKeyDeletion record the dependent and stranded backups in their audit event', async () => {
    await server.kms().disableKey({ KeyId: keyA });
    await server.kms().scheduleKeyDeletion({ KeyId: keyC, PendingWindowInDays: 7 });
    const events = readAuditEvents(server.dataDir);
    const disable = events.filter((e) => e.eventName === 'DisableKey').at(-1)!;
    assert.equal(disable.details?.dependentBackups, 3);
    assert.equal(disable.details?.backupsMadeUndecryptable, 2);
    const stranded = (disable.details?.undecryptableBackups as { location: string }[]).map((b) => b.location).sort();
    assert.deepEqual(stranded, [files.onlyA, files['onlyA-v2']].sort());
    const del = events.filter((e) => e.eventName === 'ScheduleKeyDeletion').at(-1)!;
    assert.equal(del.details?.dependentBackups, 1);
    assert.equal(del.details?.backupsMadeUndecryptable, 1);
    const rows = await list();
    const dec = Object.fromEntries(rows.map((b) => [names([b])[0], b.Decryptable]));
    assert.deepEqual(dec, { onlyA: false, AandB: true, onlyC: false, 'onlyA-v2': false });
    assert.equal(rows.find((b) => b.Location === files.onlyC)!.WrappingKeys[0]!.KeyState, 'PendingDeletion');
    // A key no backup depends on is not flagged.
    const free = (await server.kms().createKey({})).KeyMetadata!.KeyId!;
    await server.kms().disableKey({ KeyId: free });
    const last = readAuditEvents(server.dataDir).filter((e) => e.eventName === 'DisableKey').at(-1)!;
    assert.equal(last.details?.dependentBackups, undefined);
    await server.kms().enableKey({ KeyId: keyA });
    await server.kms().cancelKeyDeletion({ KeyId: keyC });
    await server.kms().enableKey({ KeyId: keyC });
  });

  it('a drill proves each backup decryptable and records it; a damaged one is recorded as failed', async () => {
    const ok = await cli(['backup', 'drill', '--json']);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.equal(JSON.parse(ok.stdout).checked, 4);
    let rows = await list();
    assert.ok(rows.every((b) => b.LastVerifyOk === true && b.LastVerifiedDate), JSON.stringify(rows));
    // Damage one frame of one backup.
    const bytes = readFileSync(files.onlyC!);
    bytes[bytes.length - 30]! ^= 1;
    writeFileSync(files.onlyC!, bytes);
    const bad = await cli(['backup', 'drill', '--sample', '4']);
    assert.equal(bad.code, 3, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /FAILED .*onlyC\.kh.*fails authentication/);
    rows = await list();
    const c = rows.find((b) => b.Location === files.onlyC)!;
    assert.equal(c.LastVerifyOk, false);
    assert.match(c.LastVerifyMessage!, /fails authentication/);
    assert.ok(rows.filter((b) => b !== c).every((b) => b.LastVerifyOk === true));
  });

  it('copy to another region re-wraps for the destination key, verifies there, and the copy decrypts with the source key disabled', async () => {
    const dest = resolve(dir, 'copy-west.kh');
    const r = await cli(['backup', 'copy', files.onlyA!, '-o', dest, '--to-region', 'us-west-2', '--to-key', keyB, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.verifiedWith, keyB);
    assert.deepEqual(report.wrappingKeys.map((k: { keyArn: string }) => k.keyArn), [keyB]);
    // Same body, new header.
    const a = readFileSync(files.onlyA!);
    const b = readFileSync(dest);
    const ha = JSON.parse((await cli(['backup', 'inspect', '--json', files.onlyA!])).stdout);
    const hb = JSON.parse((await cli(['backup', 'inspect', '--json', dest])).stdout);
    assert.equal(ha.messageId, hb.messageId);
    assert.ok(a.subarray(ha.headerBytes).equals(b.subarray(hb.headerBytes)));
    await server.kms().disableKey({ KeyId: keyA });
    try {
      const out = resolve(dir, 'copy-west.out');
      const d = await runCli(['backup', 'decrypt', dest, '-o', out], { ...env, AWS_REGION: 'us-west-2' });
      assert.equal(d.code, 0, d.stderr);
      const src = await runCli(['backup', 'decrypt', files.onlyA!, '-o', resolve(dir, 'src.out')], env);
      assert.notEqual(src.code, 0, 'the source copy needs the disabled key');
      assert.ok(readFileSync(out).equals(readFileSync(join(dir, 'onlyA.sql'))));
    } finally {
      await server.kms().enableKey({ KeyId: keyA });
    }
    // The copy is registered as a second backup (same message id, its own location and keys); the
    // source's record is kept as it was: it still lives at its location and depends on keyA.
    files.copyWest = dest;
    const rows = await list();
    const src = rows.find((x) => x.Location === files.onlyA)!;
    const copy = rows.find((x) => x.Location === dest)!;
    assert.equal(copy.MessageId, src.MessageId);
    assert.deepEqual(copy.WrappingKeys.map((k) => k.KeyArn), [keyB]);
    assert.equal(copy.LastVerifyOk, true);
    assert.deepEqual(src.WrappingKeys.map((k) => k.KeyArn), [keyA]);
    assert.deepEqual(names(rows), ['AandB', 'copyWest', 'onlyA', 'onlyA-v2', 'onlyC']);
    // "What becomes undecryptable without the source-region key" still names the source file.
    assert.deepEqual(names(await list(['--at-risk-without', keyA])), ['onlyA', 'onlyA-v2']);
    assert.deepEqual(names(await list(['--key', keyB])), ['AandB', 'copyWest']);
    assert.deepEqual(names(await list(['--at-risk-without', keyB])), ['copyWest']);
    // A scan of the tree finds both files registered, each at its own location.
    const scan = await cli(['backup', 'scan', '--json', dir]);
    const findings = (JSON.parse(scan.stdout) as { findings: { path: string; registered?: boolean; problems: string[] }[] }).findings;
    for (const f of [files.onlyA!, dest]) assert.equal(findings.find((x) => x.path === f)?.registered, true, f);
    // keys report (keyA's region) and the DisableKey audit count the source and the copy as two backups.
    const keysReport = JSON.parse((await cli(['keys', 'report', '--json'])).stdout) as { keyId: string; backups?: { dependent: number; undecryptableWithout: number } }[];
    assert.deepEqual(keysReport.find((x) => keyA.endsWith(x.keyId))!.backups, { dependent: 3, undecryptableWithout: 2 });
    await server.kms({ region: 'us-west-2' }).disableKey({ KeyId: keyB });
    await server.kms({ region: 'us-west-2' }).enableKey({ KeyId: keyB });
    const disable = readAuditEvents(server.dataDir).filter((e) => e.eventName === 'DisableKey').at(-1)!;
    assert.equal(disable.details?.dependentBackups, 2);
    assert.deepEqual((disable.details?.undecryptableBackups as { location: string }[]).map((b) => b.location), [dest]);
  });

  it('a copy of a file whose message id is registered elsewhere is flagged by scan at its own location', async () => {
    const stray = resolve(dir, 'stray', 'onlyA-cp.kh');
    mkdirSync(dirname(stray), { recursive: true });
    copyFileSync(files.onlyA!, stray);
    const scan = await cli(['backup', 'scan', '--json', dirname(stray)]);
    assert.equal(scan.code, 3, scan.stdout + scan.stderr);
    const f = (JSON.parse(scan.stdout) as { findings: { path: string; registered?: boolean; problems: string[] }[] }).findings[0]!;
    assert.equal(f.registered, false);
    assert.equal(f.problems.length, 1, JSON.stringify(f.problems));
    assert.match(f.problems[0]!, /^not in the backup registry at this location \(its message is registered at /);
    for (const p of [files.onlyA!, files.copyWest!]) assert.ok(f.problems[0]!.includes(p), f.problems[0]);
  });

  it('a drill records each result on the record it verified: a damaged copy does not mark its source failed', async () => {
    const bytes = readFileSync(files.copyWest!);
    bytes[bytes.length - 30]! ^= 1;
    writeFileSync(files.copyWest!, bytes);
    const r = await cli(['backup', 'drill', '--json']);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const rows = await list();
    const src = rows.find((x) => x.Location === files.onlyA)!;
    const copy = rows.find((x) => x.Location === files.copyWest)!;
    assert.equal(copy.LastVerifyOk, false);
    assert.match(copy.LastVerifyMessage!, /fails authentication/);
    assert.equal(src.LastVerifyOk, true, JSON.stringify(src));
    assert.equal(src.LastVerifyMessage, undefined);
    // An older client (no Location) records on every record of the message id.
    const settings = { endpoint: server.url, region: 'us-east-1', credentials: server.credentials, caBundle: server.caFile! };
    const old = await callKeyhold<{ Locations: string[] }>(settings, 'RecordBackupVerification', { MessageId: src.MessageId, Ok: false, Message: 'old client' });
    assert.deepEqual(old.Locations.sort(), [files.onlyA!, files.copyWest!].sort());
    const after = (await list()).filter((x) => x.MessageId === src.MessageId);
    assert.deepEqual(after.map((x) => [x.LastVerifyOk, x.LastVerifyMessage]), [[false, 'old client'], [false, 'old client']]);
    // With a Location that is not registered: NotFoundException, nothing changed.
    await assert.rejects(callKeyhold(settings, 'RecordBackupVerification', { MessageId: src.MessageId, Location: '/nowhere.kh', Ok: true }), /NotFoundException|not registered/);
    const one = await callKeyhold<{ Locations: string[] }>(settings, 'RecordBackupVerification', { MessageId: src.MessageId, Location: files.onlyA!, Ok: true });
    assert.deepEqual(one.Locations, [files.onlyA!]);
    const final = await list();
    assert.equal(final.find((x) => x.Location === files.onlyA)!.LastVerifyOk, true);
    assert.equal(final.find((x) => x.Location === files.copyWest)!.LastVerifyOk, false);
  });

  it('backup register records an existing replica where it is (--verify proves it first); a non-message is refused', async () => {
    const replica = resolve(dir, 'replicas', 'onlyA-rsync.kh');
    mkdirSync(dirname(replica), { recursive: true });
    copyFileSync(files.onlyA!, replica);
    const junk = resolve(dir, 'junk', 'notes.txt');
    mkdirSync(dirname(junk), { recursive: true });
    writeFileSync(junk, 'not a backup\n');
    const before = await cli(['backup', 'scan', '--json', dirname(replica)]);
    assert.equal(before.code, 3, before.stdout + before.stderr);
    const r = await cli(['backup', 'register', '--verify', '--json', replica, junk]);
    assert.equal(r.code, 3, r.stdout + r.stderr); // the junk file
    const out = JSON.parse(r.stdout) as { registered: number; results: { location: string; ok: boolean; verified?: boolean; error?: string }[] };
    assert.equal(out.registered, 1);
    assert.deepEqual(out.results.map((x) => [x.location, x.ok]), [[replica, true], [junk, false]]);
    const rec = (await list()).find((x) => x.Location === replica);
    assert.ok(rec, 'the replica is registered at its own location');
    assert.equal(rec.LastVerifyOk, true);
    assert.equal((await list()).some((x) => x.Location === junk), false);
    const after = await cli(['backup', 'scan', '--json', dirname(replica)]);
    const f = (JSON.parse(after.stdout) as { findings: { path: string; registered?: boolean; problems: string[] }[] }).findings[0]!;
    assert.equal(f.registered, true, JSON.stringify(f));
    assert.deepEqual(f.problems, []);
    // A damaged replica is not registered with --verify.
    const bad = resolve(dir, 'junk', 'onlyA-bad.kh');
    const bytes = readFileSync(files.onlyA!);
    bytes[bytes.length - 30]! ^= 1;
    writeFileSync(bad, bytes);
    const b = await cli(['backup', 'register', '--verify', bad]);
    assert.equal(b.code, 3, b.stdout + b.stderr);
    assert.match(b.stderr, /fails authentication.*not registered/);
    assert.equal((await list()).some((x) => x.Location === bad), false);
  });
});
