/**
 * The streaming ESDK v2 encryptor/decryptor in-process, without a server: frozen messages written by
 * @aws-crypto/client-node with a raw AES keyring (test/vectors/backup-message-v2.json), every single
 * bit flip and every truncation of one of them, and round trips at frame boundaries.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BackupFormatError, serializeEncryptionContext, type EncryptedDataKey } from '../../format/backup-message/index.js';
import { decryptStream, encryptStream, type Keyring, type Sink } from './message-stream.js';
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
