/**
 * `keyhold backup` slice 1: the AWS Encryption SDK v2 message format, end to end against a real
 * server over HTTPS. Interop both ways with @aws-crypto/client-node (its KMS keyring pointed at
 * Keyhold), tampering/truncation/reordering/frame swaps, multi-region wrapping, header-only rewrap.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { KMS } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { AlgorithmSuiteIdentifier, buildClient, CommitmentPolicy, getClient, KmsKeyringNode } from '@aws-crypto/client-node';
import { cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { encryptStream, decryptStream, DEFAULT_FRAME_LENGTH, type Sink } from '../../src/cli/backup/message-stream.js';
import { KmsKeyring } from '../../src/cli/backup/kms-keyring.js';

const FRAME = 4096;
const REGULAR_FRAME_BYTES = 4 + 12 + FRAME + 16;

describe('keyhold backup: AWS Encryption SDK v2 messages', () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  let keyA: string; // us-east-1
  let keyB: string; // us-west-2
  let esdk: ReturnType<typeof buildClient>;
  let esdkKeyring: (ids: string[]) => KmsKeyringNode;

  before(async () => {
    server = await startServer();
    dir = tempDir('keyhold-backup-');
    env = cliEnv(server);
    keyA = (await server.kms().createKey({ Description: 'backups east' })).KeyMetadata!.Arn!;
    keyB = (await server.kms({ region: 'us-west-2' }).createKey({ Description: 'backups west' })).KeyMetadata!.Arn!;
    esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const ca = readFileSync(server.caFile!);
    const clientProvider = getClient(KMS, {
      endpoint: server.url,
      credentials: server.credentials,
      requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca }) }),
    });
    esdkKeyring = (ids) => new KmsKeyringNode({ generatorKeyId: ids[0], keyIds: ids.slice(1), clientProvider });
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  const file = (name: string) => join(dir, name);
  const cli = (args: string[], input?: Buffer) => runCli(['backup', ...args], env, input);
  async function encryptFile(plain: Buffer, name: string, extra: string[] = []): Promise<string> {
    writeFileSync(file(`${name}.plain`), plain);
    const r = await cli(['encrypt', '--key', keyA, '--frame-size', String(FRAME), ...extra, file(`${name}.plain`), '-o', file(`${name}.enc`)]);
    assert.equal(r.code, 0, r.stderr);
    return file(`${name}.enc`);
  }
  async function inspect(path: string) {
    const r = await cli(['inspect', '--json', path]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { suite: string; messageId: string; frameLength: number; headerBytes: number; encryptionContext: Record<string, string>; wrappingKeys: { keyArn: string; keyVersion?: number }[] };
  }
  /** Decrypts with the CLI to a file; returns exit code, stderr and whether anything appeared. */
  async function decryptTo(path: string, outName: string) {
    const out = file(outName);
    const r = await cli(['decrypt', path, '-o', out]);
    const leftovers = readdirSync(dir).filter((n) => n.includes('keyhold-tmp'));
    return { ...r, exists: existsSync(out), leftovers, out };
  }

  // From 4 frames on, file to file takes the parallel path (src/cli/backup/parallel.ts).
  for (const size of [0, 1, FRAME - 1, FRAME, 3 * FRAME, 3 * FRAME + 17, 4 * FRAME, 9 * FRAME + 5]) {
    it(`Keyhold encrypts ${size} bytes; @aws-crypto/client-node decrypts them`, async () => {
      const plain = randomBytes(size);
      // --no-fsync changes only durability, never the bytes: one size takes it.
      const enc = await encryptFile(plain, `k2e-${size}`, ['--context', 'purpose=backup', '--context', 'db=orders', ...(size === 9 * FRAME + 5 ? ['--no-fsync'] : [])]);
      const { plaintext, messageHeader } = await esdk.decrypt(esdkKeyring([keyA]), readFileSync(enc));
      assert.ok(Buffer.from(plaintext).equals(plain));
      assert.equal(messageHeader.suiteId, AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY);
      assert.equal(messageHeader.encryptionContext.purpose, 'backup');
      assert.equal(messageHeader.encryptionContext.db, 'orders');
      assert.equal(messageHeader.frameLength, FRAME);
      const back = await decryptTo(enc, `k2e-${size}.out`);
      assert.equal(back.code, 0, back.stderr);
      assert.ok(readFileSync(back.out).equals(plain));
    });
  }

  // The frame size the CLI picks by default (large, for throughput: see the README's benchmark)
  // must interoperate both ways too, at sizes that end inside, at and after a frame boundary.
  for (const size of [DEFAULT_FRAME_LENGTH, 2 * DEFAULT_FRAME_LENGTH + 123, 6 * DEFAULT_FRAME_LENGTH + 123]) {
    it(`default frame size (${DEFAULT_FRAME_LENGTH} bytes): ${size} bytes through Keyhold and client-node both ways`, async () => {
      const plain = randomBytes(size);
      writeFileSync(file(`dflt-${size}.plain`), plain);
      const r = await cli(['encrypt', '--key', keyA, file(`dflt-${size}.plain`), '-o', file(`dflt-${size}.enc`)]);
      assert.equal(r.code, 0, r.stderr);
      const { plaintext, messageHeader } = await esdk.decrypt(esdkKeyring([keyA]), readFileSync(file(`dflt-${size}.enc`)));
      assert.equal(messageHeader.frameLength, DEFAULT_FRAME_LENGTH);
      assert.ok(Buffer.from(plaintext).equals(plain));
      const { result } = await esdk.encrypt(esdkKeyring([keyA]), plain, { frameLength: DEFAULT_FRAME_LENGTH });
      writeFileSync(file(`dflt-${size}.esdk`), result);
      const back = await decryptTo(file(`dflt-${size}.esdk`), `dflt-${size}.out`);
      assert.equal(back.code, 0, back.stderr);
      assert.ok(readFileSync(back.out).equals(plain));
    });
  }

  it('Keyhold --signed (suite 0x0578, ECDSA P-384) is read by client-node', async () => {
    const plain = randomBytes(2 * FRAME + 5);
    const enc = await encryptFile(plain, 'signed', ['--signed']);
    assert.match((await inspect(enc)).suite, /^0x0578/);
    const { plaintext, messageHeader } = await esdk.decrypt(esdkKeyring([keyA]), readFileSync(enc));
    assert.ok(Buffer.from(plaintext).equals(plain));
    assert.equal(messageHeader.suiteId, AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384);
    const back = await decryptTo(enc, 'signed.out');
    assert.equal(back.code, 0, back.stderr);
    assert.ok(readFileSync(back.out).equals(plain));
  });

  for (const [label, suiteId] of [
    ['signed default suite 0x0578', AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384],
    ['unsigned suite 0x0478', AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY],
  ] as const) {
    it(`client-node encrypts (${label}, two keys); Keyhold decrypts, inspects and verifies`, async () => {
      const plain = randomBytes(5 * 1000 + 3);
      const { result } = await esdk.encrypt(esdkKeyring([keyA, keyB]), plain, { encryptionContext: { tenant: 'acme' }, suiteId, frameLength: 1000 });
      const enc = file(`e2k-${suiteId}.enc`);
      writeFileSync(enc, result);
      const back = await decryptTo(enc, `e2k-${suiteId}.out`);
      assert.equal(back.code, 0, back.stderr);
      assert.ok(readFileSync(back.out).equals(plain));
      const h = await inspect(enc);
      assert.deepEqual(h.wrappingKeys.map((k) => k.keyArn), [keyA, keyB]);
      assert.equal(h.encryptionContext.tenant, 'acme');
      const v = await cli(['verify', '--json', enc]);
      assert.equal(v.code, 0, v.stderr);
      const report = JSON.parse(v.stdout);
      assert.equal(report.ok, true);
      assert.equal(report.frames, 6);
      assert.deepEqual(report.wrappingKeys.map((k: { state: string; keyVersion: number }) => [k.state, k.keyVersion]), [['Enabled', 1], ['Enabled', 1]]);
      // A wrong required context is refused.
      const wrong = await cli(['decrypt', '--context', 'tenant=other', enc, '-o', file('wrong-ctx.out')]);
      assert.equal(wrong.code, 3);
      assert.match(wrong.stderr, /encryption context mismatch/);
    });
  }

  describe('tampering, truncation, reordering and frame swaps fail with no plaintext released', () => {
    let plain: Buffer;
    let enc: string;
    let bytes: Buffer;
    let headerBytes: number;
    before(async () => {
      plain = randomBytes(4 * FRAME + 100);
      enc = await encryptFile(plain, 'victim');
      bytes = readFileSync(enc);
      headerBytes = (await inspect(enc)).headerBytes;
    });
    const frameAt = (i: number) => headerBytes + i * REGULAR_FRAME_BYTES; // i from 0
    async function expectRejected(name: string, data: Buffer, message: RegExp, referenceRejects = true) {
      const p = file(`${name}.enc`);
      writeFileSync(p, data);
      const r = await decryptTo(p, `${name}.out`);
      assert.equal(r.code, 3, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.exists, false, `${name}: plaintext output must not exist`);
      assert.deepEqual(r.leftovers, [], `${name}: no temporary file left behind`);
      const v = await cli(['verify', p]);
      assert.equal(v.code, 3, `${name}: verify must fail too`);
      // And the reference implementation agrees the message is bad.
      if (referenceRejects) await assert.rejects(esdk.decrypt(esdkKeyring([keyA]), data));
    }

    it('the untouched message decrypts (control)', async () => {
      const r = await decryptTo(enc, 'victim.out');
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(r.out).equals(plain));
    });
    it('a flipped bit in a frame', async () => {
      const t = Buffer.from(bytes);
      t[frameAt(2) + 16 + 100]! ^= 1;
      await expectRejected('flip-frame', t, /frame 3 fails authentication/);
    });
    it('a flipped bit in a frame tag', async () => {
      const t = Buffer.from(bytes);
      t[frameAt(1) + REGULAR_FRAME_BYTES - 1]! ^= 0x80;
      await expectRejected('flip-tag', t, /frame 2 fails authentication/);
    });
    it('a changed encryption context / header byte', async () => {
      const t = Buffer.from(bytes);
      t[headerBytes - 20]! ^= 1; // inside the header auth tag region
      await expectRejected('flip-header', t, /header|commitment/);
    });
    it('a changed commitment', async () => {
      const t = Buffer.from(bytes);
      t[headerBytes - 16 - 1]! ^= 1; // last byte of the commitment (suite data)
      await expectRejected('flip-commitment', t, /commitment/);
    });
    it('truncated before the final frame (at a frame boundary)', async () => {
      await expectRejected('trunc-boundary', bytes.subarray(0, frameAt(4)), /truncated/);
      // To stdout, verified frames stream out, but the exit status still says the message is bad.
      const s = await cli(['decrypt', file('trunc-boundary.enc')]);
      assert.equal(s.code, 3);
      assert.match(s.stderr, /truncated/);
    });
    it('truncated inside a frame and inside the header', async () => {
      await expectRejected('trunc-mid', bytes.subarray(0, frameAt(2) + 50), /truncated/);
      await expectRejected('trunc-header', bytes.subarray(0, 40), /truncated/);
    });
    it('the final frame cut short by one byte', async () => {
      await expectRejected('trunc-last', bytes.subarray(0, bytes.length - 1), /truncated/);
    });
    it('two frames swapped (reordered)', async () => {
      const t = Buffer.from(bytes);
      bytes.copy(t, frameAt(1), frameAt(2), frameAt(3));
      bytes.copy(t, frameAt(2), frameAt(1), frameAt(2));
      await expectRejected('reorder', t, /out of order/);
    });
    it('a frame removed, or duplicated', async () => {
      const removed = Buffer.concat([bytes.subarray(0, frameAt(1)), bytes.subarray(frameAt(2))]);
      await expectRejected('removed', removed, /out of order/);
      const dup = Buffer.concat([bytes.subarray(0, frameAt(2)), bytes.subarray(frameAt(1), frameAt(2)), bytes.subarray(frameAt(2))]);
      await expectRejected('dup', dup, /out of order/);
    });
    it('a frame swapped in from another message under the same key (same position)', async () => {
      const other = readFileSync(await encryptFile(randomBytes(plain.length), 'other'));
      const t = Buffer.from(bytes);
      other.copy(t, frameAt(1), frameAt(1), frameAt(2));
      await expectRejected('swap', t, /frame 2 fails authentication/);
    });
    it('bytes appended after the message (stricter than client-node, which ignores them)', async () => {
      await expectRejected('trailing', Buffer.concat([bytes, Buffer.from('x')]), /after the end/, false);
    });
    it('not a message at all', async () => {
      writeFileSync(file('plain.sql'), 'CREATE TABLE t (id int);\n');
      const r = await cli(['decrypt', file('plain.sql'), '-o', file('plain.out')]);
      assert.equal(r.code, 3);
      assert.match(r.stderr, /not an AWS Encryption SDK v2 message/);
      assert.equal(existsSync(file('plain.out')), false);
    });
  });

  it('streams stdin to stdout both ways', async () => {
    const plain = randomBytes(3 * 1024 * 1024 + 7);
    const e = await new Promise<Buffer>((resolve) => {
      import('node:child_process').then(({ spawn }) => {
        const p = spawn(process.execPath, ['bin/keyhold.js', 'backup', 'encrypt', '--key', keyA, '-'], { env: { ...process.env, ...env }, cwd: process.cwd() });
        const chunks: Buffer[] = [];
        p.stdout.on('data', (d: Buffer) => chunks.push(d));
        p.on('exit', () => resolve(Buffer.concat(chunks)));
        p.stdin.end(plain);
      });
    });
    assert.ok(e.length > plain.length);
    const { plaintext } = await esdk.decrypt(esdkKeyring([keyA]), e);
    assert.ok(Buffer.from(plaintext).equals(plain));
  });

  it('wraps under keys of two regions: either region alone decrypts', async () => {
    const plain = randomBytes(10_000);
    const enc = await encryptFile(plain, 'multi', ['--key', keyB]);
    const h = await inspect(enc);
    assert.deepEqual(h.wrappingKeys.map((k) => k.keyArn), [keyA, keyB]);
    assert.match(keyB, /:us-west-2:/);
    // Only the west key: the keyring is restricted to it.
    const west = await cli(['decrypt', '--key', keyB, enc, '-o', file('multi-west.out')]);
    assert.equal(west.code, 0, west.stderr);
    assert.ok(readFileSync(file('multi-west.out')).equals(plain));
    // With the east key disabled, discovery falls through to the west key.
    await server.kms().disableKey({ KeyId: keyA });
    try {
      const any = await cli(['decrypt', enc, '-o', file('multi-any.out')]);
      assert.equal(any.code, 0, any.stderr);
      assert.ok(readFileSync(file('multi-any.out')).equals(plain));
      const v = await cli(['verify', '--json', enc]);
      const report = JSON.parse(v.stdout);
      assert.deepEqual(report.wrappingKeys.map((k: { state: string }) => k.state), ['Disabled', 'Enabled']);
      // client-node with only the east key fails: the message is bound to its keys.
      await assert.rejects(esdk.decrypt(esdkKeyring([keyA]), readFileSync(enc)));
    } finally {
      await server.kms().enableKey({ KeyId: keyA });
    }
  });

  it('rewrap after a rotation rewrites only the header, in place', async () => {
    const plain = randomBytes(5 * FRAME);
    const enc = await encryptFile(plain, 'rewrap');
    const before = readFileSync(enc);
    const h1 = await inspect(enc);
    const v0 = h1.wrappingKeys[0]!.keyVersion!;
    await server.kms().rotateKeyOnDemand({ KeyId: keyA });
    const ino = statSync(enc).ino;
    const r = await cli(['rewrap', enc]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /in place/);
    const afterBytes = readFileSync(enc);
    const h2 = await inspect(enc);
    assert.equal(h2.wrappingKeys[0]!.keyVersion, v0 + 1);
    assert.equal(statSync(enc).ino, ino, 'same file, rewritten in place');
    assert.equal(afterBytes.length, before.length);
    assert.ok(afterBytes.subarray(h1.headerBytes).equals(before.subarray(h1.headerBytes)), 'body untouched');
    assert.ok(!afterBytes.subarray(0, h1.headerBytes).equals(before.subarray(0, h1.headerBytes)), 'header changed');
    const back = await decryptTo(enc, 'rewrap.out');
    assert.equal(back.code, 0, back.stderr);
    assert.ok(readFileSync(back.out).equals(plain));
    const { plaintext } = await esdk.decrypt(esdkKeyring([keyA]), afterBytes);
    assert.ok(Buffer.from(plaintext).equals(plain));
    // Rewrap to the other region's key: afterwards only that key opens it.
    const r2 = await cli(['rewrap', enc, '--to-key', keyB]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual((await inspect(enc)).wrappingKeys.map((k) => k.keyArn), [keyB]);
    const west = await decryptTo(enc, 'rewrap-west.out');
    assert.equal(west.code, 0, west.stderr);
    assert.ok(readFileSync(west.out).equals(plain));
  });

  it('memory stays bounded by the frame size: 256 MiB through encrypt and decrypt in-process', async () => {
    const settings = { endpoint: server.url, region: 'us-east-1', credentials: server.credentials, caBundle: server.caFile! };
    const total = 256 * 1024 * 1024;
    const chunk = randomBytes(1 << 20);
    async function* gen() {
      for (let i = 0; i < total / chunk.length; i++) yield chunk;
    }
    const hash = createHash('sha256');
    // Encrypt feeds decrypt through a bounded in-memory pipe (4 frames), so neither side may buffer.
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sample = () => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    const timer = setInterval(sample, 20);
    const queue: Buffer[] = [];
    let done = false;
    let wake: (() => void) | undefined;
    let space: (() => void) | undefined;
    const pipeSink: Sink = {
      async write(b) {
        while (queue.length >= 4) await new Promise<void>((r) => (space = r));
        queue.push(b);
        wake?.();
      },
    };
    async function* pipeSource() {
      for (;;) {
        while (!queue.length && !done) await new Promise<void>((r) => (wake = r));
        if (!queue.length && done) return;
        const b = queue.shift()!;
        space?.();
        yield b;
      }
    }
    let plainOut = 0;
    const outSink: Sink = { write: (b) => { plainOut += b.length; hash.update(b); } };
    const dec = decryptStream(pipeSource(), outSink, { keyring: new KmsKeyring(settings) });
    await encryptStream(gen(), pipeSink, { keyring: new KmsKeyring(settings, [keyA]) });
    done = true;
    wake?.();
    const r = await dec;
    clearInterval(timer);
    sample();
    assert.equal(plainOut, total);
    assert.equal(r.plaintextBytes, total);
    const expected = createHash('sha256');
    for (let i = 0; i < total / chunk.length; i++) expected.update(chunk);
    assert.equal(hash.digest('hex'), expected.digest('hex'));
    const growth = peak - rssBefore;
    assert.ok(growth < 96 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB for a 256 MiB message`);
  });
});
