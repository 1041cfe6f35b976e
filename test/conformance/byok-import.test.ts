/**
 * Conformance: BYOK key import with AWS semantics, through the AWS SDK v3 over real HTTPS against a
 * server started in-process with an injected clock (so 24 hours and ValidTo pass without waiting).
 * The material is wrapped here the way AWS documents it, with node:crypto's OpenSSL: RSA-OAEP for
 * RSAES_OAEP_*, and RSA-OAEP of an AES-256 key followed by `id-aes256-wrap-pad` for RSA_AES_KEY_WRAP_*.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createCipheriv, publicEncrypt, randomBytes, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import type { KMS } from '@aws-sdk/client-kms';
import { parseServerConfig } from '../../src/config.js';
import { startServer as startInProcess, type RunningServer } from '../../src/main.js';
import { callKeyhold } from '../../src/cli/keyhold-client.js';
import { rejects } from '../helpers/assert.js';
import { readAuditEvents } from '../helpers/audit.js';
import { inProcessClient, newCredentials, startServer, tempDir } from '../helpers/server.js';

const DAY = 86400_000;
type Algorithm = 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_1' | 'RSA_AES_KEY_WRAP_SHA_256';
type Spec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096';

/** Wraps material under the public key from GetParametersForImport, as AWS's import procedure does. */
function wrap(publicKeyDer: Uint8Array, algorithm: Algorithm, material: Buffer): Buffer {
  const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  const oaepHash = algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
  const oaep = (data: Buffer) => publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  if (algorithm.startsWith('RSAES_OAEP')) return oaep(material);
  const aesKey = randomBytes(32);
  const c = createCipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('a65959a6', 'hex'));
  const wrapped = Buffer.concat([c.update(material), c.final()]);
  return Buffer.concat([oaep(aesKey), wrapped]);
}

interface Params { token: Uint8Array; publicKey: Uint8Array }

async function params(kms: KMS, keyId: string, algorithm: Algorithm = 'RSAES_OAEP_SHA_256', spec: Spec = 'RSA_2048'): Promise<Params> {
  const p = await kms.getParametersForImport({ KeyId: keyId, WrappingAlgorithm: algorithm, WrappingKeySpec: spec });
  return { token: p.ImportToken!, publicKey: p.PublicKey! };
}

async function importInto(kms: KMS, keyId: string, material: Buffer, opts: { algorithm?: Algorithm; spec?: Spec; validTo?: Date; importType?: 'NEW_KEY_MATERIAL' | 'EXISTING_KEY_MATERIAL' } = {}) {
  const p = await params(kms, keyId, opts.algorithm, opts.spec);
  return kms.importKeyMaterial({
    KeyId: keyId, ImportToken: p.token, EncryptedKeyMaterial: wrap(p.publicKey, opts.algorithm ?? 'RSAES_OAEP_SHA_256', material),
    ...(opts.validTo ? { ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: opts.validTo } : { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }),
    ...(opts.importType ? { ImportType: opts.importType } : {}),
  });
}

describe('BYOK: key import (Origin EXTERNAL)', () => {
  let offset = 0;
  const clock = { now: () => Date.now() + offset };
  const creds = newCredentials();
  const dataDir = join(tempDir(), 'data');
  const config = parseServerConfig(['--port', '0', '--data-dir', dataDir, '--log-level', 'error', '--job-interval-seconds', '3600'],
    { KEYHOLD_ROOT_ACCESS_KEY_ID: creds.accessKeyId, KEYHOLD_ROOT_SECRET_ACCESS_KEY: creds.secretAccessKey });
  let s: RunningServer;
  let kms: KMS;
  const restart = async () => {
    await s.close();
    s = await startInProcess(config, { clock, announce: () => undefined });
    kms = inProcessClient(s.url, dataDir, creds);
  };
  const external = async () => (await kms.createKey({ Origin: 'EXTERNAL', Description: 'byok' })).KeyMetadata!;

  before(async () => {
    s = await startInProcess(config, { clock, announce: () => undefined });
    kms = inProcessClient(s.url, dataDir, creds);
  });
  after(async () => {
    await s.close();
  });

  it('CreateKey Origin EXTERNAL makes a PendingImport key with no material; crypto on it is refused', async () => {
    const k = await external();
    assert.equal(k.Origin, 'EXTERNAL');
    assert.equal(k.KeyState, 'PendingImport');
    assert.equal(k.Enabled, false);
    assert.equal(k.CurrentKeyMaterialId, undefined);
    await rejects(kms.encrypt({ KeyId: k.KeyId!, Plaintext: Buffer.from('x') }), 'KMSInvalidStateException', /is pending import\.$/);
    await rejects(kms.enableKey({ KeyId: k.KeyId! }), 'KMSInvalidStateException', /pending import/);
    // Imported keys rotate only by importing new material.
    await rejects(kms.enableKeyRotation({ KeyId: k.KeyId! }), 'UnsupportedOperationException');
    assert.equal((await kms.getKeyRotationStatus({ KeyId: k.KeyId! })).KeyRotationEnabled, false);
  });

  for (const algorithm of ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256'] as const) {
    it(`imports material wrapped with ${algorithm} and encrypts and decrypts under it`, async () => {
      const k = await external();
      const material = randomBytes(32);
      const res = await importInto(kms, k.KeyId!, material, { algorithm });
      assert.match(res.KeyMaterialId!, /^[0-9a-f]{64}$/);
      assert.equal(res.KeyId, k.Arn);
      const d = (await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!;
      assert.equal(d.KeyState, 'Enabled');
      assert.equal(d.ExpirationModel, 'KEY_MATERIAL_DOES_NOT_EXPIRE');
      assert.equal(d.CurrentKeyMaterialId, res.KeyMaterialId);
      assert.equal(d.ValidTo, undefined);
      const ct = (await kms.encrypt({ KeyId: k.KeyId!, Plaintext: Buffer.from(`hello ${algorithm}`) })).CiphertextBlob!;
      assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: ct })).Plaintext!).toString(), `hello ${algorithm}`);
    });
  }

  for (const spec of ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const) {
    it(`GetParametersForImport gives a ${spec} public key valid for 24 hours, and it wraps working material`, async () => {
      const k = await external();
      const before = clock.now();
      const p = await kms.getParametersForImport({ KeyId: k.KeyId!, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256', WrappingKeySpec: spec });
      const pub = createPublicKey({ key: Buffer.from(p.PublicKey!), format: 'der', type: 'spki' });
      assert.equal(pub.asymmetricKeyDetails!.modulusLength, Number(spec.slice(4)));
      const validTo = p.ParametersValidTo!.getTime();
      assert.ok(validTo >= before + DAY - 2000 && validTo <= clock.now() + DAY + 1000, `ParametersValidTo ${p.ParametersValidTo!.toISOString()}`);
      await kms.importKeyMaterial({
        KeyId: k.KeyId!, ImportToken: p.ImportToken!, EncryptedKeyMaterial: wrap(p.PublicKey!, 'RSA_AES_KEY_WRAP_SHA_256', randomBytes(32)),
        ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      });
      await kms.encrypt({ KeyId: k.KeyId!, Plaintext: Buffer.from('x') });
    });
  }

  it('refuses RSAES_PKCS1_V1_5 (padding oracle), and import operations on keys that are not EXTERNAL', async () => {
    const k = await external();
    await rejects(kms.getParametersForImport({ KeyId: k.KeyId!, WrappingAlgorithm: 'RSAES_PKCS1_V1_5', WrappingKeySpec: 'RSA_2048' }), 'UnsupportedOperationException');
    const own = (await kms.createKey({})).KeyMetadata!;
    await rejects(kms.getParametersForImport({ KeyId: own.KeyId!, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }), 'UnsupportedOperationException');
    await rejects(kms.deleteImportedKeyMaterial({ KeyId: own.KeyId! }), 'UnsupportedOperationException');
  });

  it('tokens are single use, bound to their key, and expire after 24 hours; each gives its AWS error', async () => {
    const a = await external();
    const b = await external();
    const material = randomBytes(32);
    const pa = await params(kms, a.KeyId!);
    const pb = await params(kms, b.KeyId!);
    // b's token on a: InvalidImportTokenException, and b's token still works for b afterwards.
    await rejects(kms.importKeyMaterial({ KeyId: a.KeyId!, ImportToken: pb.token, EncryptedKeyMaterial: wrap(pb.publicKey, 'RSAES_OAEP_SHA_256', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }), 'InvalidImportTokenException');
    await kms.importKeyMaterial({ KeyId: b.KeyId!, ImportToken: pb.token, EncryptedKeyMaterial: wrap(pb.publicKey, 'RSAES_OAEP_SHA_256', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    // Used once: a second use is refused.
    await rejects(kms.importKeyMaterial({ KeyId: b.KeyId!, ImportToken: pb.token, EncryptedKeyMaterial: wrap(pb.publicKey, 'RSAES_OAEP_SHA_256', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }), 'InvalidImportTokenException');
    // Not a token at all.
    await rejects(kms.importKeyMaterial({ KeyId: a.KeyId!, ImportToken: randomBytes(33), EncryptedKeyMaterial: wrap(pa.publicKey, 'RSAES_OAEP_SHA_256', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }), 'InvalidImportTokenException');
    // 24 hours later a's token has expired.
    offset += DAY + 60_000;
    try {
      await rejects(kms.importKeyMaterial({ KeyId: a.KeyId!, ImportToken: pa.token, EncryptedKeyMaterial: wrap(pa.publicKey, 'RSAES_OAEP_SHA_256', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }), 'ExpiredImportTokenException');
      assert.equal((await kms.describeKey({ KeyId: a.KeyId! })).KeyMetadata!.KeyState, 'PendingImport');
    } finally {
      offset -= DAY + 60_000;
    }
  });

  it('every bad wrapped blob gets one and the same error (no padding oracle), and uses the token up', async () => {
    const k = await external();
    const material = randomBytes(32);
    const bad: [string, (p: Params) => Buffer][] = [
      ['random bytes of modulus length', () => randomBytes(256)],
      ['random bytes of another length', () => randomBytes(300)],
      ['one byte', () => Buffer.from([1])],
      ['SHA-1 OAEP where SHA-256 was asked', (p) => wrap(p.publicKey, 'RSAES_OAEP_SHA_1', material)],
      ['a flipped ciphertext bit', (p) => { const w = wrap(p.publicKey, 'RSAES_OAEP_SHA_256', material); w[7]! ^= 1; return w; }],
      ['16-byte material', (p) => wrap(p.publicKey, 'RSAES_OAEP_SHA_256', randomBytes(16))],
      ['33-byte material', (p) => wrap(p.publicKey, 'RSAES_OAEP_SHA_256', randomBytes(33))],
      ['PKCS#1 v1.5 padding', (p) => publicEncrypt({ key: createPublicKey({ key: Buffer.from(p.publicKey), format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_PADDING }, material)],
    ];
    const messages = new Set<string>();
    for (const [what, make] of bad) {
      const p = await params(kms, k.KeyId!);
      const e = await kms.importKeyMaterial({ KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: make(p), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }).then(
        () => assert.fail(`${what}: accepted`), (err: Error) => err);
      assert.equal(e.name, 'InvalidCiphertextException', `${what}: ${e.name} ${e.message}`);
      messages.add(e.message);
      // The token answered its one unwrap attempt; a good blob with it is now refused.
      await rejects(kms.importKeyMaterial({ KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: wrap(p.publicKey, 'RSAES_OAEP_SHA_256', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }), 'InvalidImportTokenException');
    }
    assert.equal(messages.size, 1, `different messages: ${[...messages].join(' | ')}`);
    // AES key wrap: a bad RFC 5649 integrity check and a bad RSA part look the same too.
    for (const tamper of ['rsa', 'kwp'] as const) {
      const p = await params(kms, k.KeyId!, 'RSA_AES_KEY_WRAP_SHA_256');
      const w = wrap(p.publicKey, 'RSA_AES_KEY_WRAP_SHA_256', material);
      w[tamper === 'rsa' ? 10 : w.length - 3]! ^= 0x40;
      const e = await kms.importKeyMaterial({ KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: w, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }).then(() => assert.fail('accepted'), (err: Error) => err);
      assert.equal(e.name, 'InvalidCiphertextException');
      assert.equal(e.message, [...messages][0]);
    }
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.KeyState, 'PendingImport');
  });

  it('ValidTo: at most 365 days ahead, required with KEY_MATERIAL_EXPIRES, refused without; mistakes do not spend the token', async () => {
    const k = await external();
    const material = randomBytes(32);
    const p = await params(kms, k.KeyId!);
    const enc = wrap(p.publicKey, 'RSAES_OAEP_SHA_256', material);
    const base = { KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: enc };
    await rejects(kms.importKeyMaterial({ ...base, ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(clock.now() + 366 * DAY) }), 'ValidationException', /365 days/);
    await rejects(kms.importKeyMaterial({ ...base, ExpirationModel: 'KEY_MATERIAL_EXPIRES' }), 'ValidationException', /validTo date must be set/);
    await rejects(kms.importKeyMaterial({ ...base, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE', ValidTo: new Date(clock.now() + DAY) }), 'ValidationException');
    await rejects(kms.importKeyMaterial({ ...base, ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(clock.now() - DAY) }), 'ValidationException');
    const validTo = new Date(clock.now() + 365 * DAY - 60_000);
    await kms.importKeyMaterial({ ...base, ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: validTo });
    const d = (await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!;
    assert.equal(d.ExpirationModel, 'KEY_MATERIAL_EXPIRES');
    assert.equal(Math.floor(d.ValidTo!.getTime() / 1000), Math.floor(validTo.getTime() / 1000));
  });

  it('expiry by the job returns the key to PendingImport; re-importing the same material restores old ciphertexts, other material is refused', async () => {
    const k = await external();
    const material = randomBytes(32);
    const first = await importInto(kms, k.KeyId!, material, { validTo: new Date(clock.now() + 10 * DAY), algorithm: 'RSA_AES_KEY_WRAP_SHA_1' });
    const ct = (await kms.encrypt({ KeyId: k.KeyId!, Plaintext: Buffer.from('kept'), EncryptionContext: { a: 'b' } })).CiphertextBlob!;
    offset += 9 * DAY;
    await s.jobs.tick();
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.KeyState, 'Enabled', 'expired early');
    offset += 2 * DAY;
    try {
      // Expiry is carried out even when it came due while the server was down.
      await restart();
      await s.jobs.tick();
      const d = (await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!;
      assert.equal(d.KeyState, 'PendingImport');
      assert.equal(d.CurrentKeyMaterialId, undefined);
      await rejects(kms.decrypt({ CiphertextBlob: ct, EncryptionContext: { a: 'b' } }), 'KMSInvalidStateException', /is pending import\.$/);
      const ev = readAuditEvents(dataDir).find((e) => e.eventName === 'DeleteExpiredKeyMaterial' && e.resources.some((r) => r.arn === k.Arn));
      assert.ok(ev, 'no DeleteExpiredKeyMaterial audit event');
      assert.equal(ev.details?.keyMaterialId, first.KeyMaterialId);

      await rejects(importInto(kms, k.KeyId!, randomBytes(32)), 'IncorrectKeyMaterialException');
      const again = await importInto(kms, k.KeyId!, material, { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' });
      assert.equal(again.KeyMaterialId, first.KeyMaterialId);
      assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.KeyState, 'Enabled');
      assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: ct, EncryptionContext: { a: 'b' } })).Plaintext!).toString(), 'kept');
    } finally {
      offset -= 11 * DAY;
    }
  });

  it('DeleteImportedKeyMaterial makes the key PendingImport at once, says which material went, and re-import restores it', async () => {
    const k = await external();
    const material = randomBytes(32);
    const imp = await importInto(kms, k.KeyId!, material);
    const ct = (await kms.encrypt({ KeyId: k.KeyId!, Plaintext: Buffer.from('gone and back') })).CiphertextBlob!;
    const del = await kms.deleteImportedKeyMaterial({ KeyId: k.KeyId! });
    assert.equal(del.KeyMaterialId, imp.KeyMaterialId);
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.KeyState, 'PendingImport');
    await rejects(kms.decrypt({ CiphertextBlob: ct }), 'KMSInvalidStateException');
    await rejects(kms.deleteImportedKeyMaterial({ KeyId: k.KeyId! }), 'KMSInvalidStateException');
    const ev = readAuditEvents(dataDir).find((e) => e.eventName === 'DeleteImportedKeyMaterial' && e.resources.some((r) => r.arn === k.Arn));
    assert.equal(ev?.details?.keyMaterialId, imp.KeyMaterialId);
    await importInto(kms, k.KeyId!, material);
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: ct })).Plaintext!).toString(), 'gone and back');
  });

  it('NEW_KEY_MATERIAL then RotateKeyOnDemand: new current material, KeyMaterialId changes, old ciphertexts still decrypt', async () => {
    const k = await external();
    const m1 = randomBytes(32);
    const m2 = randomBytes(32);
    await rejects(importInto(kms, k.KeyId!, m1, { importType: 'NEW_KEY_MATERIAL' }).then(() => kms.rotateKeyOnDemand({ KeyId: k.KeyId! })), 'UnsupportedOperationException');
    const id1 = (await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.CurrentKeyMaterialId!;
    const ct1 = (await kms.encrypt({ KeyId: k.KeyId!, Plaintext: Buffer.from('one') })).CiphertextBlob!;
    // The same material is not new.
    await rejects(importInto(kms, k.KeyId!, m1, { importType: 'NEW_KEY_MATERIAL' }), 'IncorrectKeyMaterialException');
    const imp2 = await importInto(kms, k.KeyId!, m2, { importType: 'NEW_KEY_MATERIAL' });
    assert.notEqual(imp2.KeyMaterialId, id1);
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.CurrentKeyMaterialId, id1, 'current before rotation');
    await kms.rotateKeyOnDemand({ KeyId: k.KeyId! });
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.CurrentKeyMaterialId, imp2.KeyMaterialId);
    const rotations = (await kms.listKeyRotations({ KeyId: k.KeyId! })).Rotations!;
    assert.equal(rotations.length, 1);
    assert.equal(rotations[0]!.RotationType, 'ON_DEMAND');
    const ct2 = (await kms.encrypt({ KeyId: k.KeyId!, Plaintext: Buffer.from('two') })).CiphertextBlob!;
    const d1 = await kms.decrypt({ CiphertextBlob: ct1 });
    const d2 = await kms.decrypt({ CiphertextBlob: ct2 });
    assert.equal(Buffer.from(d1.Plaintext!).toString(), 'one');
    assert.equal(Buffer.from(d2.Plaintext!).toString(), 'two');
    // Decrypt names the material that decrypted.
    assert.equal(d1.KeyMaterialId, id1);
    assert.equal(d2.KeyMaterialId, imp2.KeyMaterialId);
    // Nothing pending any more: another rotation has nothing to rotate to.
    await rejects(kms.rotateKeyOnDemand({ KeyId: k.KeyId! }), 'UnsupportedOperationException');
    // Deleting the old (non-current) material: its ciphertexts stop decrypting, the key stays Enabled.
    await kms.deleteImportedKeyMaterial({ KeyId: k.KeyId!, KeyMaterialId: id1 });
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.KeyState, 'Enabled');
    await rejects(kms.decrypt({ CiphertextBlob: ct1 }), 'KMSInvalidStateException');
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: ct2 })).Plaintext!).toString(), 'two');
  });

  it('a token used by three concurrent imports serves exactly one of them', async () => {
    const k = await external();
    const p = await params(kms, k.KeyId!);
    const enc = wrap(p.publicKey, 'RSAES_OAEP_SHA_256', randomBytes(32));
    const req = () => kms.importKeyMaterial({ KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: enc, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    const results = await Promise.allSettled([req(), req(), req()]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as Error).name, 'InvalidImportTokenException');
  });

  it('the audit log and the data dir never hold the imported material or the import token in the clear', async () => {
    const k = await external();
    const material = randomBytes(32);
    const p = await params(kms, k.KeyId!, 'RSA_AES_KEY_WRAP_SHA_256');
    await kms.importKeyMaterial({ KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: wrap(p.publicKey, 'RSA_AES_KEY_WRAP_SHA_256', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    const events = readAuditEvents(dataDir).filter((e) => e.resources.some((r) => r.arn === k.Arn));
    assert.deepEqual(events.map((e) => e.eventName).filter((n) => n !== 'DescribeKey'), ['CreateKey', 'GetParametersForImport', 'ImportKeyMaterial']);
    const text = JSON.stringify(events);
    for (const secret of [material, Buffer.from(p.token)]) {
      for (const form of [secret.toString('hex'), secret.toString('base64'), secret.toString('base64url')]) assert.ok(!text.includes(form), 'secret in the audit log');
    }
    // The store on disk: neither the material nor the token appear in any file of the data dir.
    const { readdirSync, readFileSync, statSync } = await import('node:fs');
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
    for (const f of walk(dataDir)) {
      const bytes = readFileSync(f);
      assert.equal(bytes.indexOf(material), -1, `material in ${f}`);
      assert.equal(bytes.indexOf(Buffer.from(p.token)), -1, `token in ${f}`);
    }
  });

  it('key deletion: a PendingImport key can be scheduled for deletion, and cancelling returns it to PendingImport', async () => {
    const k = await external();
    await kms.scheduleKeyDeletion({ KeyId: k.KeyId!, PendingWindowInDays: 7 });
    await rejects(kms.getParametersForImport({ KeyId: k.KeyId!, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }), 'KMSInvalidStateException', /pending deletion/);
    await kms.cancelKeyDeletion({ KeyId: k.KeyId! });
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.KeyState, 'PendingImport');
    await importInto(kms, k.KeyId!, randomBytes(32));
    await kms.scheduleKeyDeletion({ KeyId: k.KeyId!, PendingWindowInDays: 7 });
    await kms.cancelKeyDeletion({ KeyId: k.KeyId! });
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.KeyState, 'Disabled');
    // Deleted by the job after the window, material and all.
    await kms.scheduleKeyDeletion({ KeyId: k.KeyId!, PendingWindowInDays: 7 });
    offset += 8 * DAY;
    try {
      await s.jobs.tick();
      await rejects(kms.describeKey({ KeyId: k.KeyId! }), 'NotFoundException');
    } finally {
      offset -= 8 * DAY;
    }
  });

  it('loss protection: deleting or expiring imported material that registered backups depend on is flagged in its audit event', async () => {
    const settings = { endpoint: s.url, region: 'us-east-1', credentials: creds, caBundle: join(dataDir, 'tls', 'ca.pem') };
    const register = (arn: string, messageId: string, keyVersion?: number) => callKeyhold(settings, 'RegisterBackup', {
      MessageId: messageId, Location: `s3://backups/${messageId.slice(0, 8)}`, SizeBytes: 1024, Suite: 'AES_256_GCM_HKDF_SHA512_COMMIT_KEY',
      WrappingKeys: [{ KeyArn: arn, ...(keyVersion ? { KeyVersion: keyVersion } : {}) }],
    });
    const withBackup = await external();
    const without = await external();
    await importInto(kms, withBackup.KeyId!, randomBytes(32));
    await importInto(kms, without.KeyId!, randomBytes(32));
    const b1 = randomBytes(32).toString('hex');
    const b2 = randomBytes(32).toString('hex');
    await register(withBackup.Arn!, b1, 1);
    await register(withBackup.Arn!, b2);
    // A backup of another version of the key does not count.
    await register(without.Arn!, randomBytes(32).toString('hex'), 2);
    await kms.deleteImportedKeyMaterial({ KeyId: withBackup.KeyId! });
    await kms.deleteImportedKeyMaterial({ KeyId: without.KeyId! });
    const deletion = (arn: string) => readAuditEvents(dataDir).find((e) => e.eventName === 'DeleteImportedKeyMaterial' && e.resources.some((r) => r.arn === arn))!;
    assert.equal(deletion(withBackup.Arn!).details?.backupsDependOnMaterial, true);
    assert.equal(deletion(withBackup.Arn!).details?.dependentBackupCount, 2);
    assert.deepEqual(((deletion(withBackup.Arn!).details?.dependentBackups as { messageId: string }[]).map((b) => b.messageId)).sort(), [b1, b2].sort());
    assert.equal(deletion(without.Arn!).details?.backupsDependOnMaterial, false);

    // Expiry by the job is flagged the same way.
    const expiring = await external();
    await importInto(kms, expiring.KeyId!, randomBytes(32), { validTo: new Date(clock.now() + 2 * DAY) });
    const b3 = randomBytes(32).toString('hex');
    await register(expiring.Arn!, b3, 1);
    offset += 3 * DAY;
    try {
      await s.jobs.tick();
    } finally {
      offset -= 3 * DAY;
    }
    const exp = readAuditEvents(dataDir).find((e) => e.eventName === 'DeleteExpiredKeyMaterial' && e.resources.some((r) => r.arn === expiring.Arn))!;
    assert.equal(exp.details?.backupsDependOnMaterial, true);
    assert.deepEqual((exp.details?.dependentBackups as { messageId: string }[]).map((b) => b.messageId), [b3]);
  });

  it('import parameters survive a restart', async () => {
    const k = await external();
    const p = await params(kms, k.KeyId!, 'RSA_AES_KEY_WRAP_SHA_256');
    await restart();
    await kms.importKeyMaterial({ KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: wrap(p.publicKey, 'RSA_AES_KEY_WRAP_SHA_256', randomBytes(32)), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    assert.equal((await kms.describeKey({ KeyId: k.KeyId! })).KeyMetadata!.KeyState, 'Enabled');
  });
});

describe('BYOK across --workers 2', () => {
  it('parameters issued by one worker are consumed by another, once', async () => {
    const s = await startServer({ args: ['--workers', '2'] });
    try {
      const admin = s.kms();
      const material = randomBytes(32);
      for (let i = 0; i < 3; i++) {
        const k = (await admin.createKey({ Origin: 'EXTERNAL' })).KeyMetadata!;
        // Separate clients, separate connections: the primary hands them to the workers in turn.
        const issuer = s.kms();
        const p = await params(issuer, k.KeyId!);
        const importer = s.kms();
        const enc = wrap(p.publicKey, 'RSAES_OAEP_SHA_256', material);
        await importer.importKeyMaterial({ KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: enc, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
        await rejects(s.kms().importKeyMaterial({ KeyId: k.KeyId!, ImportToken: p.token, EncryptedKeyMaterial: enc, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }), 'InvalidImportTokenException');
        const ct = (await s.kms().encrypt({ KeyId: k.KeyId!, Plaintext: Buffer.from('w') })).CiphertextBlob!;
        assert.equal(Buffer.from((await s.kms().decrypt({ CiphertextBlob: ct })).Plaintext!).toString(), 'w');
        // Deleted on one worker, refused on the other at once.
        await s.kms().deleteImportedKeyMaterial({ KeyId: k.KeyId! });
        await rejects(s.kms().decrypt({ CiphertextBlob: ct }), 'KMSInvalidStateException');
      }
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});
