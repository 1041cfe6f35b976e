/**
 * Conformance: Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, GenerateRandom and their AWS error
 * cases (../shared/notes/AWS-KMS-FACTS.md §3, cases 1-6, 14, 15) through the AWS SDK over HTTPS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KMS } from '@aws-sdk/client-kms';
import { rejects } from '../helpers/assert.js';
import { startServer, type TestServer } from '../helpers/server.js';


describe('KMS cryptographic operations (AWS SDK v3, HTTPS)', () => {
  let server: TestServer;
  let kms: KMS;
  let keyId: string;
  let keyArn: string;
  let otherKeyId: string;

  before(async () => {
    server = await startServer();
    kms = server.kms();
    const k = await kms.createKey({ Description: 'crypto' });
    keyId = k.KeyMetadata!.KeyId!;
    keyArn = k.KeyMetadata!.Arn!;
    otherKeyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
    await kms.createAlias({ AliasName: 'alias/crypto', TargetKeyId: keyId });
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('Encrypt and Decrypt round-trip, with and without KeyId, returning the full key ARN', async () => {
    const plaintext = randomBytes(100);
    const e = await kms.encrypt({ KeyId: 'alias/crypto', Plaintext: plaintext, EncryptionContext: { tenant: 'a', purpose: 'test' } });
    assert.equal(e.KeyId, keyArn);
    assert.equal(e.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    assert.ok(e.CiphertextBlob!.length <= 6144);
    assert.ok(!Buffer.from(e.CiphertextBlob!).includes(plaintext.subarray(0, 16)), 'ciphertext must not contain the plaintext');
    const d = await kms.decrypt({ CiphertextBlob: e.CiphertextBlob!, EncryptionContext: { purpose: 'test', tenant: 'a' } });
    assert.deepEqual(Buffer.from(d.Plaintext!), plaintext);
    assert.equal(d.KeyId, keyArn);
    assert.equal(d.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    const d2 = await kms.decrypt({ CiphertextBlob: e.CiphertextBlob!, KeyId: keyArn, EncryptionContext: { tenant: 'a', purpose: 'test' } });
    assert.deepEqual(Buffer.from(d2.Plaintext!), plaintext);
    // Two encryptions of the same plaintext differ (random nonce and IV).
    const e2 = await kms.encrypt({ KeyId: keyId, Plaintext: plaintext });
    const e3 = await kms.encrypt({ KeyId: keyId, Plaintext: plaintext });
    assert.notDeepEqual(Buffer.from(e2.CiphertextBlob!), Buffer.from(e3.CiphertextBlob!));
  });

  it('plaintext limits: 1 to 4096 bytes', async () => {
    const max = await kms.encrypt({ KeyId: keyId, Plaintext: randomBytes(4096) });
    assert.ok(max.CiphertextBlob!.length <= 6144);
    await rejects(
      kms.encrypt({ KeyId: keyId, Plaintext: randomBytes(4097) }),
      'ValidationException',
      "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    );
    await rejects(kms.encrypt({ KeyId: keyId, Plaintext: Buffer.alloc(0) }), 'ValidationException', /plaintext.*greater than or equal to 1/);
  });

  it('a wrong, missing or extra encryption context fails the same way; reordered pairs succeed', async () => {
    const e = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('ctx'), EncryptionContext: { a: '1', b: '2' } });
    for (const ctx of [undefined, { a: "1" }, { a: "1", b: "3" }, { a: "1", b: "2", c: "3" }, { ab: "12" }] as (Record<string, string> | undefined)[]) {
      await rejects(kms.decrypt({ CiphertextBlob: e.CiphertextBlob!, EncryptionContext: ctx }), 'InvalidCiphertextException');
    }
    const ok = await kms.decrypt({ CiphertextBlob: e.CiphertextBlob!, EncryptionContext: { b: '2', a: '1' } });
    assert.equal(Buffer.from(ok.Plaintext!).toString(), 'ctx');
  });

  it('tampered, truncated, foreign and garbage blobs all give InvalidCiphertextException with no detail', async () => {
    const blob = Buffer.from((await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('secret data') })).CiphertextBlob!);
    const variants: Buffer[] = [];
    for (const cut of [1, 16, 17, blob.length - 1]) variants.push(blob.subarray(0, blob.length - cut));
    variants.push(blob.subarray(1), blob.subarray(0, 1));
    for (const pos of [0, 1, 5, 40, 60, 75, blob.length - 20, blob.length - 1]) {
      const t = Buffer.from(blob);
      t[pos]! ^= 0x01;
      variants.push(t);
    }
    variants.push(randomBytes(200), Buffer.from('AQID'), Buffer.concat([blob, Buffer.from([0])]));
    // A blob in another format (an AWS-style header) and one naming a key that does not exist.
    variants.push(Buffer.concat([Buffer.from([1, 2, 3, 0, 0x78]), randomBytes(179)]));
    const unknownKey = Buffer.from(blob);
    unknownKey.write('00000000-0000-4000-8000-000000000000', 2, 'ascii');
    variants.push(unknownKey);
    for (const v of variants) {
      await rejects(kms.decrypt({ CiphertextBlob: v }), 'InvalidCiphertextException');
    }
    await rejects(kms.decrypt({ CiphertextBlob: randomBytes(6145) }), 'ValidationException', /ciphertextBlob.*less than or equal to 6144/);
    await rejects(kms.decrypt({ CiphertextBlob: Buffer.alloc(0) }), 'ValidationException');
  });

  it('a KeyId that does not match the blob gives IncorrectKeyException', async () => {
    const e = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('mine') });
    await rejects(
      kms.decrypt({ CiphertextBlob: e.CiphertextBlob!, KeyId: otherKeyId }),
      'IncorrectKeyException',
      'The key ID in the request does not identify a CMK that can perform this operation.',
    );
    await rejects(kms.reEncrypt({ CiphertextBlob: e.CiphertextBlob!, SourceKeyId: otherKeyId, DestinationKeyId: keyId }), 'IncorrectKeyException');
    await rejects(kms.decrypt({ CiphertextBlob: e.CiphertextBlob!, KeyId: 'fake-key-id' }), 'NotFoundException');
  });

  it('ReEncrypt moves a ciphertext to another key and context without exposing plaintext', async () => {
    const e = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('move me'), EncryptionContext: { v: '1' } });
    const r = await kms.reEncrypt({
      CiphertextBlob: e.CiphertextBlob!, SourceEncryptionContext: { v: '1' }, DestinationKeyId: otherKeyId, DestinationEncryptionContext: { v: '2' },
    });
    assert.equal(r.SourceKeyId, keyArn);
    assert.match(r.KeyId!, new RegExp(`key/${otherKeyId}$`));
    assert.equal(r.SourceEncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    assert.equal(r.DestinationEncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
    assert.equal((r as unknown as Record<string, unknown>).Plaintext, undefined);
    const d = await kms.decrypt({ CiphertextBlob: r.CiphertextBlob!, EncryptionContext: { v: '2' } });
    assert.equal(Buffer.from(d.Plaintext!).toString(), 'move me');
    assert.match(d.KeyId!, new RegExp(`key/${otherKeyId}$`));
    await rejects(kms.reEncrypt({ CiphertextBlob: e.CiphertextBlob!, DestinationKeyId: otherKeyId }), 'InvalidCiphertextException');
  });

  it('GenerateDataKey gives a usable data key whose blob decrypts to the same bytes (envelope encryption)', async () => {
    const g = await kms.generateDataKey({ KeyId: 'alias/crypto', KeySpec: 'AES_256', EncryptionContext: { file: 'x' } });
    assert.equal(g.KeyId, keyArn);
    assert.equal(g.Plaintext!.length, 32);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', g.Plaintext!, iv);
    const body = Buffer.concat([c.update('bulk data'), c.final()]);
    const tag = c.getAuthTag();
    const d = await kms.decrypt({ CiphertextBlob: g.CiphertextBlob!, EncryptionContext: { file: 'x' } });
    const dc = createDecipheriv('aes-256-gcm', d.Plaintext!, iv);
    dc.setAuthTag(tag);
    assert.equal(Buffer.concat([dc.update(body), dc.final()]).toString(), 'bulk data');
    assert.equal((await kms.generateDataKey({ KeyId: keyId, KeySpec: 'AES_128' })).Plaintext!.length, 16);
    assert.equal((await kms.generateDataKey({ KeyId: keyId, NumberOfBytes: 1024 })).Plaintext!.length, 1024);
    await rejects(kms.generateDataKey({ KeyId: keyId }), 'ValidationException', /number of bytes or key spec/);
    await rejects(kms.generateDataKey({ KeyId: keyId, KeySpec: 'AES_256', NumberOfBytes: 32 }), 'ValidationException');
    await rejects(kms.generateDataKey({ KeyId: keyId, NumberOfBytes: 1025 }), 'ValidationException', /numberOfBytes.*less than or equal to 1024/);
    await rejects(kms.generateDataKey({ KeyId: keyId, KeySpec: 'AES_512' as 'AES_256' }), 'ValidationException', /enum value set/);
  });

  it('GenerateDataKeyWithoutPlaintext returns only the blob, which decrypts', async () => {
    const g = await kms.generateDataKeyWithoutPlaintext({ KeyId: keyId, KeySpec: 'AES_256' });
    assert.equal((g as unknown as Record<string, unknown>).Plaintext, undefined);
    assert.equal(g.KeyId, keyArn);
    const d = await kms.decrypt({ CiphertextBlob: g.CiphertextBlob! });
    assert.equal(d.Plaintext!.length, 32);
  });

  it('GenerateRandom: 1 to 1024 bytes, NumberOfBytes required', async () => {
    const a = await kms.generateRandom({ NumberOfBytes: 64 });
    const b = await kms.generateRandom({ NumberOfBytes: 64 });
    assert.equal(a.Plaintext!.length, 64);
    assert.notDeepEqual(Buffer.from(a.Plaintext!), Buffer.from(b.Plaintext!));
    await rejects(kms.generateRandom({}), 'ValidationException', 'NumberOfBytes is required.');
    await rejects(kms.generateRandom({ NumberOfBytes: 0 }), 'ValidationException');
    await rejects(kms.generateRandom({ NumberOfBytes: 1025 }), 'ValidationException');
  });

  it('DryRun answers DryRunOperationException and does nothing', async () => {
    await rejects(kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('x'), DryRun: true }), 'DryRunOperationException');
    const e = await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') });
    await rejects(kms.decrypt({ CiphertextBlob: e.CiphertextBlob!, DryRun: true }), 'DryRunOperationException');
    await rejects(kms.generateDataKey({ KeyId: keyId, KeySpec: 'AES_256', DryRun: true }), 'DryRunOperationException');
    await rejects(kms.reEncrypt({ CiphertextBlob: e.CiphertextBlob!, DestinationKeyId: otherKeyId, DryRun: true }), 'DryRunOperationException');
  });

  it('an unsupported EncryptionAlgorithm for a symmetric key is InvalidKeyUsageException', async () => {
    await rejects(kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }), 'InvalidKeyUsageException');
  });
});
