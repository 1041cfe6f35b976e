import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../storage/index.js';
import { IdentityStore, type SecretBox } from './identity-store.js';
import type { DecodedCache } from '../storage/decoded-cache.js';

/** Identity keeps secrets through this interface; the barrier seals them in the server. Clear here (unit test only). */
const clearBox: SecretBox = { seal: (_p, b) => Buffer.from(b), open: (_p, b) => Buffer.from(b) };
const ACCT = '111122223333';

describe('inspectRefusedCredential: whose a refused credential is and why', () => {
  it('names deactivated keys, offboarded users, ended and expired sessions; not live or unknown ones', async () => {
    const id = new IdentityStore(new MemoryStorage(), clearBox);
    await id.bootstrapRoot(ACCT);
    const now = Date.now();
    await id.createUser(ACCT, 'alice', '/', [], now);
    const { record: key } = await id.createAccessKey(ACCT, 'alice', now);
    assert.equal(await id.inspectRefusedCredential(key.accessKeyId, undefined), undefined, 'an active key is not refused');
    assert.equal(await id.inspectRefusedCredential('AKIANOSUCHKEY0000000', undefined), undefined);
    await id.updateAccessKey(ACCT, 'alice', key.accessKeyId, 'Inactive');
    const inactive = await id.inspectRefusedCredential(key.accessKeyId, undefined);
    assert.equal(inactive?.state, 'access-key-inactive');
    assert.equal(inactive?.principal.arn, `arn:aws:iam::${ACCT}:user/alice`);

    const role = await id.createRole(ACCT, { roleName: 'ops', path: '/', assumeRolePolicyDocument: '{}', description: '', maxSessionDuration: 3600, tags: [] }, now);
    const alice = { accountId: ACCT, arn: `arn:aws:iam::${ACCT}:user/alice`, type: 'IAMUser', accessKeyId: key.accessKeyId, userId: key.userId, userName: 'alice' } as const;
    const session = await id.createSession(role, 'laptop', 900, alice as never, now);
    assert.equal(await id.inspectRefusedCredential(session.accessKeyId, session.sessionToken, now + 1000), undefined, 'a live session is not refused');
    const expired = await id.inspectRefusedCredential(session.accessKeyId, session.sessionToken, now + 901_000);
    assert.equal(expired?.state, 'session-expired');
    assert.equal(expired?.principal.arn, `arn:aws:sts::${ACCT}:assumed-role/ops/laptop`);
    // Without the session's token, nothing is told about it.
    assert.equal(await id.inspectRefusedCredential(session.accessKeyId, 'wrong-token', now + 901_000), undefined);

    await id.offboardUser(ACCT, 'alice', now + 2000);
    assert.equal((await id.inspectRefusedCredential(key.accessKeyId, undefined))?.state, 'user-offboarded');
    assert.equal((await id.inspectRefusedCredential(session.accessKeyId, session.sessionToken, now + 3000))?.state, 'session-ended');
  });
});

describe('secrets of credentials that can no longer sign are not kept decoded in memory', () => {
  it('after DeleteAccessKey, deactivation, and a refused expired session', async () => {
    const id = new IdentityStore(new MemoryStorage(), clearBox);
    await id.bootstrapRoot(ACCT);
    const cached = (akid: string) => (id as unknown as { credentials: DecodedCache<object> }).credentials.has(`iam/accesskey/${akid}`);
    const now = Date.now();
    await id.createUser(ACCT, 'bob', '/', [], now);
    const { record: a } = await id.createAccessKey(ACCT, 'bob', now);
    const { record: b } = await id.createAccessKey(ACCT, 'bob', now);
    assert.ok(await id.authenticate(a.accessKeyId, undefined));
    assert.ok(await id.authenticate(b.accessKeyId, undefined));
    assert.ok(cached(a.accessKeyId) && cached(b.accessKeyId), 'used keys are cached (the check below can fail)');

    await id.deleteAccessKey(ACCT, 'bob', a.accessKeyId);
    assert.equal(cached(a.accessKeyId), false, 'deleted');

    await id.updateAccessKey(ACCT, 'bob', b.accessKeyId, 'Inactive');
    assert.equal(await id.authenticate(b.accessKeyId, undefined), undefined);
    assert.equal(cached(b.accessKeyId), false, 'inactive');
    assert.ok(await id.inspectRefusedCredential(b.accessKeyId, undefined));
    assert.equal(cached(b.accessKeyId), false, 'inspecting a refused credential does not cache it');

    const role = await id.createRole(ACCT, { roleName: 'r', path: '/', assumeRolePolicyDocument: '{}', description: '', maxSessionDuration: 3600, tags: [] }, now);
    const bob = { accountId: ACCT, arn: `arn:aws:iam::${ACCT}:user/bob`, type: 'IAMUser', accessKeyId: b.accessKeyId, userId: b.userId, userName: 'bob' } as const;
    const session = await id.createSession(role, 's', 900, bob as never, now);
    assert.ok(await id.authenticate(session.accessKeyId, session.sessionToken, now + 1000));
    assert.ok(cached(session.accessKeyId));
    await assert.rejects(id.authenticate(session.accessKeyId, session.sessionToken, now + 901_000), /expired/);
    assert.equal(cached(session.accessKeyId), false, 'expired session');
  });
});
