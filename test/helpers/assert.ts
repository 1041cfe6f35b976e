import assert from 'node:assert/strict';

/** Asserts that p rejects with the AWS error `name` and, when given, that message. */
export async function rejects(p: Promise<unknown>, name: string, message?: RegExp | string): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    if (message instanceof RegExp) assert.match(e.message, message);
    else if (typeof message === 'string') assert.equal(e.message, message);
    return true;
  });
}
