/**
 * `keyhold backup scan`: a tree of backups with a planted plaintext dump (under a name that looks
 * encrypted), archives in several formats, an unregistered backup, backups under a disabled key
 * and a key without rotation: each is flagged by content, and the exit status says "at risk".
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { sniff } from '../../src/cli/backup/scan.js';

interface Finding { path: string; kind: string; problems: string[]; registered?: boolean }

describe('keyhold backup scan', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let root: string;
  let good: string;
  let keyOk: string;
  let keyOff: string;
  let keyNoRotation: string;
  const cli = (args: string[]) => runCli(args, env);
  const enc = async (key: string, out: string, extra: string[] = []) => {
    const plain = join(tempDir(), 'p.sql');
    writeFileSync(plain, `-- PostgreSQL database dump\nCREATE TABLE t (id int);\n${randomBytes(1000).toString('hex')}\n`);
    const r = await cli(['backup', 'encrypt', '--key', key, plain, '-o', out, ...extra]);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    server = await startServer();
    env = cliEnv(server);
    keyOk = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    keyOff = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    keyNoRotation = (await server.kms().createKey({ Tags: [{ TagKey: 'KeyholdRotation', TagValue: 'disabled' }] })).KeyMetadata!.Arn!;
    root = tempDir('keyhold-scan-');
    good = join(root, 'good');
    mkdirSync(join(good, 'nightly'), { recursive: true });
    await enc(keyOk, join(good, 'nightly', 'orders.dump.kh'));
    await enc(keyOk, join(good, 'users.kh'));
    const mixed = join(root, 'mixed');
    mkdirSync(join(mixed, 'snapshots'), { recursive: true });
    mkdirSync(join(mixed, 'replica'), { recursive: true });
    await enc(keyOk, join(mixed, 'ok.kh'));
    await enc(keyOk, join(mixed, 'replica', 'unregistered.kh'), ['--no-register']);
    await enc(keyOff, join(mixed, 'disabled-key.kh'));
    await enc(keyNoRotation, join(mixed, 'no-rotation.kh'));
    await server.kms().disableKey({ KeyId: keyOff });
    // The planted plaintext dump, named like an encrypted file.
    writeFileSync(join(mixed, 'snapshots', 'orders-2026-12-01.sql.enc'), '--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nCREATE TABLE public.orders (id integer NOT NULL);\nCOPY public.orders (id) FROM stdin;\n1\n\\.\n');
    writeFileSync(join(mixed, 'snapshots', 'custom.bin'), Buffer.concat([Buffer.from('PGDMP\x01\x0e\x00\x04\x08\x01\x01', 'latin1'), randomBytes(500)]));
    writeFileSync(join(mixed, 'snapshots', 'archive.dat'), gzipSync(Buffer.from('INSERT INTO t VALUES (1);\n'.repeat(100))));
    execFileSync('tar', ['-cf', join(mixed, 'snapshots', 'files.backup'), '-C', join(mixed, 'snapshots'), 'custom.bin']);
    execFileSync('python3', ['-c', `import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w'); z.writestr('a.sql','CREATE TABLE a (x int);'); z.close()`, join(mixed, 'snapshots', 'copy.blob')]);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('recognizes formats by content', () => {
    assert.equal(sniff(Buffer.from('CREATE TABLE x (id int);\n')), 'sql-text');
    assert.equal(sniff(Buffer.from('PGDMP\x01\x0e', 'latin1')), 'pg-dump-custom');
    assert.equal(sniff(gzipSync(Buffer.from('x'))), 'gzip');
    assert.equal(sniff(Buffer.from('hello world, just notes\n')), 'text');
    assert.equal(sniff(Buffer.from('age-encryption.org/v1\n-> X25519 abc\n')), 'age');
  });

  it('a clean tree of registered backups under healthy keys passes (exit 0)', async () => {
    const r = await cli(['backup', 'scan', '--json', good]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { files: number; atRisk: number; findings: Finding[] };
    assert.equal(report.files, 2);
    assert.equal(report.atRisk, 0);
    assert.ok(report.findings.every((f) => f.kind === 'keyhold-backup' && f.registered === true));
  });

  it('flags the planted plaintext dump, archives, an unregistered backup, a disabled key and a key without rotation', async () => {
    const r = await cli(['backup', 'scan', '--json', join(root, 'mixed')]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { files: number; atRisk: number; findings: Finding[] };
    const by = (suffix: string) => report.findings.find((f) => f.path.endsWith(suffix))!;
    assert.equal(by('orders-2026-12-01.sql.enc').kind, 'sql-text');
    assert.match(by('orders-2026-12-01.sql.enc').problems.join(), /NOT ENCRYPTED: sql-text/);
    assert.equal(by('custom.bin').kind, 'pg-dump-custom');
    assert.equal(by('archive.dat').kind, 'gzip');
    assert.equal(by('files.backup').kind, 'tar');
    assert.equal(by('copy.blob').kind, 'zip');
    assert.deepEqual(by('ok.kh').problems, []);
    assert.deepEqual(by('unregistered.kh').problems, ['not in the backup registry']);
    assert.deepEqual(by('disabled-key.kh').problems, [`key disabled: ${keyOff}`]);
    assert.deepEqual(by('no-rotation.kh').problems, [`key without rotation: ${keyNoRotation}`]);
    assert.equal(report.files, 9);
    assert.equal(report.atRisk, 8);
    const text = await cli(['backup', 'scan', join(root, 'mixed')]);
    assert.equal(text.code, 3);
    assert.match(text.stdout, /AT RISK .*orders-2026-12-01\.sql\.enc/);
    assert.match(text.stdout, /scan: 9 files, 8 at risk/);
  });

  it('reports registered backups inside DIR whose file was moved, deleted or replaced (exit 3, in --json)', async () => {
    const dir = join(root, 'lineage');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    const loc = (n: string) => join(dir, n);
    for (const n of ['kept.kh', 'moved.kh', 'deleted.kh', 'overwritten.kh', 'plain.kh']) await enc(keyOk, loc(n));
    const before = await cli(['backup', 'scan', '--json', dir]);
    assert.equal(before.code, 0, before.stdout + before.stderr);
    const ids = new Map((JSON.parse(before.stdout) as { findings: (Finding & { messageId: string })[] }).findings.map((f) => [f.path, f.messageId]));
    renameSync(loc('moved.kh'), loc('sub/moved.kh'));
    rmSync(loc('deleted.kh'));
    await enc(keyOk, loc('overwritten.kh')); // a new backup (and registration) at the same path
    writeFileSync(loc('plain.kh'), 'CREATE TABLE t (id int);\n');
    const r = await cli(['backup', 'scan', '--json', dir]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    interface Gone { messageId: string; location: string; risk: string; holds?: string; foundAt?: string[]; problems: string[] }
    const report = JSON.parse(r.stdout) as { registeredMissing: number; registeredReplaced: number; registry: Gone[]; findings: Finding[] };
    const gone = (n: string) => report.registry.find((g) => g.location === loc(n));
    assert.equal(gone('kept.kh'), undefined);
    assert.deepEqual({ ...gone('moved.kh'), problems: undefined }, { messageId: ids.get(loc('moved.kh')), location: loc('moved.kh'), risk: 'missing', foundAt: [loc('sub/moved.kh')], problems: undefined });
    assert.equal(gone('deleted.kh')?.risk, 'missing');
    assert.equal(gone('deleted.kh')?.foundAt, undefined);
    assert.equal(gone('overwritten.kh')?.risk, 'replaced');
    assert.equal(gone('overwritten.kh')?.messageId, ids.get(loc('overwritten.kh')));
    assert.match(gone('overwritten.kh')!.holds!, /^[0-9a-f]{64}$/);
    assert.notEqual(gone('overwritten.kh')!.holds, ids.get(loc('overwritten.kh')));
    assert.deepEqual({ risk: gone('plain.kh')?.risk, holds: gone('plain.kh')?.holds }, { risk: 'replaced', holds: 'sql-text' });
    assert.equal(report.registry.length, 4);
    assert.equal(report.registeredMissing, 2);
    assert.equal(report.registeredReplaced, 2);
    // Records elsewhere (other trees of this test) are not reported for this DIR.
    assert.ok(report.registry.every((g) => g.location.startsWith(dir + '/')));
    const text = await cli(['backup', 'scan', join(dir, 'sub')]);
    assert.equal(text.code, 3, text.stdout);
    assert.doesNotMatch(text.stdout, /MISSING|REPLACED/);
    const all = await cli(['backup', 'scan', dir]);
    assert.match(all.stdout, new RegExp(`MISSING  ${loc('deleted.kh')}`));
    assert.match(all.stdout, new RegExp(`moved to ${loc('sub/moved.kh')}\\? \\(keyhold backup relocate ${loc('moved.kh')} ${loc('sub/moved.kh')}\\)`));
    assert.match(all.stdout, /registered backups: 2 missing, 2 replaced/);
    assert.ok(all.stdout.includes(`(keyhold backup forget ${loc('plain.kh')} --message-id ${ids.get(loc('plain.kh'))})`), all.stdout);
  });

  it('a key scheduled for deletion, or gone from the server, is flagged', async () => {
    await server.kms().scheduleKeyDeletion({ KeyId: keyOk, PendingWindowInDays: 7 });
    const r = await cli(['backup', 'scan', '--json', good]);
    assert.equal(r.code, 3);
    const report = JSON.parse(r.stdout) as { findings: Finding[] };
    assert.ok(report.findings.every((f) => f.problems.includes(`key pending deletion: ${keyOk}`)));
    // Another server (another Keyhold) knows none of these keys.
    const other = await startServer();
    try {
      const r2 = await runCli(['backup', 'scan', '--json', '--no-registry', good], cliEnv(other));
      assert.equal(r2.code, 3, r2.stderr);
      const rep2 = JSON.parse(r2.stdout) as { findings: Finding[] };
      assert.ok(rep2.findings.every((f) => f.problems.some((p) => p.startsWith(`key unknown: ${keyOk}`))), r2.stdout);
    } finally {
      await other.stop();
      other.cleanup();
    }
  });
});
