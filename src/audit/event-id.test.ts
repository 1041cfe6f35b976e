import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newEventId } from './event-id.js';

describe('audit event ids (UUID v7)', () => {
  it('are RFC 9562 version-7 UUIDs carrying the time, ordered by it, and unique', () => {
    const t = Date.UTC(2026, 11, 2, 14, 0, 0, 123);
    const id = newEventId(t);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), t);
    const ids = Array.from({ length: 5000 }, (_, i) => newEventId(t + Math.floor(i / 10)));
    assert.equal(new Set(ids).size, ids.length);
    // Later milliseconds sort after earlier ones (as strings, as the index compares them).
    for (let i = 10; i < ids.length; i += 10) assert.ok(ids[i]! > ids[i - 10]!);
  });
});
