import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStorage } from '../storage/index.js';
import { Barrier, BarrierError, FileSeal, PassphraseSeal, SealError } from './index.js';
import { SecretBytes } from '../crypto/index.js';

describe('barrier and seals', () => {
  it('seals a value bound to its path: the same bytes at another path do not open', async () => {
    const storage = new MemoryStorage();
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-seal-'));
    try {
      const barrier = await Barrier.unseal(storage, await FileSeal.open(join(dir, 'seal.key')));
      const sealed = barrier.seal('material/a/1', Buffer.from('top secret'));
      assert.equal(barrier.open('material/a/1', sealed).toString(), 'top secret');
      assert.ok(!sealed.includes(Buffer.from('top secret')));
      assert.throws(() => barrier.open('material/b/1', sealed), BarrierError);
      const flipped = Buffer.from(sealed);
      flipped[20]! ^= 1;
      assert.throws(() => barrier.open('material/a/1', flipped), BarrierError);
      assert.throws(() => barrier.open('material/a/1', sealed.subarray(0, 10)), BarrierError);
      await barrier.put(storage, 'x', SecretBytes.from(Buffer.from('abc')));
      assert.equal((await barrier.get(storage, 'x'))!.insecureExpose().toString(), 'abc');
      assert.equal(statSync(join(dir, 'seal.key')).mode & 0o777, 0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the file seal reopens the same root key; another seal file does not', async () => {
    const storage = new MemoryStorage();
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-seal-'));
    try {
      const b1 = await Barrier.unseal(storage, await FileSeal.open(join(dir, 'seal.key')));
      const sealed = b1.seal('p', Buffer.from('v'));
      const b2 = await Barrier.unseal(storage, await FileSeal.open(join(dir, 'seal.key')));
      assert.equal(b2.open('p', sealed).toString(), 'v');
      await assert.rejects(Barrier.unseal(storage, await FileSeal.open(join(dir, 'other.key'))), SealError);
      writeFileSync(join(dir, 'short.key'), Buffer.alloc(5));
      await assert.rejects(FileSeal.open(join(dir, 'short.key')), SealError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the passphrase seal opens only with the passphrase, and a root key sealed one way is refused another way', async () => {
    const storage = new MemoryStorage();
    const b1 = await Barrier.unseal(storage, new PassphraseSeal('a long enough passphrase'));
    const sealed = b1.seal('p', Buffer.from('v'));
    const b2 = await Barrier.unseal(storage, new PassphraseSeal('a long enough passphrase'));
    assert.equal(b2.open('p', sealed).toString(), 'v');
    await assert.rejects(Barrier.unseal(storage, new PassphraseSeal('another passphrase!!')), SealError);
    const dir = mkdtempSync(join(tmpdir(), 'keyhold-seal-'));
    try {
      await assert.rejects(Barrier.unseal(storage, await FileSeal.open(join(dir, 'seal.key'))), /sealed with the 'passphrase' seal/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(() => new PassphraseSeal('short'), SealError);
  });
});
