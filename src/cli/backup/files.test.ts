/**
 * AtomicFile: the output of `keyhold backup decrypt` and `encrypt` to a file. Written under a
 * temporary name with flush-behind fdatasyncs while it grows, renamed over the target only by
 * commit(); an abort leaves neither the target nor the temporary file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AtomicFile, FLUSH_BEHIND_BYTES } from './files.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('AtomicFile', () => {
  it('writes several flush-behind intervals in order, and the target appears only at commit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-atomic-'));
    try {
      const target = join(dir, 'out');
      writeFileSync(target, 'previous contents');
      const f = await AtomicFile.create(target);
      const hash = createHash('sha256');
      let total = 0;
      // 2.5 flush-behind intervals in uneven pieces, several buffers per write as frames are.
      while (total < FLUSH_BEHIND_BYTES * 2.5) {
        const parts = [randomBytes(4096), randomBytes(300_000), randomBytes(17)];
        for (const p of parts) hash.update(p);
        total += parts.reduce((s, p) => s + p.length, 0);
        await f.writev(parts);
        assert.equal(readFileSync(target, 'utf8'), 'previous contents', 'the target is untouched before commit');
      }
      await f.commit();
      const got = readFileSync(target);
      assert.equal(got.length, total);
      assert.equal(sha256(got), hash.digest('hex'));
      assert.deepEqual(readdirSync(dir), ['out'], 'no temporary file is left');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('abort after flush-behind removes the temporary file and leaves the target alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-atomic-'));
    try {
      const target = join(dir, 'out');
      const f = await AtomicFile.create(target);
      for (let n = 0; n < FLUSH_BEHIND_BYTES * 1.5; n += 1 << 20) await f.write(randomBytes(1 << 20));
      await f.abort();
      assert.equal(existsSync(target), false);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
