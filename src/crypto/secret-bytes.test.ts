import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { SecretBytes } from './secret-bytes.js';

const KEY_HEX = '00112233445566778899aabbccddeeff';

test('SecretBytes.from takes a copy: changing the source does not change the secret', () => {
  const src = Buffer.from(KEY_HEX, 'hex');
  const s = SecretBytes.from(src);
  src.fill(0);
  assert.equal(s.insecureExpose().toString('hex'), KEY_HEX);
  assert.equal(s.length, 16);
});

test('SecretBytes.random gives n fresh bytes', () => {
  const a = SecretBytes.random(32);
  const b = SecretBytes.random(32);
  assert.equal(a.length, 32);
  assert.equal(a.equals(b), false);
  assert.equal(SecretBytes.random(0).length, 0);
  assert.throws(() => SecretBytes.random(-1), RangeError);
  assert.throws(() => SecretBytes.random(1.5), RangeError);
});

test('insecureExpose returns the underlying buffer, not a copy', () => {
  const s = SecretBytes.from(Buffer.from(KEY_HEX, 'hex'));
  assert.equal(s.insecureExpose(), s.insecureExpose());
});

test('String(), template literals, JSON.stringify and util.inspect print [redacted]', () => {
  const s = SecretBytes.from(Buffer.from(KEY_HEX, 'hex'));
  assert.equal(String(s), '[redacted]');
  assert.equal(`${s}`, '[redacted]');
  assert.equal(s.toString(), '[redacted]');
  assert.equal(JSON.stringify(s), '"[redacted]"');
  assert.equal(JSON.stringify({ key: s }), '{"key":"[redacted]"}');
  assert.equal(inspect(s), '[redacted]');
  const deep = inspect({ nested: { key: s } }, { showHidden: true, depth: Infinity });
  assert.match(deep, /\[redacted\]/);
  for (const shown of [deep, inspect(s, { showHidden: true }), JSON.stringify([s])]) {
    assert.ok(!shown.includes(KEY_HEX) && !shown.includes('0x00'), shown);
    assert.ok(!shown.includes('<Buffer'), shown);
  }
  assert.deepEqual(Object.keys(s), []);
});

test('equals compares contents in constant time and is false on a length mismatch', () => {
  const a = SecretBytes.from(Buffer.from(KEY_HEX, 'hex'));
  const b = SecretBytes.from(Buffer.from(KEY_HEX, 'hex'));
  const c = SecretBytes.from(Buffer.from(KEY_HEX.replace(/f$/, 'e'), 'hex'));
  const shorter = SecretBytes.from(Buffer.from(KEY_HEX.slice(0, 30), 'hex'));
  assert.equal(a.equals(b), true);
  assert.equal(a.equals(c), false);
  assert.equal(a.equals(shorter), false);
  assert.equal(shorter.equals(a), false);
});

test('zeroize fills the bytes with 0, then insecureExpose and equals throw', () => {
  const s = SecretBytes.from(Buffer.from(KEY_HEX, 'hex'));
  const view = s.insecureExpose();
  s.zeroize();
  assert.ok(view.every((byte) => byte === 0));
  assert.throws(() => s.insecureExpose(), /zeroize/);
  assert.throws(() => s.equals(SecretBytes.random(16)), /zeroize/);
  s.zeroize(); // idempotent
  assert.equal(String(s), '[redacted]');
});

test('insecureKeyObject is a secret KeyObject of the same bytes, made once; after zeroize it throws', () => {
  const s = SecretBytes.from(Buffer.from(KEY_HEX, 'hex'));
  const k = s.insecureKeyObject();
  assert.equal(k.type, 'secret');
  assert.equal(k.export().toString('hex'), KEY_HEX);
  assert.equal(s.insecureKeyObject(), k);
  s.zeroize();
  assert.throws(() => s.insecureKeyObject(), /zeroize/);
});
