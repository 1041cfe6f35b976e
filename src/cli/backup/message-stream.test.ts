/**
 * The streaming ESDK v2 encryptor/decryptor in-process, without a server: frozen messages written by
 * @aws-crypto/client-node with a raw AES keyring (test/vectors/backup-message-v2.json), every single
 * bit flip and every truncation of one of them, and round trips at frame boundaries.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupFormatError, serializeEncryptionContext, type EncryptedDataKey } from '../../format/backup-message/index.js';
import { decryptStream, encryptStream, type Keyring, type Sink } from './message-stream.js';
import { FileBlocks, StreamBlocks } from './blocks.js';
import { REPO_ROOT } from '../../../test/helpers/repo.js';

const vectors = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'vectors', 'backup-message-v2.json'), 'utf8')) as {
  wrappingKeyHex: string; plaintextHex: string; messages: Record<string, string>;
};
const NAMESPACE = 'keyhold-test';
const KEY_NAME = Buffer.from('vector-key');

/** The ESDK raw AES keyring (AES-256-GCM), written from its spec for these tests only. */
class RawAesTestKeyring implements Keyring {
  constructor(private readonly key: Buffer) {}
  async generate(context: Record<string, string>) {
    const dataKey = randomBytes(32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(serializeEncryptionContext(context));
    const ct = Buffer.concat([c.update(dataKey), c.final(), c.getAuthTag()]);
    const info = Buffer.alloc(KEY_NAME.length + 8 + 12);
    KEY_NAME.copy(info);
    info.writeUInt32BE(128, KEY_NAME.length);
    info.writeUInt32BE(12, KEY_NAME.length + 4);
    iv.copy(info, KEY_NAME.length + 8);
    return { dataKey, encryptedDataKeys: [{ providerId: NAMESPACE, providerInfo: 'vector-key', providerInfoBytes: info, ciphertext: ct }] };
  }
  async decrypt(edks: EncryptedDataKey[], context: Record<string, string>) {
    for (const e of edks) {
      if (e.providerId !== NAMESPACE) continue;
      const info = e.providerInfoBytes!;
      const iv = info.subarray(KEY_NAME.length + 8);
      const d = createDecipheriv('aes-256-gcm', this.key, iv);
      d.setAAD(serializeEncryptionContext(context));
      d.setAuthTag(e.ciphertext.subarray(32));
      return { dataKey: Buffer.concat([d.update(e.ciphertext.subarray(0, 32)), d.final()]), keyArn: `${NAMESPACE}/vector-key` };
    }
    throw new Error('no EDK for this keyring');
  }
}

const keyring = new RawAesTestKeyring(Buffer.from(vectors.wrappingKeyHex, 'hex'));
const plaintext = Buffer.from(vectors.plaintextHex, 'hex');

async function* chunks(b: Buffer, size = 7): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function decryptAll(msg: Buffer, chunkSize?: number): Promise<{ out: Buffer; frames: number; signed: boolean }> {
  const parts: Buffer[] = [];
  const sink: Sink = { write: (b) => void parts.push(Buffer.from(b)) };
  const r = await decryptStream(chunks(msg, chunkSize), sink, { keyring });
  return { out: Buffer.concat(parts), frames: r.frames, signed: r.signed };
}

describe('backup message stream (ESDK v2)', () => {
  for (const [suite, hex] of Object.entries(vectors.messages)) {
    it(`decrypts the frozen client-node message, suite ${suite}`, async () => {
      const r = await decryptAll(Buffer.from(hex, 'hex'));
      assert.ok(r.out.equals(plaintext));
      assert.equal(r.frames, 4);
      assert.equal(r.signed, suite === '0x0578');
    });
  }

  for (const suite of ['0x0478', '0x0578']) {
    it(`rejects every single-bit flip of the frozen ${suite} message (one bit per byte)`, async () => {
      const msg = Buffer.from(vectors.messages[suite]!, 'hex');
      for (let i = 0; i < msg.length; i++) {
        const t = Buffer.from(msg);
        t[i]! ^= 1 << (i % 8);
        await assert.rejects(decryptAll(t, 64), (e: Error) => e instanceof BackupFormatError || /auth|Unsupported state|EDK|bad decrypt/i.test(e.message), `byte ${i} flipped was accepted`);
      }
    });

    it(`rejects every truncation of the frozen ${suite} message`, async () => {
      const msg = Buffer.from(vectors.messages[suite]!, 'hex');
      for (let n = 0; n < msg.length; n++) {
        await assert.rejects(decryptAll(msg.subarray(0, n), 64), BackupFormatError, `truncation to ${n} bytes was accepted`);
      }
    });
  }

  it('releases no plaintext of a frame before its tag verifies', async () => {
    const msg = Buffer.from(vectors.messages['0x0478']!, 'hex');
    const t = Buffer.from(msg);
    t[t.length - 20]! ^= 1; // inside the final frame's ciphertext
    const parts: Buffer[] = [];
    await assert.rejects(decryptStream(chunks(t), { write: (b) => void parts.push(b) }, { keyring }), /frame 4 \(final\) fails authentication/);
    assert.equal(Buffer.concat(parts).length, 3 * 64, 'only the three verified frames were released');
  });

  for (const size of [0, 1, 63, 64, 65, 128, 1000]) {
    for (const suiteId of [0x0478, 0x0578]) {
      it(`round trip of ${size} bytes, frame 64, suite 0x${suiteId.toString(16)}`, async () => {
        const plain = randomBytes(size);
        const parts: Buffer[] = [];
        const e = await encryptStream(chunks(plain, 13), { write: (b) => void parts.push(Buffer.from(b)) }, { keyring, frameLength: 64, suiteId, context: { a: 'b' } });
        assert.equal(e.frames, Math.max(1, Math.ceil(size / 64)));
        const r = await decryptAll(Buffer.concat(parts), 5);
        assert.ok(r.out.equals(plain));
      });
    }
  }
});

// The file path: positional reads into reused blocks (FileBlocks), frames straddling blocks at every
// offset, and sinks with writev. Same contracts as above, through the code the CLI uses for files.
describe('backup message stream over file blocks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-blocks-'));
  let n = 0;
  const fileOf = (b: Buffer) => {
    const f = join(dir, `m${n++}`);
    writeFileSync(f, b);
    return f;
  };
  const writevSink = (parts: Buffer[]): Sink => ({
    write: (b) => void parts.push(Buffer.from(b)),
    writev: (bs) => void parts.push(...bs.map((b) => Buffer.from(b))),
  });

  for (const [suite, hex] of Object.entries(vectors.messages)) {
    for (const block of [1, 7, 64, 64 + 32, 4096]) {
      it(`decrypts the frozen ${suite} message from a file in ${block}-byte blocks`, async () => {
        const parts: Buffer[] = [];
        const r = await decryptStream(new FileBlocks(fileOf(Buffer.from(hex, 'hex')), block), writevSink(parts), { keyring });
        assert.ok(Buffer.concat(parts).equals(plaintext));
        assert.equal(r.frames, 4);
      });
    }

    it(`rejects every single-bit flip and every truncation of the frozen ${suite} message read from a file`, async () => {
      const msg = Buffer.from(hex, 'hex');
      for (let i = 0; i < msg.length; i++) {
        const t = Buffer.from(msg);
        t[i]! ^= 1 << (i % 8);
        const parts: Buffer[] = [];
        let footer = false;
        await assert.rejects(decryptStream(new FileBlocks(fileOf(t), 1 + (i % 97)), writevSink(parts), { keyring }), (e: Error) => {
          footer = /signature/.test(e.message); // a flip in the signed suite's footer: all frames had verified
          return e instanceof BackupFormatError || /auth|Unsupported state|EDK|bad decrypt/i.test(e.message);
        }, `byte ${i} flipped was accepted`);
        if (!footer) assert.ok(Buffer.concat(parts).length <= 3 * 64, `byte ${i}: no plaintext of the failing frame was released`);
      }
      for (let k = 0; k < msg.length; k++) {
        await assert.rejects(decryptStream(new FileBlocks(fileOf(msg.subarray(0, k)), 1 + (k % 61)), writevSink([]), { keyring }), BackupFormatError, `truncation to ${k} bytes was accepted`);
      }
    });
  }

  for (const size of [0, 1, 63, 64, 65, 128, 1000]) {
    for (const suiteId of [0x0478, 0x0578]) {
      it(`file round trip of ${size} bytes, frame 64, suite 0x${suiteId.toString(16)}: frames cut from file blocks`, async () => {
        const plain = randomBytes(size);
        const parts: Buffer[] = [];
        const e = await encryptStream(new FileBlocks(fileOf(plain), 64), writevSink(parts), { keyring, frameLength: 64, suiteId });
        assert.equal(e.frames, Math.max(1, Math.ceil(size / 64)));
        assert.equal(e.ciphertextBytes, Buffer.concat(parts).length);
        const out: Buffer[] = [];
        await decryptStream(new FileBlocks(fileOf(Buffer.concat(parts)), 50), writevSink(out), { keyring });
        assert.ok(Buffer.concat(out).equals(plain));
      });
    }
  }

  it('encrypting a file wants blocks of exactly the frame length', async () => {
    await assert.rejects(encryptStream(new FileBlocks(fileOf(randomBytes(10)), 32), writevSink([]), { keyring, frameLength: 64 }), RangeError);
  });

  it('gathers a chunk stream into exact blocks (the last one short) and zeroes them on close', async () => {
    const data = randomBytes(1000);
    const src = new StreamBlocks(chunks(data, 13), 64, true);
    const got: Buffer[] = [];
    const seen: Buffer[] = [];
    for (let b = await src.next(); b; b = await src.next()) {
      got.push(Buffer.from(b));
      seen.push(b);
      src.release(b);
    }
    assert.deepEqual(got.map((b) => b.length), [...Array(15).fill(64), 1000 - 15 * 64]);
    assert.ok(Buffer.concat(got).equals(data));
    await src.close();
    assert.ok(seen.every((b) => b.every((x) => x === 0)), 'pooled plaintext blocks are zeroed');
  });

  it('cleans up its temporary directory', () => {
    rmSync(dir, { recursive: true, force: true });
  });
});
