import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from './policy.js';
import { policyWidening } from './widening.js';

const ACCOUNT = '111122223333';
const ROOT = `arn:aws:iam::${ACCOUNT}:root`;
const ALICE = `arn:aws:iam::${ACCOUNT}:user/alice`;
const BOB = `arn:aws:iam::${ACCOUNT}:user/bob`;
const doc = (...Statement: object[]) => parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement }), { requirePrincipal: true });
const admin = { Sid: 'Root', Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' };

describe('policyWidening: what a new key policy allows that the previous did not', () => {
  it('a new principal with new actions', () => {
    const w = policyWidening(doc(admin), doc(admin, { Effect: 'Allow', Principal: { AWS: ALICE }, Action: ['kms:Decrypt', 'kms:Encrypt'], Resource: '*' }));
    assert.deepEqual(w, { addedPrincipals: [ALICE], addedActions: [{ principal: ALICE, actions: ['kms:decrypt', 'kms:encrypt'] }], removedDenies: [] });
  });
  it('a new action for a known principal (not a new principal)', () => {
    const before = doc(admin, { Effect: 'Allow', Principal: { AWS: ALICE }, Action: 'kms:Encrypt', Resource: '*' });
    const w = policyWidening(before, doc(admin, { Effect: 'Allow', Principal: { AWS: ALICE }, Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*' }));
    assert.deepEqual(w, { addedPrincipals: [], addedActions: [{ principal: ALICE, actions: ['kms:decrypt'] }], removedDenies: [] });
  });
  it('narrowing, reordering, or what a wildcard already allowed, is not widening', () => {
    const before = doc(admin, { Effect: 'Allow', Principal: { AWS: ALICE }, Action: 'kms:*', Resource: '*' });
    assert.equal(policyWidening(before, doc(admin)), undefined);
    assert.equal(policyWidening(before, doc({ Effect: 'Allow', Principal: { AWS: ALICE }, Action: ['kms:Decrypt'], Resource: '*' }, admin)), undefined);
    // The account id and the root ARN are the same principal.
    assert.equal(policyWidening(doc(admin), doc({ ...admin, Principal: { AWS: ACCOUNT } })), undefined);
  });
  it('removing a condition widens; adding one does not', () => {
    const plain = { Effect: 'Allow', Principal: { AWS: ALICE }, Action: 'kms:Decrypt', Resource: '*' };
    const conditioned = { ...plain, Condition: { StringEquals: { 'kms:EncryptionContext:app': 'x' } } };
    assert.equal(policyWidening(doc(admin, plain), doc(admin, conditioned)), undefined);
    assert.deepEqual(policyWidening(doc(admin, conditioned), doc(admin, plain))?.addedActions, [{ principal: ALICE, actions: ['kms:decrypt'] }]);
  });
  it('dropping a Deny widens; Principal "*" is a new principal', () => {
    const deny = { Effect: 'Deny', Principal: { AWS: BOB }, Action: 'kms:Decrypt', Resource: '*' };
    assert.deepEqual(policyWidening(doc(admin, deny), doc(admin))?.removedDenies, [{ principal: BOB, actions: ['kms:decrypt'] }]);
    assert.deepEqual(policyWidening(doc(admin), doc(admin, { Effect: 'Allow', Principal: '*', Action: 'kms:Encrypt', Resource: '*' }))?.addedPrincipals, ['*']);
  });
});
