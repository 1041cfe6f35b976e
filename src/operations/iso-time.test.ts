import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime } from './common.js';

test('isoTime gives exactly what Date.prototype.toISOString gives, within a second and across seconds', () => {
  const base = Date.UTC(2026, 11, 2, 13, 59, 59, 0);
  const times = [base, base + 1, base + 9, base + 10, base + 99, base + 100, base + 999, base + 1000, base + 1001, base + 5, 0, 1, -1, -1001, 253402300799999, 253402300800000, 1.5, base + 0.25];
  for (const ms of times) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  // Going back to an earlier second after a later one is cached.
  for (const ms of [base + 1500, base + 400, base + 1501]) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
});

test('isoTime throws on an invalid time, as toISOString does', () => {
  assert.throws(() => isoTime(NaN), RangeError);
  assert.throws(() => isoTime(8.64e15 + 1), RangeError);
});
