import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeImportToken, isWellFormedImportToken, IMPORT_TOKEN_BYTES } from './import-token.js';
import { readRepoJson } from '../../test/helpers/repo.js';

interface Vectors {
  valid: { handle: string; token: string }[];
  invalid: { token: string; why: string }[];
}

test('frozen vectors test/vectors/import-token-v1.json: encoding and the well-formedness check', () => {
  const v = readRepoJson<Vectors>('test/vectors/import-token-v1.json');
  assert.ok(v.valid.length > 0 && v.invalid.length > 0);
  for (const c of v.valid) {
    const token = encodeImportToken(Buffer.from(c.handle, 'hex'));
    assert.equal(token.toString('hex'), c.token);
    assert.equal(token.length, IMPORT_TOKEN_BYTES);
    assert.ok(isWellFormedImportToken(token));
  }
  for (const c of v.invalid) assert.equal(isWellFormedImportToken(Buffer.from(c.token, 'hex')), false, c.why);
  assert.throws(() => encodeImportToken(Buffer.alloc(31)), RangeError);
});
