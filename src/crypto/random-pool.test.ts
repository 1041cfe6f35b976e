import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytesPooled, RANDOM_POOL_MAX_REQUEST } from './random-pool.js';

describe('randomBytesPooled', () => {
  it('gives the requested length, in a buffer of its own, never the same bytes twice across pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const b = randomBytesPooled(44); // 500 x 44 bytes crosses the 4 KiB pool several times
      assert.equal(b.length, 44);
      assert.equal(b.byteOffset, 0);
      assert.equal(b.buffer.byteLength, 44, 'not a slice of a shared allocation');
      const hex = b.toString('hex');
      assert.ok(!seen.has(hex), 'a repeated value');
      seen.add(hex);
    }
  });

  it('output looks random: about half the bits set over 64 KiB', () => {
    let ones = 0;
    let total = 0;
    for (let i = 0; i < 2048; i++) {
      for (const byte of randomBytesPooled(32)) {
        for (let bit = 0; bit < 8; bit++) ones += (byte >> bit) & 1;
        total += 8;
      }
    }
    // 524288 bits: the standard deviation is ~362, so 5 sigma is about +-1810.
    assert.ok(Math.abs(ones - total / 2) < 1810, `${ones} of ${total} bits set`);
  });

  it('serves 0 bytes, bypasses the pool above the limit, and rejects a bad length', () => {
    assert.equal(randomBytesPooled(0).length, 0);
    const big = randomBytesPooled(RANDOM_POOL_MAX_REQUEST + 1);
    assert.equal(big.length, RANDOM_POOL_MAX_REQUEST + 1);
    assert.notDeepEqual(big, Buffer.alloc(big.length));
    assert.throws(() => randomBytesPooled(-1), RangeError);
    assert.throws(() => randomBytesPooled(1.5), RangeError);
  });
});
