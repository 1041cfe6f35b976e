/**
 * Conformance: `keyhold backup decrypt -o FILE` writes plaintext into a temporary file beside FILE
 * and renames it only once the whole message verified. When the command is stopped by a signal
 * half-way (Ctrl-C, kill, a closed terminal), the plaintext decrypted so far must not stay behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEYHOLD_BIN, REPO_ROOT, cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';

describe('keyhold backup decrypt stopped by a signal', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  let encrypted: Buffer;

  before(async () => {
    server = await startServer();
    dir = tempDir('keyhold-backup-interrupt-');
    env = cliEnv(server);
    const key = (await server.kms().createKey({ Description: 'interrupt' })).KeyMetadata!.Arn!;
    writeFileSync(join(dir, 'plain'), randomBytes(3 << 20));
    const r = await runCli(['backup', 'encrypt', '--key', key, '--frame-size', '4096', join(dir, 'plain'), '-o', join(dir, 'msg.enc')], env);
    assert.equal(r.code, 0, r.stderr);
    encrypted = readFileSync(join(dir, 'msg.enc'));
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} while frames are being written removes the partial plaintext and leaves no output`, async () => {
      const out = join(dir, `out-${signal}`);
      const temps = () => readdirSync(dir).filter((n) => n.startsWith(`.out-${signal}.keyhold-tmp-`));
      const child = spawn(process.execPath, [KEYHOLD_BIN, 'backup', 'decrypt', '-', '-o', out], {
        cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.on('error', () => undefined); // an early exit is reported by the assertions below
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, sig) => r({ code, signal: sig })));
      // Half of the message, and the pipe stays open: the command waits for the rest.
      child.stdin.write(encrypted.subarray(0, encrypted.length >> 1));
      let partial = 0;
      for (let i = 0; i < 200 && partial === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const t = temps();
        partial = t.length === 1 ? statSync(join(dir, t[0]!)).size : 0;
      }
      assert.ok(partial > 0, `decrypted plaintext was being written to a temporary file before the signal (stderr: ${stderr})`);
      child.kill(signal);
      const end = await exited;
      assert.equal(end.signal, signal, `the command died of ${signal} (code ${end.code}, stderr: ${stderr})`);
      assert.deepEqual(temps(), [], 'no temporary file with partial plaintext is left');
      assert.ok(!readdirSync(dir).includes(`out-${signal}`), 'no output file');
    });
  }
});
