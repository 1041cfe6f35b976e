import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SerializationException, ValidationException } from '../../errors/index.js';
import { KMS_ROUTES } from './kms-routes.js';
import { blob, decodeInput, encodeOutput, int, internalName, list, map, str, struct, timestamp } from './schema.js';

describe('wire schema', () => {
  const shape = struct(
    { KeyId: str({ min: 1, max: 5 }), Plaintext: blob({ min: 1, max: 4, sensitive: true }), Limit: int({ min: 1, max: 10 }), Ctx: map(str()), Tags: list(struct({ TagKey: str({ min: 1 }) }, ['TagKey'])), Spec: str({ enum: ['A', 'B'] }) },
    ['KeyId'],
  );

  it('decodes wire names to camelCase, base64 to Buffers, and ignores unknown members', () => {
    const v = decodeInput(shape, { KeyId: 'k', Plaintext: 'AQID', Limit: 3, Ctx: { A: 'b' }, Tags: [{ TagKey: 't' }], Unknown: 1 });
    assert.deepEqual(v, { keyId: 'k', plaintext: Buffer.from([1, 2, 3]), limit: 3, ctx: { A: 'b' }, tags: [{ tagKey: 't' }] });
  });

  it('collects every constraint violation in AWS wording, hiding sensitive values', () => {
    assert.throws(
      () => decodeInput(shape, { KeyId: 'toolong', Plaintext: 'AQIDBAU=', Limit: 11, Spec: 'C', Tags: [{}] }),
      (e: Error) => {
        assert.ok(e instanceof ValidationException);
        assert.match(e.message, /^5 validation errors detected: /);
        assert.match(e.message, /Value 'toolong' at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 5/);
        assert.match(e.message, /Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4/);
        assert.match(e.message, /Value '11' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10/);
        assert.match(e.message, /Member must satisfy enum value set: \[A, B\]/);
        assert.match(e.message, /Value null at 'tags.1.member.tagKey' failed to satisfy constraint: Member must not be null/);
        return true;
      },
    );
    assert.throws(() => decodeInput(shape, {}), /Value null at 'keyId'/);
  });

  it('wrong JSON types are SerializationException', () => {
    for (const body of [{ KeyId: 1 }, { KeyId: 'k', Limit: '1' }, { KeyId: 'k', Plaintext: '***' }, { KeyId: 'k', Ctx: [] }, { KeyId: 'k', Tags: {} }, [], 'x']) {
      assert.throws(() => decodeInput(shape, body), SerializationException, JSON.stringify(body));
    }
  });

  it('encodes outputs: PascalCase, base64, epoch seconds; undefined members omitted', () => {
    const out = struct({ CiphertextBlob: blob(), AWSAccountId: str(), CreationDate: timestamp(), Missing: str() });
    assert.deepEqual(encodeOutput(out, { ciphertextBlob: Buffer.from([255]), awsAccountId: '1', creationDate: new Date(1500) }), {
      CiphertextBlob: '/w==', AWSAccountId: '1', CreationDate: 1.5,
    });
    assert.equal(internalName('AWSAccountId'), 'awsAccountId');
    assert.equal(internalName('KeyId'), 'keyId');
  });

  it('every KMS route names an operation whose name matches its target', () => {
    for (const [name, route] of Object.entries(KMS_ROUTES)) assert.equal(route.op.name, name);
  });
});
