import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scryptKey } from './scrypt.js';

test('scryptKey matches the RFC 7914 §12 vector (N=1024, r=8, p=16)', async () => {
  const key = await scryptKey('password', Buffer.from('NaCl'), { N: 1024, r: 8, p: 16 }, 64);
  assert.equal(
    key.toString('hex'),
    'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162' +
      '2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
  );
});

test('scryptKey raises maxmem for strong parameters (N=2^15, r=8 needs > 32 MiB)', async () => {
  const key = await scryptKey(Buffer.from('pass'), Buffer.alloc(16, 1), { N: 1 << 15, r: 8, p: 1 });
  assert.equal(key.length, 32);
});

test('scryptKey rejects invalid or unbounded parameters', async () => {
  const salt = Buffer.alloc(16);
  await assert.rejects(scryptKey('x', salt, { N: 1000, r: 8, p: 1 }), RangeError);
  await assert.rejects(scryptKey('x', salt, { N: 1, r: 8, p: 1 }), RangeError);
  await assert.rejects(scryptKey('x', salt, { N: 1024, r: 0, p: 1 }), RangeError);
  await assert.rejects(scryptKey('x', salt, { N: 2 ** 30, r: 8, p: 1 }), RangeError);
  await assert.rejects(scryptKey('x', salt, { N: 1024, r: 8, p: 1 }, 0), RangeError);
});
