/**
 * Conformance: `--workers N` runs N server processes on one port over one SQLite store. A client
 * whose connections land on different workers must still read its own writes at once (each
 * worker's read cache is dropped on every sibling's commit before the commit is answered), and
 * SIGTERM to the primary stops every worker.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rejects } from '../helpers/assert.js';
import { startServer } from '../helpers/server.js';

/** The pids of a process's children, read from /proc (Linux). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('cluster mode (--workers 2)', () => {
  it('forks the workers, keeps read-your-writes across them, and stops them all on SIGTERM', async () => {
    const s = await startServer({ args: ['--workers', '2'] });
    try {
      const workers = childrenOf(s.proc.pid!);
      assert.equal(workers.length, 2, `expected 2 worker processes, found ${workers.join(',')}\n${s.stderr}`);
      assert.equal(s.stdout.match(/keyhold listening on/g)?.length, 1, 'the listening line is printed once, by the primary');

      // Each client has its own connection; the primary hands connections to workers in turn.
      const clients = Array.from({ length: 6 }, () => s.kms());
      const keyId = (await clients[0]!.createKey({ Description: 'cluster' })).KeyMetadata!.KeyId!;
      for (let i = 0; i < clients.length; i++) {
        const at = (n: number) => clients[(i + n) % clients.length]!;
        await at(0).disableKey({ KeyId: keyId });
        assert.equal((await at(1).describeKey({ KeyId: keyId })).KeyMetadata!.KeyState, 'Disabled', `round ${i}: disable not seen`);
        await rejects(at(2).encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') }), 'DisabledException');
        await at(3).enableKey({ KeyId: keyId });
        assert.equal((await at(4).describeKey({ KeyId: keyId })).KeyMetadata!.KeyState, 'Enabled', `round ${i}: enable not seen`);
        const ct = await at(5).encrypt({ KeyId: keyId, Plaintext: Buffer.from(`round ${i}`) });
        const pt = await at(0).decrypt({ CiphertextBlob: ct.CiphertextBlob! });
        assert.equal(Buffer.from(pt.Plaintext!).toString(), `round ${i}`);
      }
      const desc = await clients[1]!.updateKeyDescription({ KeyId: keyId, Description: 'changed' }).then(() => clients[2]!.describeKey({ KeyId: keyId }));
      assert.equal(desc.KeyMetadata!.Description, 'changed');

      assert.equal(await s.stop('SIGTERM'), 0, s.stderr);
      for (const pid of workers) assert.ok(!alive(pid), `worker ${pid} still running after the primary exited`);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('refuses --workers above 1 with in-memory storage', async () => {
    await assert.rejects(startServer({ args: ['--workers', '2', '--storage', 'memory'] }), /workers/i);
  });
});
