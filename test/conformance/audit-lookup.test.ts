/**
 * Conformance: the audit log through CloudTrail's LookupEvents (JSON 1.1, SigV4 service
 * `cloudtrail`), driven by @aws-sdk/client-cloudtrail, the AWS CLI and `keyhold audit`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { Agent } from 'node:https';
import { readFileSync } from 'node:fs';
import { CloudTrail } from '@aws-sdk/client-cloudtrail';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { rejects } from '../helpers/assert.js';
import { cliEnv, newCredentials, requireTool, runCli, startServer, type TestServer } from '../helpers/server.js';

describe('audit log: CloudTrail LookupEvents', () => {
  let s: TestServer;
  let ct: CloudTrail;
  let keyArn = '';
  let keyId = '';
  const stranger = newCredentials();

  function cloudtrail(region = 'us-east-1'): CloudTrail {
    return new CloudTrail({
      endpoint: s.url, region, credentials: s.credentials, maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(s.caFile!) }) }),
    });
  }
  const env = () => cliEnv(s, undefined, { AWS_DEFAULT_REGION: 'us-east-1' });

  before(async () => {
    s = await startServer();
    const kms = s.kms();
    const key = (await kms.createKey({ Description: 'lookup' })).KeyMetadata!;
    keyArn = key.Arn!;
    keyId = key.KeyId!;
    for (let i = 0; i < 3; i++) await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from(`x${i}`), EncryptionContext: { n: String(i) } });
    await kms.listKeys({});
    await rejects(s.kms({ credentials: stranger }).listKeys({}), 'UnrecognizedClientException');
    ct = cloudtrail();
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  it('returns events newest first with CloudTrail fields and the full record in CloudTrailEvent', async () => {
    const r = await ct.lookupEvents({ LookupAttributes: [{ AttributeKey: 'EventSource', AttributeValue: 'kms.amazonaws.com' }] });
    const names = r.Events!.map((e) => e.EventName);
    assert.deepEqual(names, ['ListKeys', 'ListKeys', 'Encrypt', 'Encrypt', 'Encrypt', 'CreateKey']);
    const enc = r.Events![2]!;
    assert.equal(enc.EventSource, 'kms.amazonaws.com');
    assert.equal(enc.ReadOnly, 'true', 'CloudTrail marks KMS cryptographic calls read-only');
    assert.equal(enc.AccessKeyId, s.credentials.accessKeyId);
    assert.equal(enc.Username, 'root');
    assert.ok(enc.EventTime instanceof Date && Math.abs(enc.EventTime.getTime() - Date.now()) < 60_000);
    assert.deepEqual(enc.Resources, [{ ResourceType: 'AWS::KMS::Key', ResourceName: keyArn }]);
    const record = JSON.parse(enc.CloudTrailEvent!);
    assert.equal(record.eventVersion, '1.08');
    assert.equal(record.eventID, enc.EventId);
    assert.equal(record.eventName, 'Encrypt');
    assert.equal(record.userIdentity.type, 'Root');
    assert.equal(record.userIdentity.arn, `arn:aws:iam::${s.accountId}:root`);
    assert.equal(record.userIdentity.accessKeyId, s.credentials.accessKeyId);
    assert.equal(record.awsRegion, 'us-east-1');
    assert.equal(record.sourceIPAddress, '127.0.0.1');
    assert.equal(record.requestParameters.keyId, keyArn);
    assert.deepEqual(record.requestParameters.encryptionContext, { n: '2' });
    assert.deepEqual(record.resources, [{ accountId: s.accountId, type: 'AWS::KMS::Key', ARN: keyArn }]);
    assert.deepEqual(record.additionalEventData.keyVersions, [{ keyArn, keyVersion: 1 }]);
    assert.equal(record.additionalEventData.authorization.effect, 'Allow');
    assert.equal(record.recipientAccountId, s.accountId);
    assert.equal(record.eventType, 'AwsApiCall');
    assert.match(record.tlsDetails.tlsVersion, /^TLSv1\.[23]$/);
    assert.match(record.eventTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // The authentication failure: no principal, the access key presented, the error.
    const failed = JSON.parse(r.Events![0]!.CloudTrailEvent!);
    assert.equal(failed.errorCode, 'UnrecognizedClientException');
    assert.equal(failed.userIdentity.accessKeyId, stranger.accessKeyId);
  });

  it('filters by each lookup attribute', async () => {
    const find = async (AttributeKey: string, AttributeValue: string) =>
      (await ct.lookupEvents({ LookupAttributes: [{ AttributeKey: AttributeKey as never, AttributeValue }] })).Events!;
    assert.equal((await find('EventName', 'Encrypt')).length, 3);
    assert.deepEqual((await find('ResourceName', keyArn)).map((e) => e.EventName), ['Encrypt', 'Encrypt', 'Encrypt', 'CreateKey']);
    assert.equal((await find('ResourceName', keyId)).length, 4, 'a key is found by its bare id too');
    assert.equal((await find('ResourceType', 'AWS::KMS::Key')).length, 4);
    assert.deepEqual((await find('AccessKeyId', stranger.accessKeyId)).map((e) => e.EventName), ['ListKeys']);
    assert.ok((await find('Username', 'root')).every((e) => e.Username === 'root'));
    const ro = await find('ReadOnly', 'true');
    assert.ok(ro.length > 0 && ro.every((e) => e.ReadOnly === 'true'));
    const writes = await find('ReadOnly', 'false');
    assert.ok(writes.every((e) => e.ReadOnly === 'false'));
    assert.ok(writes.some((e) => e.EventName === 'CreateKey') && !writes.some((e) => e.EventName === 'Encrypt'));
    const own = await find('EventSource', 'cloudtrail.amazonaws.com');
    assert.ok(own.length >= 5 && own.every((e) => e.EventName === 'LookupEvents'), 'LookupEvents calls are audited too');
    const one = (await find('EventName', 'CreateKey'))[0]!;
    assert.deepEqual((await find('EventId', one.EventId!)).map((e) => e.EventId), [one.EventId]);
    assert.equal((await find('EventName', 'NoSuchEvent')).length, 0);
  });

  it('honours StartTime/EndTime and answers the region it is asked in', async () => {
    const all = (await ct.lookupEvents({ LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Encrypt' }] })).Events!;
    const oldest = all[all.length - 1]!.EventTime!;
    const future = new Date(Date.now() + 3600_000);
    assert.equal((await ct.lookupEvents({ StartTime: future })).Events!.length, 0);
    assert.equal((await ct.lookupEvents({ EndTime: new Date(oldest.getTime() - 60_000), LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Encrypt' }] })).Events!.length, 0);
    assert.equal((await ct.lookupEvents({ StartTime: new Date(oldest.getTime() - 1000), EndTime: future, LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Encrypt' }] })).Events!.length, 3);
    await rejects(ct.lookupEvents({ StartTime: future, EndTime: oldest }), 'InvalidTimeRangeException');
    const eu = cloudtrail('eu-west-1');
    assert.equal((await eu.lookupEvents({ LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Encrypt' }] })).Events!.length, 0);
  });

  it('paginates with MaxResults and NextToken, and rejects bad parameters with CloudTrail errors', async () => {
    const filter = [{ AttributeKey: 'EventSource' as const, AttributeValue: 'kms.amazonaws.com' }];
    const whole = (await ct.lookupEvents({ LookupAttributes: filter })).Events!.map((e) => e.EventId);
    const paged: (string | undefined)[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await ct.lookupEvents({ LookupAttributes: filter, MaxResults: 2, NextToken: token });
      assert.ok(r.Events!.length <= 2);
      paged.push(...r.Events!.map((e) => e.EventId));
      token = r.NextToken;
      pages++;
    } while (token);
    assert.deepEqual(paged, whole);
    assert.equal(pages, 3);
    const first = await ct.lookupEvents({ LookupAttributes: filter, MaxResults: 2 });
    await rejects(ct.lookupEvents({ MaxResults: 2, NextToken: first.NextToken }), 'InvalidNextTokenException');
    await rejects(ct.lookupEvents({ NextToken: 'garbage' }), 'InvalidNextTokenException');
    await rejects(ct.lookupEvents({ MaxResults: 51 }), 'InvalidMaxResultsException');
    await rejects(ct.lookupEvents({ LookupAttributes: [filter[0]!, { AttributeKey: 'EventName', AttributeValue: 'Encrypt' }] }), 'InvalidLookupAttributesException');
    await rejects(ct.lookupEvents({ LookupAttributes: [{ AttributeKey: 'ReadOnly', AttributeValue: 'maybe' }] }), 'InvalidLookupAttributesException');
  });

  it('works with `aws cloudtrail lookup-events --endpoint-url`', async (t) => {
    const haveAws = spawnSync('aws', ['--version']).status === 0;
    if (!requireTool('aws', haveAws)) return t.skip('aws CLI not installed');
    const out = execFileSync('aws', [
      'cloudtrail', 'lookup-events', '--endpoint-url', s.url, '--region', 'us-east-1',
      '--lookup-attributes', 'AttributeKey=EventName,AttributeValue=Encrypt', '--page-size', '2', '--output', 'json',
    ], { env: { ...process.env, ...env(), AWS_ENDPOINT_URL: '' }, encoding: 'utf8' });
    const events = (JSON.parse(out) as { Events: { EventName: string; CloudTrailEvent: string; Resources: { ResourceName: string }[] }[] }).Events;
    assert.equal(events.length, 3, 'the CLI follows NextToken across pages of 2');
    assert.ok(events.every((e) => e.EventName === 'Encrypt' && e.Resources[0]!.ResourceName === keyArn));
    assert.equal(JSON.parse(events[0]!.CloudTrailEvent).eventSource, 'kms.amazonaws.com');
  });

  it('`keyhold audit` takes the same filters, as a table or --json', async () => {
    const j = await runCli(['audit', '--event-name', 'Encrypt', '--json'], env());
    assert.equal(j.code, 0, j.stderr);
    const records = JSON.parse(j.stdout) as { eventName: string; resources: { ARN: string }[] }[];
    assert.equal(records.length, 3);
    assert.ok(records.every((r) => r.eventName === 'Encrypt' && r.resources[0]!.ARN === keyArn));
    const byKey = await runCli(['audit', 'lookup', '--resource-name', keyId, '--max-results', '2', '--json'], env());
    assert.equal(byKey.code, 0, byKey.stderr);
    assert.equal((JSON.parse(byKey.stdout) as unknown[]).length, 2);
    const table = await runCli(['audit', '--access-key-id', stranger.accessKeyId], env());
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^TIME\s+EVENT\s+USER\s+SOURCE IP\s+RESOURCE\s+ERROR$/);
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, new RegExp(`ListKeys\\s+${stranger.accessKeyId}\\s+127\\.0\\.0\\.1\\s+-\\s+UnrecognizedClientException`));
    const two = await runCli(['audit', '--event-name', 'Encrypt', '--username', 'root'], env());
    assert.equal(two.code, 2);
    assert.match(two.stderr, /one filter at a time/);
  });

  it('GetKeyLastUsage names the last successful cryptographic use; last use per principal and key', async () => {
    const kms = s.kms();
    const fresh = (await kms.createKey({})).KeyMetadata!;
    const unused = await kms.getKeyLastUsage({ KeyId: fresh.KeyId! });
    assert.equal(unused.KeyId, fresh.KeyId);
    assert.equal(unused.KeyLastUsage, undefined);
    assert.equal(unused.KeyCreationDate!.getTime(), fresh.CreationDate!.getTime());
    assert.equal(unused.TrackingStartDate!.getTime(), fresh.CreationDate!.getTime());
    const ct1 = await kms.encrypt({ KeyId: fresh.KeyId!, Plaintext: Buffer.from('a') });
    await kms.decrypt({ CiphertextBlob: ct1.CiphertextBlob! });
    await rejects(kms.decrypt({ CiphertextBlob: ct1.CiphertextBlob!, EncryptionContext: { wrong: 'x' } }), 'InvalidCiphertextException');
    await kms.describeKey({ KeyId: fresh.KeyId! });
    const used = await kms.getKeyLastUsage({ KeyId: fresh.Arn! });
    assert.equal(used.KeyLastUsage!.Operation, 'Decrypt', 'the failed Decrypt and the DescribeKey do not count');
    const decrypts = (await ct.lookupEvents({ LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Decrypt' }] })).Events!;
    const okDecrypt = decrypts.find((e) => !JSON.parse(e.CloudTrailEvent!).errorCode)!;
    assert.equal(used.KeyLastUsage!.CloudTrailEventId, okDecrypt.EventId);
    assert.equal(used.KeyLastUsage!.KmsRequestId, JSON.parse(okDecrypt.CloudTrailEvent!).requestID);
    assert.ok(Math.abs(used.KeyLastUsage!.Timestamp!.getTime() - Date.now()) < 60_000);
    await rejects(kms.getKeyLastUsage({ KeyId: 'alias/nope' }), 'NotFoundException');

    const r = await runCli(['audit', 'last-use', '--principal', `arn:aws:iam::${s.accountId}:root`, '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { principalArn: string; keyArn: string; lastOperation: string; count: number }[];
    assert.deepEqual(rows.map((x) => [x.keyArn, x.lastOperation, x.count]), [[fresh.Arn, 'Decrypt', 2], [keyArn, 'Encrypt', 3]]);
    const one = await runCli(['audit', 'last-use', '--key', keyId, '--json'], env());
    assert.equal((JSON.parse(one.stdout) as unknown[]).length, 1);
  });
});
