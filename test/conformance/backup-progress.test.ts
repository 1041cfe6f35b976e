/**
 * The progress bar as a user sees it: the real CLI run under a pseudo-terminal (`script` from
 * bsdutils) draws bytes, a bar, percentage, rate and ETA on stderr for encrypt, decrypt, verify,
 * copy and rewrap --all; piped, or with --no-progress, it draws nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEYHOLD_BIN, REPO_ROOT, requireTool, cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';

const haveScript = spawnSync('script', ['--version']).status === 0;
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('keyhold backup: progress bar on a terminal, none when piped', { skip: !requireTool('script (bsdutils)', haveScript) }, () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  let key: string;
  let plain: string;

  /** Runs the CLI with stdin, stdout and stderr on a pseudo-terminal; returns what the terminal showed. */
  function underPty(args: string[]): Promise<{ code: number | null; screen: string }> {
    const cmd = [process.execPath, KEYHOLD_BIN, ...args].map(shq).join(' ');
    return new Promise((done) => {
      const p = spawn('script', ['-qefc', cmd, '/dev/null'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let screen = '';
      p.stdout.on('data', (d: Buffer) => (screen += d.toString()));
      p.stderr.on('data', (d: Buffer) => (screen += d.toString()));
      p.on('exit', (code) => done({ code, screen }));
    });
  }
  const BAR = (label: string) => new RegExp(`\\r${label} [0-9.]+ (B|KiB|MiB) / [0-9.]+ (KiB|MiB) \\[[#.]{24}\\] +\\d+% [0-9.]+ (B|KiB|MiB|GiB)/s`);

  before(async () => {
    server = await startServer();
    dir = tempDir('keyhold-backup-progress-');
    env = cliEnv(server, server.credentials, { XDG_STATE_HOME: join(dir, 'state') });
    key = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    plain = join(dir, 'dump.sql');
    writeFileSync(plain, randomBytes(4 << 20));
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('encrypt, decrypt and verify on a terminal show the bar (bytes, bar, percentage, rate) and end at 100%', async () => {
    const enc = await underPty(['backup', 'encrypt', '--key', key, '--frame-size', '65536', plain, '-o', join(dir, 'dump.kh')]);
    assert.equal(enc.code, 0, enc.screen);
    assert.match(enc.screen, BAR('encrypt'));
    assert.match(enc.screen, /\rencrypt 4\.0 MiB \/ 4\.0 MiB \[#{24}\] 100% .* done\x1b\[K/);
    assert.match(enc.screen, /\r\x1b\[K/, 'the bar is erased at the end');
    const dec = await underPty(['backup', 'decrypt', join(dir, 'dump.kh'), '-o', join(dir, 'dump.out')]);
    assert.equal(dec.code, 0, dec.screen);
    assert.match(dec.screen, BAR('decrypt'));
    assert.ok(readFileSync(join(dir, 'dump.out')).equals(readFileSync(plain)));
    const ver = await underPty(['backup', 'verify', join(dir, 'dump.kh')]);
    assert.equal(ver.code, 0, ver.screen);
    assert.match(ver.screen, BAR('verify'));
    assert.match(ver.screen, /OK: /);
  });

  it('copy shows the bar for the copy and for the verification at the destination', async () => {
    const west = (await server.kms({ region: 'us-west-2' }).createKey({})).KeyMetadata!.Arn!;
    const r = await underPty(['backup', 'copy', join(dir, 'dump.kh'), '-o', join(dir, 'copy.kh'), '--to-region', 'us-west-2', '--to-key', west]);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, BAR('copy'));
    assert.match(r.screen, BAR('verify'));
  });

  it('rewrap --all counts files on the bar, and erases it before each line it prints', async () => {
    for (const n of ['a', 'b', 'c']) {
      const e = await runCli(['backup', 'encrypt', '--key', key, plain, '-o', join(dir, `${n}.kh`)], env);
      assert.equal(e.code, 0, e.stderr);
    }
    await server.kms().rotateKeyOnDemand({ KeyId: key });
    const r = await underPty(['backup', 'rewrap', '--all', '--from-key', key]);
    assert.equal(r.code, 0, r.screen);
    // a, b, c and dump.kh (its copy is a record of its own, under the west key, and is not taken).
    assert.match(r.screen, /\rrewrap 0 \/ 4 files \[\.{24}\]   0%/);
    assert.match(r.screen, /\rrewrap 4 \/ 4 files \[#{24}\] 100% .* done/);
    assert.match(r.screen, /\r\x1b\[Krewrapped /);
  });

  it('piped (stderr not a terminal): no bar at all', async () => {
    const enc = await runCli(['backup', 'encrypt', '--key', key, plain, '-o', join(dir, 'piped.kh')], env);
    assert.equal(enc.code, 0, enc.stderr);
    assert.doesNotMatch(enc.stderr, /\r|\[#|\x1b\[K/);
    const dec = await runCli(['backup', 'decrypt', join(dir, 'piped.kh'), '-o', join(dir, 'piped.out')], env);
    assert.equal(dec.code, 0, dec.stderr);
    assert.doesNotMatch(dec.stderr, /\r|\[#|\x1b\[K|decrypt [0-9]/);
    // Nor the AWS SDK's notice about Node versions (printed at every start unless turned off).
    const quiet = { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined };
    const v = await runCli(['backup', 'verify', join(dir, 'piped.kh')], quiet);
    assert.equal(v.code, 0, v.stderr);
    assert.doesNotMatch(v.stderr, /NodeVersionSupportWarning/);
  });

  it('--no-progress (and --quiet) on a terminal: no bar', async () => {
    const r = await underPty(['backup', 'encrypt', '--key', key, '--no-progress', plain, '-o', join(dir, 'quiet.kh')]);
    assert.equal(r.code, 0, r.screen);
    assert.doesNotMatch(r.screen, /\rencrypt [0-9]|\[#/);
    const q = await underPty(['backup', 'verify', '--quiet', join(dir, 'quiet.kh')]);
    assert.equal(q.code, 0, q.screen);
    assert.doesNotMatch(q.screen, /\rverify [0-9]|\[#/);
  });
});
