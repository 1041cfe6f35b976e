import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedPolicyDocumentException } from '../errors/index.js';
import { authorize, grantAllows, type GrantLike } from './authorize.js';
import { conditionHolds, type ConditionContext } from './conditions.js';
import { parsePolicy } from './policy.js';

const ctx: ConditionContext = {
  'aws:username': 'alice',
  'aws:sourceip': '10.1.2.3',
  'aws:currenttime': '2026-12-02T10:00:00Z',
  'aws:securetransport': 'true',
  'aws:principalarn': 'arn:aws:iam::111122223333:user/alice',
  'aws:principaltag/team': 'ops',
  'kms:encryptioncontext:app': 'payroll',
  'kms:encryptioncontextkeys': ['app', 'env'],
  'kms:keyspec': 'SYMMETRIC_DEFAULT',
  'aws:epochtime': '1796205600',
};

describe('condition operators (one row per family; the request context above)', () => {
  const cases: [string, Record<string, unknown>, boolean][] = [
    ['StringEquals matches', { StringEquals: { 'aws:username': 'alice' } }, true],
    ['StringEquals: values are alternatives', { StringEquals: { 'aws:username': ['bob', 'alice'] } }, true],
    ['StringEquals is case-sensitive on values', { StringEquals: { 'aws:username': 'Alice' } }, false],
    ['condition keys are case-insensitive', { StringEquals: { 'AWS:UserName': 'alice' } }, true],
    ['StringNotEquals', { StringNotEquals: { 'aws:username': 'bob' } }, true],
    ['StringEqualsIgnoreCase', { StringEqualsIgnoreCase: { 'aws:username': 'ALICE' } }, true],
    ['StringLike with *', { StringLike: { 'aws:principalarn': 'arn:aws:iam::*:user/al*' } }, true],
    ['StringNotLike', { StringNotLike: { 'aws:username': 'a?ice' } }, false],
    ['a missing key fails a positive operator', { StringEquals: { 'aws:nosuchkey': 'x' } }, false],
    ['a missing key satisfies a negated operator', { StringNotEquals: { 'aws:nosuchkey': 'x' } }, true],
    ['...IfExists holds when the key is missing', { StringEqualsIfExists: { 'aws:nosuchkey': 'x' } }, true],
    ['...IfExists still compares when present', { StringEqualsIfExists: { 'aws:username': 'bob' } }, false],
    ['NumericLessThan', { NumericLessThan: { 'aws:epochtime': '1800000000' } }, true],
    ['NumericGreaterThanEquals', { NumericGreaterThanEquals: { 'aws:epochtime': 1796205601 } }, false],
    ['NumericEquals with a non-number fails', { NumericEquals: { 'aws:username': '1' } }, false],
    ['DateGreaterThan (ISO)', { DateGreaterThan: { 'aws:currenttime': '2026-01-01T00:00:00Z' } }, true],
    ['DateLessThan (epoch seconds)', { DateLessThan: { 'aws:currenttime': '1700000000' } }, false],
    ['Bool', { Bool: { 'aws:securetransport': 'true' } }, true],
    ['Bool false', { Bool: { 'aws:securetransport': false } }, false],
    ['IpAddress IPv4 CIDR', { IpAddress: { 'aws:sourceip': '10.0.0.0/8' } }, true],
    ['NotIpAddress', { NotIpAddress: { 'aws:sourceip': ['10.1.2.0/24'] } }, false],
    ['IpAddress IPv6 CIDR does not match an IPv4 address', { IpAddress: { 'aws:sourceip': '2001:db8::/32' } }, false],
    ['ArnLike', { ArnLike: { 'aws:principalarn': 'arn:aws:iam::111122223333:user/*' } }, true],
    ['ArnNotEquals', { ArnNotEquals: { 'aws:principalarn': 'arn:aws:iam::111122223333:user/bob' } }, true],
    ['Null true: key absent', { Null: { 'aws:nosuchkey': 'true' } }, true],
    ['Null false: key present', { Null: { 'aws:username': 'false' } }, true],
    ['Null true on a present key fails', { Null: { 'aws:username': 'true' } }, false],
    ['PrincipalTag', { StringEquals: { 'aws:PrincipalTag/team': 'ops' } }, true],
    ['EncryptionContext key', { StringEquals: { 'kms:EncryptionContext:app': 'payroll' } }, true],
    ['ForAnyValue: one value matches', { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ['env'] } }, true],
    ['ForAllValues: every request value must match', { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['app'] } }, false],
    ['ForAllValues: all covered', { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['app', 'env', 'x'] } }, true],
    ['ForAllValues holds for a missing key', { 'ForAllValues:StringEquals': { 'aws:nosuchkey': ['a'] } }, true],
    ['ForAnyValue fails for a missing key', { 'ForAnyValue:StringEquals': { 'aws:nosuchkey': ['a'] } }, false],
    ['operators are ANDed', { StringEquals: { 'aws:username': 'alice' }, Bool: { 'aws:securetransport': 'false' } }, false],
    ['policy variables in values', { StringLike: { 'aws:principalarn': 'arn:aws:iam::*:user/${aws:username}' } }, true],
  ];
  for (const [name, condition, expected] of cases) {
    it(name, () => assert.equal(conditionHolds(condition, ctx), expected));
  }

  it('an unknown operator or a malformed condition is refused when the policy is parsed', () => {
    const p = (Condition: unknown) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*', Condition }] });
    assert.throws(() => parsePolicy(p({ StringEqualz: { 'aws:username': 'a' } }), { requirePrincipal: false }), (e: Error) => e instanceof MalformedPolicyDocumentException && /unknown operator 'StringEqualz'/.test(e.message));
    assert.throws(() => parsePolicy(p({ StringEquals: { username: 'a' } }), { requirePrincipal: false }), MalformedPolicyDocumentException);
    assert.throws(() => parsePolicy(p({ StringEquals: { 'aws:username': [] } }), { requirePrincipal: false }), MalformedPolicyDocumentException);
  });
});

describe('authorize: key policy, identity policies and grants', () => {
  const ACCOUNT = '111122223333';
  const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
  const alice = { arn: `arn:aws:iam::${ACCOUNT}:user/alice`, accountId: ACCOUNT, isRoot: false };
  const root = { arn: `arn:aws:iam::${ACCOUNT}:root`, accountId: ACCOUNT, isRoot: true };
  const session = { arn: `arn:aws:sts::${ACCOUNT}:assumed-role/backup/s1`, roleArn: `arn:aws:iam::${ACCOUNT}:role/backup`, accountId: ACCOUNT, isRoot: false };
  const kp = (...Statement: object[]) => parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement }), { requirePrincipal: true });
  const ip = (...Statement: object[]) => ({ source: 'inline policy p of user alice', document: parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement }), { requirePrincipal: false }) });
  const delegating = kp({ Sid: 'Account', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' });
  const run = (o: Partial<Parameters<typeof authorize>[0]>) => authorize({ principal: alice, action: 'kms:Decrypt', resource: KEY, context: {}, identityPolicies: [], ...o });

  it('a key policy naming only the account delegates: no identity policy, no access', () => {
    assert.equal(run({ keyPolicy: delegating }).effect, 'ImplicitDeny');
  });
  it('... and an identity policy then allows, with both in the reason', () => {
    const d = run({ keyPolicy: delegating, identityPolicies: [ip({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: KEY })] });
    assert.equal(d.effect, 'Allow');
    assert.match(d.reason, /'Account' enables IAM policies; allowed by inline policy p of user alice/);
  });
  it('root is allowed by the account statement without identity policies', () => {
    assert.equal(run({ principal: root, keyPolicy: delegating }).effect, 'Allow');
  });
  it('an identity policy cannot reach a key whose policy does not delegate', () => {
    const d = run({ keyPolicy: kp({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/bob` }, Action: 'kms:*', Resource: '*' }), identityPolicies: [ip({ Effect: 'Allow', Action: 'kms:*', Resource: '*' })] });
    assert.equal(d.effect, 'ImplicitDeny');
  });
  it('an explicit Deny in an identity policy wins over a key policy Allow naming the principal', () => {
    const d = run({ keyPolicy: kp({ Effect: 'Allow', Principal: { AWS: alice.arn }, Action: 'kms:*', Resource: '*' }), identityPolicies: [ip({ Effect: 'Deny', Action: 'kms:Decrypt', Resource: '*' })] });
    assert.equal(d.effect, 'Deny');
  });
  it('a role ARN in a key policy covers its sessions', () => {
    assert.equal(run({ principal: session, keyPolicy: kp({ Effect: 'Allow', Principal: { AWS: session.roleArn }, Action: 'kms:Decrypt', Resource: '*' }) }).effect, 'Allow');
  });
  it('no key policy (CreateKey, IAM calls): identity policies decide, root may do all', () => {
    assert.equal(run({ action: 'kms:CreateKey', resource: '*' }).effect, 'ImplicitDeny');
    assert.equal(run({ principal: root, action: 'kms:CreateKey', resource: '*' }).effect, 'Allow');
    assert.equal(run({ action: 'kms:CreateKey', resource: '*', identityPolicies: [ip({ Effect: 'Allow', Action: 'kms:Create*', Resource: '*' })] }).effect, 'Allow');
  });

  const grant: GrantLike = { grantId: 'g1', granteePrincipal: alice.arn, operations: ['Decrypt'], constraints: { encryptionContextSubset: { app: 'payroll' } } };
  it('grants: grantee, operation and EncryptionContextSubset', () => {
    assert.equal(grantAllows(grant, alice, 'Decrypt', { app: 'payroll', env: 'prod' }), true);
    assert.equal(grantAllows(grant, alice, 'Decrypt', { app: 'hr' }), false);
    assert.equal(grantAllows(grant, alice, 'Encrypt', { app: 'payroll' }), false);
    assert.equal(grantAllows(grant, { arn: `arn:aws:iam::${ACCOUNT}:user/bob`, accountId: ACCOUNT }, 'Decrypt', { app: 'payroll' }), false);
  });
  it('grants: EncryptionContextEquals needs the exact context', () => {
    const g: GrantLike = { ...grant, constraints: { encryptionContextEquals: { app: 'payroll' } } };
    assert.equal(grantAllows(g, alice, 'Decrypt', { app: 'payroll' }), true);
    assert.equal(grantAllows(g, alice, 'Decrypt', { app: 'payroll', env: 'prod' }), false);
  });
  it('a grant adds access the policies do not give, and says so', () => {
    const d = run({ keyPolicy: delegating, grants: [grant], encryptionContext: { app: 'payroll' } });
    assert.equal(d.effect, 'Allow');
    assert.equal(d.reason, 'allowed by grant g1');
    assert.equal(run({ keyPolicy: delegating, grants: [grant], encryptionContext: { app: 'other' } }).effect, 'ImplicitDeny');
  });
  it('an explicit Deny in the key policy wins over a grant', () => {
    const d = run({ keyPolicy: kp({ Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*' }), grants: [grant], encryptionContext: { app: 'payroll' } });
    assert.equal(d.effect, 'Deny');
  });
});
