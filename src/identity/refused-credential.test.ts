import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../storage/index.js';
import { IdentityStore, type SecretBox } from './identity-store.js';

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
