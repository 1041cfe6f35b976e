/**
 * Conformance (issue 5): the optional response to critical alerts, off by default (account
 * setting, `keyhold alerts settings --auto-deactivate on|off`): the access key that triggered a
 * critical alert is deactivated, and that is audited as a Keyhold event. Off: nothing happens to
 * the key. The account root's key is never deactivated this way.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IAM } from '@aws-sdk/client-iam';
import { rejects } from '../helpers/assert.js';
import { cliEnv, NO_AWS_PROFILE, runCli, startServer, type Credentials, type TestServer } from '../helpers/server.js';
import { iamClient } from '../helpers/iam.js';
import { webhookReceiver, type WebhookReceiver } from '../helpers/webhook.js';

const USER_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyUser';
const ACCT = '111122223333';

describe('alerts: deactivate the triggering access key on a critical alert (AWS SDK v3, HTTPS)', () => {
  let hook: WebhookReceiver;
  let s: TestServer;
  let iam: IAM;
  let decoyId: string;
  let plainId: string;

  const env = () => cliEnv(s, undefined, NO_AWS_PROFILE);

  async function userWithKey(name: string): Promise<Credentials> {
    await iam.createUser({ UserName: name });
    await iam.attachUserPolicy({ UserName: name, PolicyArn: USER_POLICY });
    const { AccessKey: k } = await iam.createAccessKey({ UserName: name });
    return { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
  }

  async function responseEvents(): Promise<{ eventName: string; additionalEventData: { details: Record<string, string> }; userIdentity: { type: string } }[]> {
    const r = await runCli(['audit', '--event-name', 'DeactivateAccessKeyForAlert', '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  before(async () => {
    hook = await webhookReceiver();
    s = await startServer({ accountId: ACCT, args: ['--alert-webhook', hook.url] });
    iam = iamClient(s);
    decoyId = (await s.kms().createKey({ Tags: [{ TagKey: 'KeyholdDecoy', TagValue: 'true' }] })).KeyMetadata!.KeyId!;
    plainId = (await s.kms().createKey({})).KeyMetadata!.KeyId!;
  });
  after(async () => {
    await s.stop();
    s.cleanup();
    await hook.close();
  });

  it('off by default: a critical alert leaves the key that triggered it active', async () => {
    const settings = JSON.parse((await runCli(['alerts', 'settings', '--json'], env())).stdout) as { autoDeactivateOnCritical: boolean };
    assert.equal(settings.autoDeactivateOnCritical, false);
    const trent = await userWithKey('trent');
    await s.kms({ credentials: trent }).encrypt({ KeyId: decoyId, Plaintext: Buffer.from('bait') });
    const hit = await hook.waitFor('honey-key-touched', 2000, (r) => r.alert.accessKeyId === trent.accessKeyId);
    assert.equal(hit.alert.severity, 'critical');
    await new Promise((r) => setTimeout(r, 1500));
    await s.kms({ credentials: trent }).encrypt({ KeyId: plainId, Plaintext: Buffer.from('still works') });
    assert.equal((await iam.listAccessKeys({ UserName: 'trent' })).AccessKeyMetadata![0]!.Status, 'Active');
    assert.deepEqual(await responseEvents(), []);
  });

  it('on: the user\'s access key is deactivated within 2 s of the call, audited; the root\'s key is kept', async () => {
    const on = await runCli(['alerts', 'settings', '--auto-deactivate', 'on', '--json'], env());
    assert.equal(on.code, 0, on.stderr);
    assert.equal((JSON.parse(on.stdout) as { autoDeactivateOnCritical: boolean }).autoDeactivateOnCritical, true);
    const mallory = await userWithKey('mallory');
    const kms = s.kms({ credentials: mallory });
    await kms.encrypt({ KeyId: plainId, Plaintext: Buffer.from('normal use') });
    const t0 = Date.now();
    await kms.encrypt({ KeyId: decoyId, Plaintext: Buffer.from('bait') });
    // Poll until the key stops working.
    let cutOff = -1;
    for (let i = 0; i < 40; i++) {
      try {
        await kms.describeKey({ KeyId: plainId });
      } catch (e) {
        assert.equal((e as Error).name, 'UnrecognizedClientException');
        cutOff = Date.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`# access key refused ${cutOff} ms after the honey-key call`);
    assert.ok(cutOff >= 0 && cutOff < 2000, `key refused after ${cutOff} ms`);
    assert.equal((await iam.listAccessKeys({ UserName: 'mallory' })).AccessKeyMetadata![0]!.Status, 'Inactive');
    const honey = await hook.waitFor('honey-key-touched', 2000, (r) => r.alert.accessKeyId === mallory.accessKeyId);
    // The refused call that followed is itself alerted, naming mallory.
    const revoked = await hook.waitFor('revoked-credentials-used', 2000, (r) => r.alert.accessKeyId === mallory.accessKeyId);
    assert.equal(revoked.alert.principalArn, `arn:aws:iam::${ACCT}:user/mallory`);
    const events = await responseEvents();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.userIdentity.type, 'KeyholdService');
    assert.deepEqual(
      { ...events[0]!.additionalEventData.details },
      { alertId: honey.alert.alertId, rule: 'honey-key-touched', deactivatedAccessKeyId: mallory.accessKeyId, owner: `arn:aws:iam::${ACCT}:user/mallory`, outcome: 'deactivated' },
    );
    await rejects(kms.encrypt({ KeyId: plainId, Plaintext: Buffer.from('x') }), 'UnrecognizedClientException');

    // The root touching the decoy: critical alert, but the root's key is kept (and that is audited).
    await s.kms().describeKey({ KeyId: decoyId });
    await hook.waitFor('honey-key-touched', 2000, (r) => r.alert.accessKeyId === s.credentials.accessKeyId);
    await new Promise((r) => setTimeout(r, 1000));
    await s.kms().describeKey({ KeyId: plainId });
    const after = await responseEvents();
    assert.equal(after.length, 2);
    assert.equal(after[0]!.additionalEventData.details.outcome, 'root-kept');

    // Off again: nothing more is deactivated.
    await runCli(['alerts', 'settings', '--auto-deactivate', 'off'], env());
    const eve = await userWithKey('eve');
    await s.kms({ credentials: eve }).encrypt({ KeyId: decoyId, Plaintext: Buffer.from('bait') });
    await hook.waitFor('honey-key-touched', 2000, (r) => r.alert.accessKeyId === eve.accessKeyId);
    await new Promise((r) => setTimeout(r, 1000));
    await s.kms({ credentials: eve }).encrypt({ KeyId: plainId, Plaintext: Buffer.from('still works') });
  });
});
