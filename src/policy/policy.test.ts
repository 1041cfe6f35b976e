import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedPolicyDocumentException } from '../errors/index.js';
import { defaultKeyPolicy, evaluate, globMatch, parsePolicy, type PolicyRequest } from './policy.js';

const ACCOUNT = '111122223333';
const root = { arn: `arn:aws:iam::${ACCOUNT}:root`, accountId: ACCOUNT };
const alice = { arn: `arn:aws:iam::${ACCOUNT}:user/alice`, accountId: ACCOUNT };
const stranger = { arn: 'arn:aws:iam::999999999999:root', accountId: '999999999999' };
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const req = (principal: PolicyRequest['principal'], action: string, resource = KEY): PolicyRequest => ({ principal, action, resource });
const doc = (...Statement: object[]) => parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement }), { requirePrincipal: true });

describe('policy evaluation', () => {
  const cases: { name: string; policy: ReturnType<typeof doc>; request: PolicyRequest; effect: string; reason?: RegExp }[] = [
    { name: 'default key policy allows the account root', policy: parsePolicy(defaultKeyPolicy(ACCOUNT), { requirePrincipal: true }), request: req(root, 'kms:Encrypt'), effect: 'Allow', reason: /'Enable IAM User Permissions'/ },
    { name: 'default key policy does not allow another account', policy: parsePolicy(defaultKeyPolicy(ACCOUNT), { requirePrincipal: true }), request: req(stranger, 'kms:Encrypt'), effect: 'ImplicitDeny' },
    { name: 'no statement matches: implicit deny', policy: doc({ Effect: 'Allow', Principal: { AWS: root.arn }, Action: 'kms:Decrypt', Resource: '*' }), request: req(root, 'kms:Encrypt'), effect: 'ImplicitDeny', reason: /no statement/ },
    {
      name: 'explicit deny wins over allow, whatever the order',
      policy: doc(
        { Sid: 'D', Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*' },
        { Sid: 'A', Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'kms:*', Resource: '*' },
      ),
      request: req(root, 'kms:Decrypt'),
      effect: 'Deny',
      reason: /statement 'D'/,
    },
    { name: 'action wildcards', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:Generate*', Resource: '*' }), request: req(alice, 'kms:GenerateDataKeyWithoutPlaintext'), effect: 'Allow' },
    { name: 'action ? wildcard', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:?ncrypt', Resource: '*' }), request: req(alice, 'kms:Encrypt'), effect: 'Allow' },
    { name: 'actions compare case-insensitively', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'KMS:encrypt', Resource: '*' }), request: req(alice, 'kms:Encrypt'), effect: 'Allow' },
    { name: 'NotAction allows everything else', policy: doc({ Effect: 'Allow', Principal: '*', NotAction: 'kms:Decrypt', Resource: '*' }), request: req(alice, 'kms:Encrypt'), effect: 'Allow' },
    { name: 'NotAction excludes the named action', policy: doc({ Effect: 'Allow', Principal: '*', NotAction: ['kms:Decrypt', 'kms:ReEncrypt*'], Resource: '*' }), request: req(alice, 'kms:ReEncryptFrom'), effect: 'ImplicitDeny' },
    { name: 'NotPrincipal deny spares the named principal', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }, { Effect: 'Deny', NotPrincipal: { AWS: root.arn }, Action: 'kms:PutKeyPolicy', Resource: '*' }), request: req(root, 'kms:PutKeyPolicy'), effect: 'Allow' },
    { name: 'NotPrincipal deny hits everyone else', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }, { Effect: 'Deny', NotPrincipal: { AWS: root.arn }, Action: 'kms:PutKeyPolicy', Resource: '*' }), request: req(alice, 'kms:PutKeyPolicy'), effect: 'Deny' },
    { name: 'principal by user ARN', policy: doc({ Effect: 'Allow', Principal: { AWS: [alice.arn] }, Action: 'kms:Decrypt', Resource: '*' }), request: req(alice, 'kms:Decrypt'), effect: 'Allow' },
    { name: 'principal by user ARN does not match another user', policy: doc({ Effect: 'Allow', Principal: { AWS: alice.arn }, Action: 'kms:Decrypt', Resource: '*' }), request: req({ arn: `arn:aws:iam::${ACCOUNT}:user/bob`, accountId: ACCOUNT }, 'kms:Decrypt'), effect: 'ImplicitDeny' },
    { name: 'Resource must match', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: 'arn:aws:kms:*:*:key/other' }), request: req(root, 'kms:Encrypt'), effect: 'ImplicitDeny' },
    { name: 'NotResource', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', NotResource: 'arn:aws:kms:*:*:key/other' }), request: req(root, 'kms:Encrypt'), effect: 'Allow' },
    { name: 'an Allow whose condition key is missing from the request does not grant', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { StringEquals: { 'aws:username': 'x' } } }), request: req(root, 'kms:Encrypt'), effect: 'ImplicitDeny' },
    { name: 'a Deny whose condition holds applies', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }, { Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }), request: { ...req(root, 'kms:Decrypt'), context: { 'aws:securetransport': 'false' } }, effect: 'Deny' },
    { name: 'a Deny whose condition does not hold does not apply', policy: doc({ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }, { Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }), request: { ...req(root, 'kms:Decrypt'), context: { 'aws:securetransport': 'true' } }, effect: 'Allow' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = evaluate(c.policy, c.request);
      assert.equal(d.effect, c.effect, d.reason);
      if (c.reason) assert.match(d.reason, c.reason);
    });
  }
});

describe('policy parsing', () => {
  const bad: [string, string, RegExp][] = [
    ['not JSON', '{', /not valid JSON/],
    ['an array', '[]', /JSON object/],
    ['an unknown version', JSON.stringify({ Version: '2020-01-01', Statement: [] }), /Version/],
    ['no statement', JSON.stringify({ Version: '2012-10-17' }), /no Statement/],
    ['an empty statement list', JSON.stringify({ Version: '2012-10-17', Statement: [] }), /no Statement/],
    ['a bad effect', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Maybe', Principal: '*', Action: 'kms:*', Resource: '*' }] }), /Effect/],
    ['Action and NotAction together', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', NotAction: 'kms:Decrypt' }] }), /exactly one of Action or NotAction/],
    ['no principal in a key policy', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] }), /no Principal/],
    ['an invalid principal', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 'kms:*', Resource: '*' }] }), /invalid principals: 'bob'/],
    ['an invalid action', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'encrypt', Resource: '*' }] }), /invalid action: 'encrypt'/],
    ['duplicate Sids', JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'a', Effect: 'Allow', Principal: '*', Action: 'kms:*' }, { Sid: 'a', Effect: 'Allow', Principal: '*', Action: 'kms:*' }] }), /must be unique/],
    ['an unknown element', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Extra: 1 }] }), /unknown element 'Extra'/],
    ['too large', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: 'x'.repeat(40000) }] }), /larger than/],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name} with a message that says what is wrong`, () => {
      assert.throws(() => parsePolicy(text, { requirePrincipal: true }), (e: Error) => e instanceof MalformedPolicyDocumentException && message.test(e.message));
    });
  }

  it('accepts a single statement object and string-valued lists', () => {
    const d = parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: { Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'kms:Encrypt', Resource: '*' } }), { requirePrincipal: true });
    assert.equal(d.statements.length, 1);
    assert.deepEqual(d.statements[0]!.action, ['kms:Encrypt']);
  });

  it('glob matching anchors both ends', () => {
    assert.equal(globMatch('kms:Encrypt', 'kms:EncryptX'), false);
    assert.equal(globMatch('kms:*', 'kms:'), true);
    assert.equal(globMatch('a.b', 'axb'), false);
  });
});
