import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SerializationException, ValidationException } from '../../errors/index.js';
import { KMS_ROUTES } from './kms-routes.js';
import { KEYHOLD_ROUTES } from './keyhold-routes.js';
import { CLOUDTRAIL_ROUTES } from './cloudtrail-routes.js';
import { any, blob, bool, decodeInput, encodeOutput, encodeOutputJson, int, internalName, list, map, str, struct, timestamp, type Shape } from './schema.js';

/** A value of the internal form of `shape`, with absent members, nulls and text JSON must escape. */
function sample(shape: Shape, rnd: () => number, depth = 0): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  switch (shape.kind) {
    case 'structure': {
      const out: Record<string, unknown> = {};
      for (const [wire, member] of Object.entries(shape.members)) {
        const r = rnd();
        if (r < 0.15) continue;
        out[internalName(wire)] = r < 0.2 ? null : r < 0.25 ? undefined : sample(member, rnd, depth + 1);
      }
      return out;
    }
    case 'string': return shape.enum ? pick([...shape.enum]) : pick(['', 'plain', 'quote " and \\ backslash', 'line\nbreak\u0001', 'ü ✓ \ud83d\udd11', 'arn:aws:kms:us-east-1:111122223333:key/x']);
    case 'blob': return Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
    case 'integer': return Math.floor(rnd() * 1e6) - 5;
    case 'boolean': return rnd() < 0.5;
    case 'timestamp': return rnd() < 0.5 ? new Date(Math.floor(rnd() * 2e12)) : Math.floor(rnd() * 2e12) + 0.5;
    case 'list': return depth > 4 ? [] : Array.from({ length: Math.floor(rnd() * 3) }, () => (rnd() < 0.1 ? undefined : sample(shape.member, rnd, depth + 1)));
    case 'map': {
      const out: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 3); i > 0; i--) out[pick(['k', 'K"q', 'ü', '__proto_', 'b'])] = rnd() < 0.1 ? undefined : sample(shape.value, rnd, depth + 1);
      return out;
    }
    case 'any': return pick([{ a: [1, 'x"y', null], b: { c: true } }, 'text', 3.25, null, [undefined, 2]]);
  }
}

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

  it('encodeOutputJson writes exactly the JSON text of JSON.stringify(encodeOutput(...)) for every route', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const routes = [...Object.values(KMS_ROUTES), ...Object.values(KEYHOLD_ROUTES), ...Object.values(CLOUDTRAIL_ROUTES)] as { output: Shape }[];
    let compared = 0;
    for (const route of routes) {
      for (let i = 0; i < 20; i++) {
        const v = sample(route.output, rnd);
        assert.equal(encodeOutputJson(route.output, v), JSON.stringify(encodeOutput(route.output, v) ?? {}));
        compared++;
      }
    }
    const mixed = struct({ A: any(), B: bool(), C: list(map(timestamp())), D: map(list(blob())), E: int() });
    for (let i = 0; i < 500; i++) {
      const v = sample(mixed, rnd);
      assert.equal(encodeOutputJson(mixed, v), JSON.stringify(encodeOutput(mixed, v) ?? {}));
    }
    assert.ok(compared > 100);
    assert.equal(encodeOutputJson(mixed, undefined), '{}');
    assert.equal(encodeOutputJson(struct({ CiphertextBlob: blob() }), { ciphertextBlob: Buffer.from([255]) }), '{"CiphertextBlob":"/w=="}');
  });

  it('every KMS route names an operation whose name matches its target', () => {
    for (const [name, route] of Object.entries(KMS_ROUTES)) assert.equal(route.op.name, name);
  });
});
