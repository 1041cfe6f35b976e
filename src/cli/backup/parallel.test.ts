/**
 * The parallel file-to-file path (parallel.ts, frame-worker.ts) against the stream path, in-process
 * without a server: messages written by one path are read by the other at sizes around frame
 * boundaries; the frozen client-node message, every single-bit flip and every truncation of it,
 * read from a file (the parallel attempt must give up and the stream path must name the fault);
 * and plaintext written only for a message that verified.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupFormatError, SUITE_COMMIT_KEY, type EncryptedDataKey } from '../../format/backup-message/index.js';
import { decryptStream, encryptStream, type Keyring, type Sink } from './message-stream.js';
import { AtomicFile, nullSink, source } from './files.js';
import { decryptFile, decryptFileParallel, encryptFileParallel, FramePool, frameLayout, messageLayout, ParallelMismatch, PARALLEL_MIN_FRAMES, verifyFile } from './parallel.js';
import { FINAL_OVERHEAD, REGULAR_OVERHEAD } from './frame-worker.js';

const dir = mkdtempSync(join(tmpdir(), 'keyhold-parallel-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);

/** Hands out one fixed data key; counts unwraps (the retry after a failed parallel attempt must not unwrap again). */
class CountingKeyring implements Keyring {
  unwraps = 0;
  constructor(private readonly key = randomBytes(32)) {}
  async generate() {
    return { dataKey: Buffer.from(this.key), encryptedDataKeys: [{ providerId: 'test', providerInfo: 'k', ciphertext: Buffer.from('wrapped') }] };
  }
  async decrypt(_edks: EncryptedDataKey[]) {
    this.unwraps++;
    return { dataKey: Buffer.from(this.key), keyArn: 'test/k' };
  }
}

/** A CountingKeyring that remembers every data key buffer it handed out (to see that each gets zeroed). */
class RecordingKeyring extends CountingKeyring {
  readonly given: Buffer[] = [];
  override async decrypt(edks: EncryptedDataKey[]) {
    const r = await super.decrypt(edks);
    this.given.push(r.dataKey);
    return r;
  }
}
const zeroed = (b: Buffer) => b.every((x) => x === 0);

async function streamDecryptFile(path: string, keyring: Keyring): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink: Sink = { write: (b) => void parts.push(Buffer.from(b)) };
  await decryptStream(source(path), sink, { keyring });
  return Buffer.concat(parts);
}

async function streamEncryptFile(plain: Buffer, path: string, keyring: Keyring, frameLength: number): Promise<void> {
  const out = await AtomicFile.create(path, { durable: false });
  await encryptStream(source(writeTemp(plain), frameLength), out, { keyring, frameLength, suiteId: SUITE_COMMIT_KEY });
  await out.commit();
}

let temps = 0;
function writeTemp(b: Buffer): string {
  const p = file(`in-${temps++}`);
  writeFileSync(p, b);
  return p;
}

describe('parallel backup path', () => {
  it('the layout a message size implies is the layout encryption used', () => {
    for (const F of [1, 7, 64, 1 << 20]) {
      for (const size of [0, 1, F - 1, F, F + 1, 4 * F, 4 * F + 3, 9 * F - 1]) {
        if (size < 0) continue;
        const l = frameLayout(size, F);
        const header = 123;
        const total = header + (l.frames - 1) * (F + REGULAR_OVERHEAD) + l.lastLength + FINAL_OVERHEAD;
        assert.deepEqual(messageLayout(total, header, F), l, `F=${F} size=${size}`);
        // One byte more or less than a valid layout is valid only where the final frame can absorb it.
        const more = messageLayout(total + 1, header, F);
        if (more) assert.ok(more.lastLength <= F);
      }
    }
    assert.equal(messageLayout(10, 20, 64), undefined);
  });

  const F = 1000;
  for (const size of [PARALLEL_MIN_FRAMES * F, PARALLEL_MIN_FRAMES * F + 1, 10 * F - 1, 37 * F + 500]) {
    it(`${size} bytes in ${F}-byte frames: parallel encrypt, stream decrypt, and the reverse`, async () => {
      const plain = randomBytes(size);
      const keyring = new CountingKeyring();
      const pool = FramePool.start(3);
      const enc = file(`p-${size}.enc`);
      const out = await AtomicFile.create(enc, { durable: false });
      let progress = 0;
      try {
        const r = await encryptFileParallel(writeTemp(plain), out, { keyring, frameLength: F, suiteId: SUITE_COMMIT_KEY, pool, onProgress: (n) => (progress = n) });
        await out.commit();
        assert.equal(r.plaintextBytes, size);
        assert.equal(r.frames, Math.ceil(size / F));
        assert.equal(r.ciphertextBytes, readFileSync(enc).length);
      } finally {
        await pool.close();
      }
      assert.equal(progress, size);
      assert.ok((await streamDecryptFile(enc, keyring)).equals(plain), 'the stream path reads what the parallel path wrote');

      const enc2 = file(`s-${size}.enc`);
      await streamEncryptFile(plain, enc2, keyring, F);
      const dec = file(`s-${size}.dec`);
      const o = await AtomicFile.create(dec, { durable: false });
      const r2 = await decryptFileParallel(enc2, o, { keyring });
      assert.ok(r2, 'the parallel path takes a multi-frame unsigned message');
      await o.commit();
      assert.equal(r2.frames, Math.ceil(size / F));
      assert.ok(readFileSync(dec).equals(plain), 'the parallel path reads what the stream path wrote');
    });
  }

  it('declines small, signed or non-file inputs before any KMS call', async () => {
    const keyring = new CountingKeyring();
    const small = file('small.enc');
    await streamEncryptFile(randomBytes(2 * F), small, keyring, F);
    assert.equal(await decryptFileParallel(small, undefined, { keyring }), undefined);
    assert.equal(await decryptFileParallel(dir, undefined, { keyring }), undefined);
    assert.equal(keyring.unwraps, 0);
  });

  it('a single-bit flip at every third byte, and truncations, of a 4-frame message fail, with one unwrap each', async () => {
    const keyring = new CountingKeyring();
    const good = file('good.enc');
    const plain = randomBytes(3 * 64 + 21);
    await streamEncryptFile(plain, good, keyring, 64);
    const msg = readFileSync(good);
    const r = await verifyFile(good, { keyring });
    assert.equal(r.frames, 4);
    const bad = file('bad.enc');
    const expectFailure = async (what: string) => {
      const before = keyring.unwraps;
      await assert.rejects(verifyFile(bad, { keyring, workers: 1 }), (e: unknown) => e instanceof BackupFormatError, what);
      assert.ok(keyring.unwraps - before <= 1, `${what}: the data key was unwrapped ${keyring.unwraps - before} times`);
    };
    for (let i = 0; i < msg.length; i += 3) {
      const m = Buffer.from(msg);
      m[i]! ^= 1 << (i % 8);
      writeFileSync(bad, m);
      await expectFailure(`bit flip at byte ${i}`);
    }
    for (let n = 0; n < msg.length; n += 7) {
      writeFileSync(bad, msg.subarray(0, n));
      await expectFailure(`truncated to ${n} bytes`);
    }
  });

  it('a tampered frame: the parallel attempt gives up and the stream path names the frame; no plaintext is kept', async () => {
    const keyring = new CountingKeyring();
    const enc = file('t.enc');
    await streamEncryptFile(randomBytes(20 * F), enc, keyring, F);
    const m = readFileSync(enc);
    m[m.length - 5 * (F + REGULAR_OVERHEAD) + 100]! ^= 0x80; // inside frame 16's ciphertext
    writeFileSync(enc, m);
    const target = file('t.dec');
    const out = await AtomicFile.create(target, { durable: false });
    const e = await decryptFileParallel(enc, out, { keyring }).catch((x) => x);
    await out.abort();
    assert.ok(e instanceof ParallelMismatch, String(e));
    assert.equal(existsSync(target), false);
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('keyhold-tmp')), []);
    // The retry keyring hands over the data key already unwrapped: no second unwrap.
    const unwraps = keyring.unwraps;
    await assert.rejects(decryptStream(source(enc), nullSink, { keyring: e.keyring }), /frame 16 fails authentication/);
    assert.equal(keyring.unwraps, unwraps);
    e.keyring.forget();
  });

  it('the data key kept for the retry is zeroed on every path: handed out and used, or the retry failing before it takes it', async () => {
    const enc = file('z.enc');
    const plain = randomBytes(20 * F);
    await streamEncryptFile(plain, enc, new CountingKeyring(Buffer.alloc(32, 7)), F);
    const original = readFileSync(enc);
    // A frame fails: the retry takes the kept key (no second unwrap) and names the frame.
    const tampered = Buffer.from(original);
    tampered[tampered.length - 5 * (F + REGULAR_OVERHEAD) + 100]! ^= 0x80;
    writeFileSync(enc, tampered);
    const handed = new RecordingKeyring(Buffer.alloc(32, 7));
    await assert.rejects(decryptFile(enc, { keyring: handed }, { path: file('z1.dec'), durable: false }), /frame 16 fails authentication/);
    assert.equal(handed.unwraps, 1);
    assert.ok(handed.given.every(zeroed), 'the kept key, used by the retry, is zeroed');
    // The file is emptied while the parallel attempt reads it: the attempt gives up, and the retry
    // fails on the header before it takes the kept key; the key is zeroed all the same.
    writeFileSync(enc, original);
    const unused = new RecordingKeyring(Buffer.alloc(32, 7));
    let emptied = false;
    const onProgress = () => {
      if (!emptied) writeFileSync(enc, '');
      emptied = true;
    };
    await assert.rejects(decryptFile(enc, { keyring: unused, onProgress }, { path: file('z2.dec'), durable: false }), /empty input/);
    assert.ok(emptied);
    assert.equal(unused.unwraps, 1);
    assert.equal(unused.given.length, 1);
    assert.ok(zeroed(unused.given[0]!), 'the kept key, never used by the retry, is zeroed');
    assert.equal(existsSync(file('z2.dec')), false);
    // The same when the attempt succeeds.
    writeFileSync(enc, original);
    const ok = new RecordingKeyring(Buffer.alloc(32, 7));
    const r = await decryptFile(enc, { keyring: ok }, { path: file('z3.dec'), durable: false });
    assert.equal(r.frames, 20);
    assert.ok(readFileSync(file('z3.dec')).equals(plain));
    assert.ok(ok.given.every(zeroed));
  });
});
