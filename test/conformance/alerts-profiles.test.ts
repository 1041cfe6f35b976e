/**
 * Conformance (issue 5): the detectors that learn each principal's habits from the audit log
 * (first use of a key, a source address or network never seen, calls outside the usual hours,
 * Decrypt volume far above the principal's baseline), the key-policy-widening detector and the
 * account's source CIDR allowlist. Each fires in one case and stays silent in a control case.
 *
 * A test cannot wait for days of history, so the history is written into the audit log the way a
 * past server would have (events of past days, with the users' real access keys, appended to the
 * hash chain while the server is stopped). The restarted server learns it from the log: the
 * profiles are state derived from the log and survive restarts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { KMS } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { IAM } from '@aws-sdk/client-iam';
import { AuditDb, type AuditEvent } from '../../src/audit/index.js';
import { cliEnv, NO_AWS_PROFILE, runCli, startServer, tempDir, type Credentials, type TestServer } from '../helpers/server.js';
import { iamClient, policy } from '../helpers/iam.js';
import { auditDbPath } from '../helpers/audit.js';
import { webhookReceiver, type Received, type WebhookReceiver } from '../helpers/webhook.js';

const SECRET = 'profile-alert-secret';
const USER_POLICY = 'arn:aws:iam::aws:policy/KeyholdKeyUser';
const ACCT = '111122223333';
const DEADLINE_MS = 2000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('alerts: detectors learned from the log, policy widening, CIDR allowlist (AWS SDK v3, HTTPS)', () => {
  const root = tempDir();
  const dataDir = join(root, 'data');
  let hook: WebhookReceiver;
  let s: TestServer;
  let iam: IAM;
  let rootCreds: Credentials;
  const users: Record<string, Credentials> = {};
  let k1: { id: string; arn: string };
  let k2: { id: string; arn: string };
  const delays: Record<string, number> = {};

  const userArn = (name: string) => `arn:aws:iam::${ACCT}:user/${name}`;

  /** A KMS client whose connections leave from `localAddress` (any 127.x.y.z reaches the server). */
  function kmsFrom(creds: Credentials, localAddress: string): KMS {
    return new KMS({
      endpoint: s.url, region: 'us-east-1', credentials: creds, maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(s.caFile!), localAddress }) }),
    });
  }

  /** Waits for an alert of `rule` for `principal`, checking the 2 s budget from `t0`. */
  async function alerted(rule: string, principal: string, t0: number, pred: (r: Received) => boolean = () => true): Promise<Received> {
    const hit = await hook.waitFor(rule, DEADLINE_MS + 2000, (r) => r.alert.principalArn === principal && pred(r));
    delays[rule] = hit.at - t0;
    assert.ok(hit.at - t0 < DEADLINE_MS, `${rule} delivered ${hit.at - t0} ms after the call (budget ${DEADLINE_MS} ms)`);
    assert.ok(hook.signedWith(hit, SECRET));
    return hit;
  }

  /** No alert of `rule` for `principal` (after giving the detectors time to run). */
  async function silent(rule: string, principal: string): Promise<void> {
    await new Promise((r) => setTimeout(r, 1500));
    const got = hook.got.filter((g) => g.alert.rule === rule && g.alert.principalArn === principal);
    assert.deepEqual(got.map((g) => g.alert.summary), [], `unexpected ${rule} alert for ${principal}`);
  }

  before(async () => {
    hook = await webhookReceiver();
    const args = ['--alert-webhook', hook.url];
    const env = { KEYHOLD_ALERT_WEBHOOK_SECRET: SECRET };
    s = await startServer({ dataDir, accountId: ACCT, args, env });
    rootCreds = s.credentials;
    iam = iamClient(s);
    const m1 = (await s.kms().createKey({ Description: 'k1' })).KeyMetadata!;
    const m2 = (await s.kms().createKey({ Description: 'k2' })).KeyMetadata!;
    k1 = { id: m1.KeyId!, arn: m1.Arn! };
    k2 = { id: m2.KeyId!, arn: m2.Arn! };
    for (const name of ['night', 'daytime', 'heavy', 'steady', 'roamer', 'homebody']) {
      await iam.createUser({ UserName: name });
      await iam.attachUserPolicy({ UserName: name, PolicyArn: USER_POLICY });
      const { AccessKey: k } = await iam.createAccessKey({ UserName: name });
      users[name] = { accessKeyId: k!.AccessKeyId!, secretAccessKey: k!.SecretAccessKey! };
    }
    assert.equal(await s.stop(), 0);

    // History of the past six days, as a past server would have logged it.
    const now = Date.now();
    const hourNow = new Date(now).getUTCHours();
    const atHour = (daysAgo: number, hour: number, minute: number) => {
      const d = new Date(now - daysAgo * DAY);
      d.setUTCHours(hour, minute, 0, 0);
      return d.getTime();
    };
    const bodies: string[] = [];
    const event = (user: string, eventName: string, t: number, key = k1.arn): void => {
      const e: AuditEvent = {
        eventId: randomUUID(), eventTime: new Date(t).toISOString(), eventName, eventSource: 'kms.amazonaws.com', awsRegion: 'us-east-1',
        requestId: randomUUID(), sourceIPAddress: '127.0.0.1', userAgent: 'history', readOnly: false,
        principal: { type: 'IAMUser', arn: userArn(user), accountId: ACCT, accessKeyId: users[user]!.accessKeyId, userName: user, isRoot: false },
        accessKeyId: users[user]!.accessKeyId, resources: [{ arn: key, keyVersion: 1 }],
      };
      bodies.push(JSON.stringify(e));
    };
    for (let day = 1; day <= 6; day++) {
      for (let i = 0; i < 10; i++) {
        // 'night' works twelve hours away from now; everyone else in the current hour.
        event('night', 'Encrypt', atHour(day, (hourNow + 12) % 24, i * 5));
        event('daytime', 'Encrypt', atHour(day, hourNow, i * 5));
        event('roamer', 'Encrypt', atHour(day, hourNow, i * 5));
        event('homebody', 'Encrypt', atHour(day, hourNow, i * 5));
      }
      // Decrypt baselines: 'heavy' 2 a minute, 'steady' 25 a minute, in 4 active minutes a day.
      for (let minute = 0; minute < 4; minute++) {
        for (let i = 0; i < 2; i++) event('heavy', 'Decrypt', atHour(day, hourNow, minute) + i * 1000);
        for (let i = 0; i < 25; i++) event('steady', 'Decrypt', atHour(day, hourNow, minute) + i * 1000);
      }
    }
    const db = AuditDb.open(auditDbPath(dataDir));
    try {
      db.append(bodies);
    } finally {
      db.close();
    }
    s = await startServer({ dataDir, accountId: ACCT, credentials: rootCreds, args, env });
    iam = iamClient(s);
  });

  after(async () => {
    await s.stop();
    await hook.close();
    rmSync(root, { recursive: true, force: true });
    console.log(`# alert delays (call to webhook receipt), ms: ${JSON.stringify(delays)}`);
  });

  it('calls outside the usual hours learned from the log fire; a principal within its hours does not', async () => {
    const t0 = Date.now();
    await s.kms({ credentials: users.night }).encrypt({ KeyId: k1.id, Plaintext: Buffer.from('late') });
    await s.kms({ credentials: users.daytime }).encrypt({ KeyId: k1.id, Plaintext: Buffer.from('usual') });
    const hit = await alerted('unusual-hour', userArn('night'), t0);
    assert.equal(hit.alert.severity, 'medium');
    assert.match(hit.alert.summary, /in 60 earlier calls over 6 days/);
    await silent('unusual-hour', userArn('daytime'));
  });

  it('Decrypt volume far above the principal\'s own baseline fires; the same volume within another\'s baseline does not', async () => {
    const { CiphertextBlob } = await s.kms().encrypt({ KeyId: k1.id, Plaintext: Buffer.from('payroll') });
    const burst = async (creds: Credentials) => {
      const kms = s.kms({ credentials: creds });
      // 120 calls: even if a minute boundary splits them, one minute gets at least 60 (> 52, heavy's threshold; < 250, steady's).
      for (let i = 0; i < 15; i++) await Promise.all(Array.from({ length: 8 }, () => kms.decrypt({ CiphertextBlob })));
    };
    const t0 = Date.now();
    await burst(users.heavy!);
    const hit = await hook.waitFor('decrypt-volume', DEADLINE_MS + 2000, (r) => r.alert.principalArn === userArn('heavy'));
    delays['decrypt-volume (from burst start)'] = hit.at - t0;
    assert.equal(hit.alert.severity, 'high');
    assert.match(hit.alert.summary, /baseline is [\d.]+ per active minute over 2[45] minutes/);
    await burst(users.steady!);
    await silent('decrypt-volume', userArn('steady'));
    // Neither used a key for the first time: k1 is in their history.
    assert.ok(!hook.got.some((g) => g.alert.rule === 'first-key-use' && [userArn('heavy'), userArn('steady')].includes(g.alert.principalArn!)));
  });

  it('a source address never seen for the principal fires (medium for a new network); known ones do not', async () => {
    let t0 = Date.now();
    await kmsFrom(users.roamer!, '127.0.0.2').encrypt({ KeyId: k1.id, Plaintext: Buffer.from('x') });
    const sameNet = await alerted('new-source-ip', userArn('roamer'), t0, (r) => r.alert.summary.includes('127.0.0.2'));
    assert.equal(sameNet.alert.severity, 'low');
    assert.match(sameNet.alert.summary, /network 127\.0\.0\.0\/24 is known/);
    t0 = Date.now();
    await kmsFrom(users.roamer!, '127.9.8.7').encrypt({ KeyId: k1.id, Plaintext: Buffer.from('x') });
    const newNet = await alerted('new-source-ip', userArn('roamer'), t0, (r) => r.alert.summary.includes('127.9.8.7'));
    assert.equal(newNet.alert.severity, 'medium');
    // Known addresses, including the one first seen a moment ago, raise nothing more.
    const count = hook.got.filter((g) => g.alert.rule === 'new-source-ip').length;
    await kmsFrom(users.homebody!, '127.0.0.1').encrypt({ KeyId: k1.id, Plaintext: Buffer.from('x') });
    await kmsFrom(users.roamer!, '127.0.0.2').encrypt({ KeyId: k1.id, Plaintext: Buffer.from('x') });
    await silent('new-source-ip', userArn('homebody'));
    assert.equal(hook.got.filter((g) => g.alert.rule === 'new-source-ip').length, count);
  });

  it('the first use of a key by a principal fires once; its creator and known keys do not', async () => {
    const t0 = Date.now();
    await s.kms({ credentials: users.homebody }).encrypt({ KeyId: k2.id, Plaintext: Buffer.from('x') });
    const hit = await alerted('first-key-use', userArn('homebody'), t0);
    assert.equal(hit.alert.keyArn, k2.arn);
    assert.equal(hit.alert.severity, 'low');
    await s.kms({ credentials: users.homebody }).encrypt({ KeyId: k2.id, Plaintext: Buffer.from('again') });
    // Root created k2: its own use is not news.
    await s.kms().encrypt({ KeyId: k2.id, Plaintext: Buffer.from('x') });
    await silent('first-key-use', `arn:aws:iam::${ACCT}:root`);
    assert.equal(hook.got.filter((g) => g.alert.rule === 'first-key-use' && g.alert.principalArn === userArn('homebody')).length, 1);
  });

  it('a key policy change that widens access fires, naming what was added; a narrowing one does not', async () => {
    const rootArn = `arn:aws:iam::${ACCT}:root`;
    const base = { Sid: 'Root', Effect: 'Allow', Principal: { AWS: rootArn }, Action: 'kms:*', Resource: '*' };
    const t0 = Date.now();
    await s.kms().putKeyPolicy({
      KeyId: k2.id, PolicyName: 'default',
      Policy: policy(base, { Sid: 'Roamer', Effect: 'Allow', Principal: { AWS: userArn('roamer') }, Action: ['kms:Decrypt', 'kms:Encrypt'], Resource: '*' }),
    });
    const hit = await alerted('key-policy-widened', rootArn, t0);
    assert.equal(hit.alert.severity, 'high');
    assert.equal(hit.alert.keyArn, k2.arn);
    assert.match(hit.alert.summary, new RegExp(`new principals ${userArn('roamer')}`));
    assert.match(hit.alert.summary, /may now kms:decrypt, kms:encrypt/);
    // Narrowing it back (and a policy within what kms:* already allowed) is not widening.
    const n = hook.got.filter((g) => g.alert.rule === 'key-policy-widened').length;
    await s.kms().putKeyPolicy({ KeyId: k2.id, PolicyName: 'default', Policy: policy(base) });
    await s.kms().putKeyPolicy({ KeyId: k2.id, PolicyName: 'default', Policy: policy({ ...base, Action: ['kms:Encrypt', 'kms:PutKeyPolicy'] }) });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(hook.got.filter((g) => g.alert.rule === 'key-policy-widened').length, n);
    // Taking back a Deny widens too.
    await s.kms().putKeyPolicy({
      KeyId: k1.id, PolicyName: 'default',
      Policy: policy(base, { Sid: 'NoNight', Effect: 'Deny', Principal: { AWS: userArn('night') }, Action: 'kms:Decrypt', Resource: '*' }),
    });
    const t1 = Date.now();
    await s.kms().putKeyPolicy({ KeyId: k1.id, PolicyName: 'default', Policy: policy(base) });
    const undeny = await alerted('key-policy-widened', rootArn, t1, (r) => r.alert.keyArn === k1.arn && r.alert.summary.includes('no longer denied'));
    assert.match(undeny.alert.summary, new RegExp(`${userArn('night')} no longer denied kms:decrypt`));
  });

  it('with a source CIDR allowlist set through the API, calls from outside it fire; calls inside do not', async () => {
    const bad = await runCli(['alerts', 'settings', '--source-cidr', '10.0.0.0/33'], cliEnv(s, rootCreds, NO_AWS_PROFILE));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ValidationException/);
    const set = await runCli(['alerts', 'settings', '--source-cidr', '127.0.0.0/24', '--source-cidr', '10.0.0.0/8', '--json'], cliEnv(s, rootCreds, NO_AWS_PROFILE));
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual((JSON.parse(set.stdout) as { sourceCidrAllowlist: string[] }).sourceCidrAllowlist, ['127.0.0.0/24', '10.0.0.0/8']);
    await kmsFrom(users.daytime!, '127.0.0.1').encrypt({ KeyId: k1.id, Plaintext: Buffer.from('inside') });
    await silent('source-outside-allowlist', userArn('daytime'));
    const t0 = Date.now();
    await kmsFrom(users.daytime!, '127.0.5.5').encrypt({ KeyId: k1.id, Plaintext: Buffer.from('outside') });
    const hit = await alerted('source-outside-allowlist', userArn('daytime'), t0);
    assert.equal(hit.alert.severity, 'high');
    assert.match(hit.alert.summary, /from 127\.0\.5\.5, outside the account's allowed networks 127\.0\.0\.0\/24, 10\.0\.0\.0\/8/);
    // The setting is shown, and turned off with an empty list.
    const off = await runCli(['alerts', 'settings', '--no-source-cidrs', '--json'], cliEnv(s, rootCreds, NO_AWS_PROFILE));
    assert.deepEqual((JSON.parse(off.stdout) as { sourceCidrAllowlist: string[] }).sourceCidrAllowlist, []);
    await kmsFrom(users.homebody!, '127.0.5.5').encrypt({ KeyId: k1.id, Plaintext: Buffer.from('outside, no list') });
    await silent('source-outside-allowlist', userArn('homebody'));
  });
});
