/**
 * Conformance (issue 5): any call with credentials that no longer work (a deactivated access key,
 * an offboarded user, a deleted access key, an ended role session) fails authentication, and still
 * raises an alert naming the principal, delivered to a local webhook receiver within 2 s of the
 * call. Controls: an access key id that never existed, and a wrong secret for a live key, raise none.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IAM } from '@aws-sdk/client-iam';
import { rejects } from '../helpers/assert.js';
import { cliEnv, NO_AWS_PROFILE, newCredentials, runCli, startServer, type Credentials, type TestServer } from '../helpers/server.js';
import { iamClient, policy, stsClient } from '../helpers/iam.js';
import { webhookReceiver, type WebhookReceiver } from '../helpers/webhook.js';

const SECRET = 'credential-alert-secret';
const USER_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyUser';
const ACCT = '111122223333';
/** The requirement: an alert reaches its webhook within 2 s of the call that triggered it. */
const DEADLINE_MS = 2000;

describe('alerts: calls with revoked credentials (AWS SDK v3, HTTPS, local webhook receiver)', () => {
  let hook: WebhookReceiver;
  let s: TestServer;
  let iam: IAM;
  let keyId: string;
  const delays: number[] = [];

  async function userWithKey(name: string): Promise<Credentials> {
    await iam.createUser({ UserName: name });
    await iam.attachUserPolicy({ UserName: name, PolicyArn: USER_POLICY });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: name });
    return { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
  }

  /** Makes the refused call, waits for its alert, and checks the delay against the 2 s budget. */
  async function refusedCallAlerts(call: () => Promise<unknown>, errorName: string, accessKeyId: string) {
    const t0 = Date.now();
    await rejects(call(), errorName);
    const hit = await hook.waitFor('revoked-credentials-used', DEADLINE_MS + 1000, (r) => r.alert.accessKeyId === accessKeyId);
    const delay = hit.at - t0;
    delays.push(delay);
    assert.ok(delay < DEADLINE_MS, `alert delivered ${delay} ms after the call started (budget ${DEADLINE_MS} ms)`);
    assert.ok(hook.signedWith(hit, SECRET));
    return hit;
  }

  before(async () => {
    hook = await webhookReceiver();
    s = await startServer({ accountId: ACCT, args: ['--alert-webhook', hook.url], env: { KEYHOLD_ALERT_WEBHOOK_SECRET: SECRET } });
    iam = iamClient(s);
    keyId = (await s.kms().createKey({ Description: 'alerts' })).KeyMetadata!.KeyId!;
  });
  after(async () => {
    await s.stop();
    s.cleanup();
    await hook.close();
    console.log(`# revoked-credential alert delays (call start to webhook receipt), ms: ${delays.join(', ')}`);
  });

  it('old credentials of a deactivated user fire a critical alert naming the user within 2 s', async () => {
    const alice = await userWithKey('alice');
    const kms = s.kms({ credentials: alice });
    await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('works while active') });
    await iam.updateAccessKey({ UserName: 'alice', AccessKeyId: alice.accessKeyId, Status: 'Inactive' });
    const hit = await refusedCallAlerts(() => kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('after') }), 'UnrecognizedClientException', alice.accessKeyId);
    assert.equal(hit.alert.severity, 'critical');
    assert.equal(hit.alert.principalArn, `arn:aws:iam::${ACCT}:user/alice`);
    assert.equal(hit.alert.accountId, ACCT);
    assert.match(hit.alert.summary, /deactivated/);
    assert.match(hit.alert.summary, /signed with its real secret/);
    assert.equal(hit.alert.eventIds.length, 1);
    // The triggering event is the refused Encrypt in the audit log, and it holds no secret.
    const env = cliEnv(s);
    const r = await runCli(['audit', '--event-id', hit.alert.eventIds[0]!, '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const [ev] = JSON.parse(r.stdout) as { eventName: string; errorCode: string }[];
    assert.equal(ev!.eventName, 'Encrypt');
    assert.equal(ev!.errorCode, 'UnrecognizedClientException');
    assert.ok(!r.stdout.includes(alice.secretAccessKey));
    // Listed through the API for the account too.
    const listed = await runCli(['alerts', '--json'], env);
    assert.ok((JSON.parse(listed.stdout) as { alertId: string }[]).some((a) => a.alertId === hit.alert.alertId));
  });

  it('an offboarded user\'s key and the role session they started both fire, naming user and session', async () => {
    const bob = await userWithKey('bob');
    await iam.createRole({ RoleName: 'tools', AssumeRolePolicyDocument: policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:user/bob` }, Action: 'sts:AssumeRole' }) });
    await iam.attachRolePolicy({ RoleName: 'tools', PolicyArn: USER_POLICY });
    const out = await stsClient(s, bob).assumeRole({ RoleArn: `arn:aws:iam::${ACCT}:role/tools`, RoleSessionName: 'laptop' });
    const session = { accessKeyId: out.Credentials!.AccessKeyId!, secretAccessKey: out.Credentials!.SecretAccessKey!, sessionToken: out.Credentials!.SessionToken! };
    await s.kms({ credentials: session }).encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') });
    const env = cliEnv(s, undefined, NO_AWS_PROFILE);
    const r = await runCli(['access', 'offboard', 'bob', '--no-rotate', '--json'], env);
    assert.equal(r.code, 0, r.stderr);

    // The user's key through IAM's query protocol (the offboarded user tries to give itself a new key).
    const user = await refusedCallAlerts(() => iamClient(s, bob).createAccessKey({ UserName: 'bob' }), 'InvalidClientTokenId', bob.accessKeyId);
    assert.equal(user.alert.principalArn, `arn:aws:iam::${ACCT}:user/bob`);
    assert.match(user.alert.summary, /offboarded/);
    assert.equal(user.alert.severity, 'critical');
    const sess = await refusedCallAlerts(() => s.kms({ credentials: session }).encrypt({ KeyId: keyId, Plaintext: Buffer.from('y') }), 'UnrecognizedClientException', session.accessKeyId);
    assert.equal(sess.alert.principalArn, `arn:aws:sts::${ACCT}:assumed-role/tools/laptop`);
    assert.match(sess.alert.summary, /session was ended/);
    // Within a minute an access key is alerted once, however often it is tried.
    await rejects(s.kms({ credentials: bob }).listKeys({}), 'UnrecognizedClientException');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(hook.got.filter((g) => g.alert.accessKeyId === bob.accessKeyId).length, 1);
  });

  it('a deleted access key that worked before fires (high: its secret is gone, the signature cannot be checked)', async () => {
    const carol = await userWithKey('carol');
    await s.kms({ credentials: carol }).encrypt({ KeyId: keyId, Plaintext: Buffer.from('works while it exists') });
    await iam.deleteAccessKey({ UserName: 'carol', AccessKeyId: carol.accessKeyId });
    const hit = await refusedCallAlerts(() => s.kms({ credentials: carol }).listKeys({}), 'UnrecognizedClientException', carol.accessKeyId);
    assert.equal(hit.alert.severity, 'high');
    assert.equal(hit.alert.principalArn, `arn:aws:iam::${ACCT}:user/carol`);
    assert.match(hit.alert.summary, /deleted/);
  });

  it('controls: an access key id that never existed, or a wrong secret for a live key, raise no alert', async () => {
    const dave = await userWithKey('dave');
    const before = hook.got.length;
    await rejects(s.kms({ credentials: newCredentials() }).listKeys({}), 'UnrecognizedClientException');
    await rejects(s.kms({ credentials: { accessKeyId: dave.accessKeyId, secretAccessKey: 'wrong' + dave.secretAccessKey } }).listKeys({}), 'InvalidSignatureException');
    // A deactivated key with a wrong secret is still alerted, as high: someone holds the key id.
    await iam.updateAccessKey({ UserName: 'dave', AccessKeyId: dave.accessKeyId, Status: 'Inactive' });
    await rejects(s.kms({ credentials: { accessKeyId: dave.accessKeyId, secretAccessKey: 'wrong' } }).listKeys({}), 'UnrecognizedClientException');
    const hit = await hook.waitFor('revoked-credentials-used', DEADLINE_MS, (r) => r.alert.accessKeyId === dave.accessKeyId);
    assert.equal(hit.alert.severity, 'high');
    assert.match(hit.alert.summary, /wrong signature/);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(hook.got.slice(before).map((g) => g.alert.accessKeyId), [dave.accessKeyId]);
  });
});
