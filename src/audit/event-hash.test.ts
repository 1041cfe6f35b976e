import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventHash, GENESIS_HASH } from './audit-db.js';

// The chain link of audit-db.ts, frozen: SHA-256("keyhold-audit/v1\n" || seq || "\n" || prev || "\n" || body),
// UTF-8. Values computed with the multi-update form the log used before the one-shot hash, so logs
// written by either verify under the other.
const FIRST = '3dd15bac4f1a27aa96270deb5ab0cca4131fcf0c5ac300a7cdd231298c131f61';

describe('eventHash (audit chain link)', () => {
  it('matches frozen values, non-ASCII bodies included', () => {
    assert.equal(
      eventHash(42, 'ab'.repeat(32), '{"eventName":"Encrypt","note":"é✓"}'),
      'efeafd494fcf1aab04bdd59bf4943e4c2dc26dfef6ff8df7f459bdef05a901b6',
    );
    assert.equal(eventHash(1, GENESIS_HASH, '{}'), FIRST);
  });
  it('binds the sequence number, the previous hash and the body', () => {
    assert.notEqual(eventHash(2, GENESIS_HASH, '{}'), FIRST);
    assert.notEqual(eventHash(1, '1'.repeat(64), '{}'), FIRST);
    assert.notEqual(eventHash(1, GENESIS_HASH, '{ }'), FIRST);
  });
});
