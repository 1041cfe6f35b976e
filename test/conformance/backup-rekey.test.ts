/**
 * Re-key of registered backups (`keyhold backup rewrap --all --from-key K`): after a rotation every
 * registered backup under an old version of K is rewrapped in place and re-registered; a missing
 * file is listed with its reason while the rest go on (exit 1); the state file lets the next run
 * resume and skip what is done; a run killed part-way resumes; afterwards nothing registered
 * depends on the old version, which can then be retired, and every backup still decrypts.
 * With --to-key the backups move off K altogether (offboarding), keeping their other keys.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KEYHOLD_BIN, REPO_ROOT, cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';

interface Listed {
  MessageId: string;
  Location: string;
  WrappingKeys: { KeyArn: string; KeyVersion?: number; KeyState: string }[];
}

interface Summary {
  fromKey: string;
  targetVersion?: number;
  stateFile: string;
  resumed: boolean;
  candidates: number;
  rewrapped: number;
  registeredOnly: number;
  doneInEarlierRuns: number;
  failed: { messageId: string; location: string; reason: string }[];
  stillDependent: { location: string }[];
  retirable: boolean;
  nextStep?: string;
}

describe('keyhold backup rewrap --all: re-key registered backups', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  let keyK: string;
  let keyOther: string;
  let keyNew: string;
  const files: Record<string, string> = {};
  const plain: Record<string, string> = {};

  const cli = (args: string[], extraEnv: Record<string, string> = {}) => runCli(args, { ...env, ...extraEnv });
  async function list(args: string[] = []): Promise<Listed[]> {
    const r = await cli(['backup', 'list', '--json', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Listed[];
  }
  const name = (loc: string) => Object.entries(files).find(([, p]) => p === loc)?.[0] ?? loc;
  const versionsOf = async (file: string) =>
    (JSON.parse((await cli(['backup', 'inspect', '--json', file])).stdout) as { wrappingKeys: { keyArn: string; keyVersion?: number }[] }).wrappingKeys.map((k) => [k.keyArn, k.keyVersion]);
  async function decryptsAll(names: string[]): Promise<void> {
    for (const n of names) {
      const outFile = join(dir, `${n}.out`);
      const r = await cli(['backup', 'decrypt', files[n]!, '-o', outFile]);
      assert.equal(r.code, 0, `${n}: ${r.stderr}`);
      assert.ok(readFileSync(outFile).equals(readFileSync(plain[n]!)), `${n} decrypts to its plaintext`);
    }
  }

  before(async () => {
    server = await startServer();
    dir = tempDir('keyhold-backup-rekey-');
    env = cliEnv(server, server.credentials, { XDG_STATE_HOME: join(dir, 'xdg-state') });
    keyK = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    keyOther = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    keyNew = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    const enc = async (n: string, keys: string[], extra: string[] = []) => {
      plain[n] = join(dir, `${n}.sql`);
      writeFileSync(plain[n]!, randomBytes(50_000 + Math.floor(Math.random() * 1000)));
      files[n] = resolve(dir, `${n}.kh`);
      const r = await cli(['backup', 'encrypt', ...keys.flatMap((k) => ['--key', k]), '--context', `name=${n}`, '--frame-size', '16384', ...extra, plain[n]!, '-o', files[n]!]);
      assert.equal(r.code, 0, r.stderr);
    };
    for (const n of ['b1', 'b2', 'b3', 'b4']) await enc(n, [keyK]);
    await enc('b5', [keyK, keyOther]);
    await enc('other', [keyOther]);
    await enc('unregistered', [keyK], ['--no-register']);
    await server.kms().rotateKeyOnDemand({ KeyId: keyK });
    await enc('b6', [keyK]);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('rewraps every backup under an old version of K; a missing file is listed with its reason, the rest go on, exit 1', async () => {
    assert.deepEqual((await list(['--key', keyK, '--key-version', '1'])).map((b) => name(b.Location)).sort(), ['b1', 'b2', 'b3', 'b4', 'b5']);
    renameSync(files.b2!, `${files.b2}.away`);
    const r = await cli(['backup', 'rewrap', '--all', '--from-key', keyK, '--json']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const s = JSON.parse(r.stdout) as Summary;
    assert.equal(s.fromKey, keyK);
    assert.equal(s.targetVersion, 2);
    assert.equal(s.resumed, false);
    assert.equal(s.candidates, 5);
    assert.equal(s.rewrapped, 4);
    assert.deepEqual(s.failed.map((f) => name(f.location)), ['b2']);
    assert.match(s.failed[0]!.reason, /missing/);
    assert.equal(s.retirable, false);
    assert.deepEqual(s.stillDependent.map((b) => name(b.location)), ['b2']);
    // The default state file sits under $XDG_STATE_HOME/keyhold, named after the key.
    assert.equal(s.stateFile, join(dir, 'xdg-state', 'keyhold', `rewrap-${keyK.split('/').pop()}.json`));
    const state = JSON.parse(readFileSync(s.stateFile, 'utf8')) as { done: Record<string, unknown>; failed: Record<string, { reason: string }> };
    assert.equal(Object.keys(state.done).length, 4);
    assert.deepEqual(Object.values(state.failed).map((f) => f.reason), [s.failed[0]!.reason]);
    // The files carry the new version; the other wrapping key of b5 is kept as it was.
    assert.deepEqual(await versionsOf(files.b1!), [[keyK, 2]]);
    assert.deepEqual(await versionsOf(files.b5!), [[keyK, 2], [keyOther, 1]]);
    // The registry shows it: only the missing one is still on version 1.
    assert.deepEqual((await list(['--key', keyK, '--key-version', '1'])).map((b) => name(b.Location)), ['b2']);
    assert.deepEqual((await list(['--key', keyK, '--key-version', '2'])).map((b) => name(b.Location)).sort(), ['b1', 'b3', 'b4', 'b5', 'b6']);
  });

  it('the next run resumes from the state file, skips what is done, and reports that version 1 can be retired; all decrypt after retiring it', async () => {
    renameSync(`${files.b2}.away`, files.b2!);
    const r = await cli(['backup', 'rewrap', '--all', '--from-key', keyK]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /rewrapped\s+\S*b2\.kh/);
    assert.doesNotMatch(r.stdout, /b1\.kh|b3\.kh|b4\.kh|b5\.kh/, 'done files are not touched again');
    assert.match(r.stdout, /1 rewrapped, 0 only re-registered .*, 0 failed; 4 done in earlier runs/);
    assert.match(r.stdout, /nothing registered depends on versions below 2 of .* any more: they can be retired \(keyhold keys retire \S+ --min-version 2\)/);
    assert.deepEqual(await list(['--key', keyK, '--key-version', '1']), []);
    const retire = await cli(['keys', 'retire', keyK, '--min-version', '2']);
    assert.equal(retire.code, 0, retire.stderr);
    await decryptsAll(['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'other']);
    // What was never registered is not found by --all: it stays on version 1, now retired.
    const lost = await cli(['backup', 'decrypt', files.unregistered!, '-o', join(dir, 'unregistered.out')]);
    assert.notEqual(lost.code, 0);
    assert.match(lost.stderr, /KeyVersionRetired/);
    // A third run finds nothing to do.
    const again = JSON.parse((await cli(['backup', 'rewrap', '--all', '--from-key', keyK, '--json'])).stdout) as Summary;
    assert.equal(again.candidates, 0);
    assert.equal(again.retirable, true);
    assert.equal(again.nextStep, `keyhold keys retire ${keyK} --min-version 2`);
  });

  it('a run killed part-way resumes: the next run does only what is left', async () => {
    await server.kms().rotateKeyOnDemand({ KeyId: keyK });
    const stateFile = join(dir, 'killed-run.json');
    const killed = await new Promise<{ stdout: string; signal: NodeJS.Signals | null }>((done) => {
      const p = spawn(process.execPath, [KEYHOLD_BIN, 'backup', 'rewrap', '--all', '--from-key', keyK, '--state', stateFile], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      p.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/rewrapped/.test(stdout)) p.kill('SIGKILL');
      });
      p.on('exit', (_code, signal) => done({ stdout, signal }));
    });
    assert.equal(killed.signal, 'SIGKILL', `killed before it finished: ${killed.stdout}`);
    const first = JSON.parse(readFileSync(stateFile, 'utf8')) as { done: Record<string, unknown>; completedAt?: string };
    assert.ok(Object.keys(first.done).length >= 1);
    assert.equal(first.completedAt, undefined);
    const r = await cli(['backup', 'rewrap', '--all', '--from-key', keyK, '--state', stateFile, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = JSON.parse(r.stdout) as Summary;
    assert.equal(s.resumed, true);
    assert.equal(s.targetVersion, 3);
    assert.ok(s.candidates < 6, `the killed run did part of the work (${s.candidates} left of 6)`);
    assert.equal(s.rewrapped + s.registeredOnly, s.candidates);
    assert.ok(s.doneInEarlierRuns >= 1);
    assert.equal(s.retirable, true);
    for (const n of ['b1', 'b2', 'b3', 'b4', 'b5', 'b6']) assert.equal((await versionsOf(files[n]!))[0]![1], 3, n);
    assert.deepEqual((await list(['--key', keyK])).filter((b) => b.WrappingKeys.some((k) => k.KeyArn === keyK && k.KeyVersion !== 3)), []);
    assert.ok(JSON.parse(readFileSync(stateFile, 'utf8')).completedAt);
    await decryptsAll(['b1', 'b2', 'b3', 'b4', 'b5', 'b6']);
  });

  it('--to-key moves every backup off K (offboarding), keeping the other keys; nothing depends on K afterwards', async () => {
    const r = await cli(['backup', 'rewrap', '--all', '--from-key', keyK, '--to-key', keyNew, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = JSON.parse(r.stdout) as Summary;
    assert.equal(s.rewrapped, 6);
    assert.equal(s.retirable, true);
    assert.match(s.stateFile, /-to-[0-9a-f]{8}\.json$/);
    assert.deepEqual(await list(['--key', keyK]), []);
    assert.deepEqual(await versionsOf(files.b5!), [[keyOther, 1], [keyNew, 1]]);
    assert.deepEqual(await versionsOf(files.b1!), [[keyNew, 1]]);
    await server.kms().disableKey({ KeyId: keyK });
    try {
      await decryptsAll(['b1', 'b2', 'b3', 'b4', 'b5', 'b6']);
    } finally {
      await server.kms().enableKey({ KeyId: keyK });
    }
  });

  it('bad input: a clear error and nothing changed', async () => {
    const noKey = await cli(['backup', 'rewrap', '--all']);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /needs --from-key/);
    const both = await cli(['backup', 'rewrap', '--all', '--from-key', keyK, files.b1!]);
    assert.equal(both.code, 2);
    const unknown = await cli(['backup', 'rewrap', '--all', '--from-key', 'alias/does-not-exist']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /NotFoundException/);
    const badState = join(dir, 'not-a-state.json');
    writeFileSync(badState, 'hello');
    const bad = await cli(['backup', 'rewrap', '--all', '--from-key', keyOther, '--state', badState]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not a keyhold rewrap state file/);
    assert.equal(readFileSync(badState, 'utf8'), 'hello');
    assert.ok(existsSync(files.b1!));

    // One run per state file: a lock held by a live process refuses, one left by a dead process is taken over.
    const lockedState = join(dir, 'locked-state.json');
    writeFileSync(`${lockedState}.lock`, `${process.pid}\n`);
    const busy = await cli(['backup', 'rewrap', '--all', '--from-key', keyOther, '--state', lockedState]);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, new RegExp(`another keyhold backup rewrap --all \\(pid ${process.pid}\\) is using`));
    assert.equal(existsSync(lockedState), false, 'nothing was started');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(`${lockedState}.lock`, `${dead}\n`);
    const taken = await cli(['backup', 'rewrap', '--all', '--from-key', keyOther, '--state', lockedState, '--json']);
    assert.equal(taken.code, 0, taken.stderr);
    assert.ok(existsSync(lockedState));
    assert.equal(existsSync(`${lockedState}.lock`), false, 'the lock is released at the end');
  });
  it('a backup and its same-server copy (one message id, two locations) are two backups to rewrap; an old (version 1) state file is read', async () => {
    const keyL = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    plain.src = join(dir, 'src.sql');
    writeFileSync(plain.src, randomBytes(40_000));
    files.src = resolve(dir, 'src.kh');
    files.copy = resolve(dir, 'copy.kh');
    plain.copy = plain.src;
    const enc = await cli(['backup', 'encrypt', '--key', keyL, '--frame-size', '16384', plain.src, '-o', files.src]);
    assert.equal(enc.code, 0, enc.stderr);
    const cp = await cli(['backup', 'copy', files.src, '-o', files.copy, '--to-key', keyL]);
    assert.equal(cp.code, 0, cp.stderr);
    const before = await list(['--key', keyL, '--key-version', '1']);
    assert.deepEqual(before.map((b) => name(b.Location)).sort(), ['copy', 'src']);
    const messageId = before[0]!.MessageId;
    assert.equal(before[1]!.MessageId, messageId);
    await server.kms().rotateKeyOnDemand({ KeyId: keyL });
    // A state file as the previous release wrote it (version 1, keyed by message id alone), of a run
    // toward version 2 that did one other backup.
    const stateFile = join(dir, 'v1-state.json');
    const other = 'ef'.repeat(32);
    writeFileSync(stateFile, JSON.stringify({
      version: 1, fromKeyArn: keyL, toKeys: [], targetVersion: 2, startedAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
      done: { [other]: { location: join(dir, 'gone.kh'), at: new Date().toISOString(), keys: [{ keyArn: keyL, keyVersion: 2 }], rewrapped: true } },
      failed: { [messageId]: { location: files.src, at: new Date().toISOString(), reason: 'missing: earlier' } },
    }));
    const r = await cli(['backup', 'rewrap', '--all', '--from-key', keyL, '--state', stateFile, '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = JSON.parse(r.stdout) as Summary;
    assert.equal(s.resumed, true);
    assert.equal(s.candidates, 2);
    assert.equal(s.rewrapped, 2);
    assert.equal(s.doneInEarlierRuns, 1);
    assert.equal(s.retirable, true);
    assert.deepEqual(await versionsOf(files.src), [[keyL, 2]]);
    assert.deepEqual(await versionsOf(files.copy), [[keyL, 2]]);
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { version: number; done: Record<string, { location: string }>; failed: Record<string, unknown> };
    assert.equal(state.version, 2);
    assert.deepEqual(Object.keys(state.done).sort(), [`${other}@${join(dir, 'gone.kh')}`, `${messageId}@${files.copy}`, `${messageId}@${files.src}`].sort());
    assert.deepEqual(state.failed, {});
    const after = await list(['--key', keyL]);
    assert.deepEqual(after.map((b) => [name(b.Location), b.WrappingKeys.map((k) => k.KeyVersion)]).sort(), [['copy', [2]], ['src', [2]]]);
    await decryptsAll(['src', 'copy']);
  });
});
