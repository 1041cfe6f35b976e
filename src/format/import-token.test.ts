import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { encodeImportToken, isWellFormedImportToken, IMPORT_TOKEN_BYTES } from './import-token.js';

function repoRoot(): URL {
  for (const start of [new URL('./', import.meta.url), pathToFileURL(`${process.cwd()}/`)]) {
    for (let dir = start; ; ) {
      const pkg = new URL('package.json', dir);
      if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'keyhold') return dir;
      const up = new URL('../', dir);
      if (up.href === dir.href) break;
      dir = up;
    }
  }
  throw new Error('cannot find the repository root (a package.json named "keyhold")');
}

interface Vectors {
  valid: { handle: string; token: string }[];
  invalid: { token: string; why: string }[];
}

test('frozen vectors test/vectors/import-token-v1.json: encoding and the well-formedness check', () => {
  const v = JSON.parse(readFileSync(new URL('test/vectors/import-token-v1.json', repoRoot()), 'utf8')) as Vectors;
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
