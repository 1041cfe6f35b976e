import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationException } from '../errors/index.js';
import { canonicalEncryptionContext } from './encryption-context.js';

const hex = (ctx?: Record<string, string>) => canonicalEncryptionContext(ctx).toString('hex');

test('absent and empty contexts are the two bytes 00 00', () => {
  assert.equal(hex(undefined), '0000');
  assert.equal(hex({}), '0000');
});

test('layout: u16 count, then u16 length + bytes for each key and value, big-endian', () => {
  assert.equal(hex({ a: 'bc' }), '0001' + '0001' + '61' + '0002' + '6263');
});

test('the same pairs in any order give identical bytes', () => {
  const a = canonicalEncryptionContext({ tenant: 'acme', purpose: 'backup', z: '', a: '1' });
  const b = canonicalEncryptionContext({ a: '1', z: '', purpose: 'backup', tenant: 'acme' });
  assert.deepEqual(a, b);
});

test('distinct contexts give distinct bytes', () => {
  const contexts: Array<Record<string, string>> = [
    {}, { a: 'bc' }, { ab: 'c' }, { abc: '' }, { '': 'abc' }, { a: 'b', c: '' }, { a: 'b' }, { a: 'B' },
    { a: 'bc', d: 'e' }, { a: 'bcd', e: '' }, { a: '\u0000' },
  ];
  const forms = contexts.map((c) => hex(c));
  assert.equal(new Set(forms).size, forms.length);
  assert.notEqual(hex({ a: 'bc' }), hex({ ab: 'c' }));
});

test('unicode keys are sorted by their UTF-8 bytes, not by UTF-16 code units', () => {
  // U+FF61 is EF BD A1 in UTF-8; U+1F600 is F0 9F 98 80 (a surrogate pair D83D DE00 in UTF-16).
  // UTF-16 order puts the emoji first (D83D < FF61); UTF-8 byte order puts it last (F0 > EF).
  const ctx = { '\u{1F600}': 'smile', '\uFF61': 'dot', 'é': 'e', z: 'z' };
  const bytes = canonicalEncryptionContext(ctx);
  const keys: string[] = [];
  let at = 2;
  for (let i = 0; i < bytes.readUInt16BE(0); i++) {
    const kl = bytes.readUInt16BE(at);
    keys.push(bytes.subarray(at + 2, at + 2 + kl).toString('utf8'));
    at += 2 + kl;
    at += 2 + bytes.readUInt16BE(at);
  }
  assert.equal(at, bytes.length);
  assert.deepEqual(keys, ['z', 'é', '\uFF61', '\u{1F600}']);
  assert.deepEqual(bytes, canonicalEncryptionContext({ z: 'z', '\uFF61': 'dot', 'é': 'e', '\u{1F600}': 'smile' }));
  assert.notEqual(hex({ 'é': 'x' }), hex({ 'e\u0301': 'x' })); // no normalization: different bytes
});

test('keys or values over 65535 UTF-8 bytes throw ValidationException; 65535 is fine', () => {
  assert.equal(canonicalEncryptionContext({ k: 'v'.repeat(65535) }).length, 2 + 2 + 1 + 2 + 65535);
  canonicalEncryptionContext({ ['k'.repeat(65535)]: 'v' });
  assert.throws(() => canonicalEncryptionContext({ k: 'v'.repeat(65536) }), ValidationException);
  assert.throws(() => canonicalEncryptionContext({ ['k'.repeat(65536)]: 'v' }), ValidationException);
  // 21846 three-byte characters = 65538 bytes, though only 21846 UTF-16 units
  assert.throws(() => canonicalEncryptionContext({ k: '\u20ac'.repeat(21846) }), /65535/);
});

test('unpaired surrogates and non-string values are refused with ValidationException', () => {
  // Both would encode to EF BF BD (U+FFFD) and so collide.
  assert.throws(() => canonicalEncryptionContext({ '\uD800': 'v' }), ValidationException);
  assert.throws(() => canonicalEncryptionContext({ k: 'a\uDC00' }), ValidationException);
  assert.throws(() => canonicalEncryptionContext({ k: 5 } as unknown as Record<string, string>), ValidationException);
});
