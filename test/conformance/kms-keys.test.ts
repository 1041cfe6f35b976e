/**
 * Conformance: the key lifecycle, aliases, tags and policies through the official AWS SDK against a
 * really started server over HTTPS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KMS } from '@aws-sdk/client-kms';
import { rejects } from '../helpers/assert.js';
import { startServer, type TestServer } from '../helpers/server.js';


describe('KMS key management (AWS SDK v3, HTTPS)', () => {
  let server: TestServer;
  let kms: KMS;

  before(async () => {
    server = await startServer();
    kms = server.kms();
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('CreateKey returns full metadata with an ARN in the caller region and account', async () => {
    const { KeyMetadata: m } = await kms.createKey({ Description: 'first', Tags: [{ TagKey: 'team', TagValue: 'payments' }] });
    assert.ok(m);
    assert.match(m.KeyId!, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(m.Arn, `arn:aws:kms:us-east-1:${server.accountId}:key/${m.KeyId}`);
    assert.equal(m.AWSAccountId, server.accountId);
    assert.equal(m.KeyState, 'Enabled');
    assert.equal(m.Enabled, true);
    assert.equal(m.KeySpec, 'SYMMETRIC_DEFAULT');
    assert.equal(m.KeyUsage, 'ENCRYPT_DECRYPT');
    assert.equal(m.Origin, 'AWS_KMS');
    assert.equal(m.KeyManager, 'CUSTOMER');
    assert.deepEqual(m.EncryptionAlgorithms, ['SYMMETRIC_DEFAULT']);
    assert.equal(m.Description, 'first');
    assert.ok(m.CreationDate instanceof Date && Math.abs(m.CreationDate.getTime() - Date.now()) < 60_000);
    const d = await kms.describeKey({ KeyId: m.Arn! });
    assert.equal(d.KeyMetadata!.KeyId, m.KeyId);
  });

  it('CreateKey rejects what this server does not do, and bad policies and tags', async () => {
    await rejects(kms.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }), 'UnsupportedOperationException');
    await rejects(kms.createKey({ Policy: '{not json' }), 'MalformedPolicyDocumentException', /not valid JSON/);
    await rejects(
      kms.createKey({ Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::999999999999:root' }, Action: 'kms:*', Resource: '*' }] }) }),
      'MalformedPolicyDocumentException',
      /will not allow you to update the key policy/,
    );
    await rejects(kms.createKey({ Tags: [{ TagKey: 'aws:x', TagValue: 'y' }] }), 'TagException', 'Tags beginning with aws: are reserved');
    await rejects(kms.createKey({ Tags: [{ TagKey: 'a', TagValue: '1' }, { TagKey: 'a', TagValue: '2' }] }), 'TagException', 'Duplicate tag keys');
    await rejects(kms.createKey({ Tags: Array.from({ length: 51 }, (_, i) => ({ TagKey: `k${i}`, TagValue: 'v' })) }), 'TagException', 'Too many tags');
    await rejects(kms.createKey({ Description: 'x'.repeat(8193) }), 'ValidationException', /description.*less than or equal to 8192/);
  });

  it('DescribeKey finds keys by id, ARN, alias name and alias ARN, and reports unknown ones as AWS does', async () => {
    const { KeyMetadata: m } = await kms.createKey({});
    await kms.createAlias({ AliasName: 'alias/describe-me', TargetKeyId: m!.KeyId! });
    for (const id of [m!.KeyId!, m!.Arn!, 'alias/describe-me', `arn:aws:kms:us-east-1:${server.accountId}:alias/describe-me`]) {
      const d = await kms.describeKey({ KeyId: id });
      assert.equal(d.KeyMetadata!.Arn, m!.Arn, id);
    }
    await rejects(kms.describeKey({ KeyId: 'fake-key-id' }), 'NotFoundException', "Invalid keyId 'fake-key-id'");
    const missing = '00000000-0000-4000-8000-000000000000';
    await rejects(kms.describeKey({ KeyId: missing }), 'NotFoundException', `Key 'arn:aws:kms:us-east-1:${server.accountId}:key/${missing}' does not exist`);
    await rejects(kms.describeKey({ KeyId: 'alias/nope' }), 'NotFoundException', `Alias arn:aws:kms:us-east-1:${server.accountId}:alias/nope is not found.`);
    await rejects(kms.describeKey({ KeyId: '' }), 'ValidationException', /keyId.*greater than or equal to 1/);
  });

  it('keys live per region: another region does not see them, and has its own', async () => {
    const { KeyMetadata: m } = await kms.createKey({});
    const west = server.kms({ region: 'eu-west-1' });
    await rejects(west.describeKey({ KeyId: m!.KeyId! }), 'NotFoundException');
    await rejects(west.describeKey({ KeyId: m!.Arn! }), 'NotFoundException');
    const { KeyMetadata: w } = await west.createKey({});
    assert.equal(w!.Arn, `arn:aws:kms:eu-west-1:${server.accountId}:key/${w!.KeyId}`);
    const listed = await west.listKeys({});
    assert.deepEqual(listed.Keys!.map((k) => k.KeyId), [w!.KeyId]);
    const enc = await west.encrypt({ KeyId: w!.KeyId!, Plaintext: Buffer.from('x') });
    await rejects(kms.decrypt({ CiphertextBlob: enc.CiphertextBlob! }), 'InvalidCiphertextException');
  });

  it('ListKeys paginates with Limit and Marker, and refuses a forged marker', async () => {
    const k = server.kms({ region: 'ap-south-1' });
    const created = new Set<string>();
    for (let i = 0; i < 5; i++) created.add((await k.createKey({})).KeyMetadata!.KeyId!);
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await k.listKeys({ Limit: 2, Marker: marker });
      pages++;
      assert.ok(page.Keys!.length <= 2);
      for (const key of page.Keys!) {
        seen.push(key.KeyId!);
        assert.equal(key.KeyArn, `arn:aws:kms:ap-south-1:${server.accountId}:key/${key.KeyId}`);
      }
      assert.equal(page.Truncated, page.NextMarker !== undefined);
      marker = page.NextMarker;
    } while (marker);
    assert.equal(pages, 3);
    assert.deepEqual(new Set(seen), created);
    assert.equal(seen.length, 5);
    await rejects(k.listKeys({ Marker: 'bm90LWEtbWFya2Vy' }), 'InvalidMarkerException');
    await rejects(k.listKeys({ Limit: 0 }), 'ValidationException', /limit.*greater than or equal to 1/);
    await rejects(k.listKeys({ Limit: 1001 }), 'ValidationException', /limit.*less than or equal to 1000/);
  });

  it('DisableKey blocks cryptography but not management; EnableKey restores it', async () => {
    const { KeyMetadata: m } = await kms.createKey({});
    const ct = await kms.encrypt({ KeyId: m!.KeyId!, Plaintext: Buffer.from('hello') });
    await kms.disableKey({ KeyId: m!.KeyId! });
    const d = await kms.describeKey({ KeyId: m!.KeyId! });
    assert.equal(d.KeyMetadata!.KeyState, 'Disabled');
    assert.equal(d.KeyMetadata!.Enabled, false);
    await rejects(kms.encrypt({ KeyId: m!.KeyId!, Plaintext: Buffer.from('x') }), 'DisabledException', `${m!.Arn} is disabled.`);
    await rejects(kms.decrypt({ CiphertextBlob: ct.CiphertextBlob! }), 'DisabledException', `${m!.Arn} is disabled.`);
    await rejects(kms.generateDataKey({ KeyId: m!.KeyId!, KeySpec: 'AES_256' }), 'DisabledException');
    await kms.getKeyPolicy({ KeyId: m!.KeyId! });
    await kms.tagResource({ KeyId: m!.KeyId!, Tags: [{ TagKey: 'still', TagValue: 'works' }] });
    await kms.enableKey({ KeyId: m!.KeyId! });
    const back = await kms.decrypt({ CiphertextBlob: ct.CiphertextBlob! });
    assert.equal(Buffer.from(back.Plaintext!).toString(), 'hello');
    await rejects(kms.enableKey({ KeyId: 'alias/whatever' }), 'NotFoundException');
  });

  it('ScheduleKeyDeletion: 7 to 30 days, blocks use, cancel returns the key to Disabled', async () => {
    const { KeyMetadata: m } = await kms.createKey({});
    const ct = await kms.encrypt({ KeyId: m!.KeyId!, Plaintext: Buffer.from('data') });
    await rejects(kms.scheduleKeyDeletion({ KeyId: m!.KeyId!, PendingWindowInDays: 6 }), 'ValidationException', /pendingWindowInDays.*greater than or equal to 7/);
    await rejects(kms.scheduleKeyDeletion({ KeyId: m!.KeyId!, PendingWindowInDays: 31 }), 'ValidationException', /less than or equal to 30/);
    const before = Date.now();
    const s = await kms.scheduleKeyDeletion({ KeyId: m!.KeyId!, PendingWindowInDays: 7 });
    assert.equal(s.KeyId, m!.Arn);
    assert.equal(s.KeyState, 'PendingDeletion');
    assert.equal(s.PendingWindowInDays, 7);
    const expected = before + 7 * 86400_000;
    assert.ok(Math.abs(s.DeletionDate!.getTime() - expected) < 60_000);
    const d = await kms.describeKey({ KeyId: m!.KeyId! });
    assert.equal(d.KeyMetadata!.KeyState, 'PendingDeletion');
    assert.ok(d.KeyMetadata!.DeletionDate);
    const pending = `${m!.Arn} is pending deletion.`;
    await rejects(kms.encrypt({ KeyId: m!.KeyId!, Plaintext: Buffer.from('x') }), 'KMSInvalidStateException', pending);
    await rejects(kms.decrypt({ CiphertextBlob: ct.CiphertextBlob! }), 'KMSInvalidStateException', pending);
    await rejects(kms.tagResource({ KeyId: m!.KeyId!, Tags: [{ TagKey: 'a', TagValue: 'b' }] }), 'KMSInvalidStateException', pending);
    await rejects(kms.scheduleKeyDeletion({ KeyId: m!.KeyId! }), 'KMSInvalidStateException', pending);
    await rejects(kms.enableKey({ KeyId: m!.KeyId! }), 'KMSInvalidStateException', pending);
    await rejects(kms.createAlias({ AliasName: 'alias/for-pending', TargetKeyId: m!.KeyId! }), 'KMSInvalidStateException');
    const c = await kms.cancelKeyDeletion({ KeyId: m!.KeyId! });
    assert.equal(c.KeyId, m!.Arn);
    const after = await kms.describeKey({ KeyId: m!.KeyId! });
    assert.equal(after.KeyMetadata!.KeyState, 'Disabled');
    assert.equal(after.KeyMetadata!.DeletionDate, undefined);
    await rejects(kms.cancelKeyDeletion({ KeyId: m!.KeyId! }), 'KMSInvalidStateException', `${m!.Arn} is not pending deletion.`);
    await kms.enableKey({ KeyId: m!.KeyId! });
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: ct.CiphertextBlob! })).Plaintext!).toString(), 'data');
  });

  it('UpdateKeyDescription changes the description', async () => {
    const { KeyMetadata: m } = await kms.createKey({ Description: 'old' });
    await kms.updateKeyDescription({ KeyId: m!.Arn!, Description: 'new' });
    assert.equal((await kms.describeKey({ KeyId: m!.KeyId! })).KeyMetadata!.Description, 'new');
  });

  it('aliases: create, list, update, delete, with AWS name rules', async () => {
    const a = (await kms.createKey({})).KeyMetadata!;
    const b = (await kms.createKey({})).KeyMetadata!;
    await kms.createAlias({ AliasName: 'alias/app-data', TargetKeyId: a.KeyId! });
    await rejects(kms.createAlias({ AliasName: 'alias/app-data', TargetKeyId: b.KeyId! }), 'AlreadyExistsException', /alias\/app-data already exists/);
    await rejects(kms.createAlias({ AliasName: 'alias/aws/mine', TargetKeyId: a.KeyId! }), 'NotAuthorizedException');
    await rejects(kms.createAlias({ AliasName: 'no-prefix', TargetKeyId: a.KeyId! }), 'InvalidAliasNameException');
    await rejects(kms.createAlias({ AliasName: 'alias/bad name!', TargetKeyId: a.KeyId! }), 'ValidationException', /aliasName.*regular expression/);
    await rejects(kms.createAlias({ AliasName: 'alias/to-alias', TargetKeyId: 'alias/app-data' }), 'NotFoundException');
    const ct = await kms.encrypt({ KeyId: 'alias/app-data', Plaintext: Buffer.from('via alias') });
    assert.equal(ct.KeyId, a.Arn);

    const listed = await kms.listAliases({ KeyId: a.KeyId! });
    assert.equal(listed.Aliases!.length, 1);
    const entry = listed.Aliases![0]!;
    assert.equal(entry.AliasName, 'alias/app-data');
    assert.equal(entry.AliasArn, `arn:aws:kms:us-east-1:${server.accountId}:alias/app-data`);
    assert.equal(entry.TargetKeyId, a.KeyId);
    assert.ok(entry.CreationDate instanceof Date);

    await kms.updateAlias({ AliasName: 'alias/app-data', TargetKeyId: b.KeyId! });
    assert.equal((await kms.describeKey({ KeyId: 'alias/app-data' })).KeyMetadata!.KeyId, b.KeyId);
    assert.equal((await kms.listAliases({ KeyId: a.KeyId! })).Aliases!.length, 0);
    // Old ciphertext still decrypts: it names its key, not the alias.
    assert.equal(Buffer.from((await kms.decrypt({ CiphertextBlob: ct.CiphertextBlob! })).Plaintext!).toString(), 'via alias');
    await rejects(kms.updateAlias({ AliasName: 'alias/never-made', TargetKeyId: a.KeyId! }), 'NotFoundException');

    await kms.deleteAlias({ AliasName: 'alias/app-data' });
    await rejects(kms.describeKey({ KeyId: 'alias/app-data' }), 'NotFoundException');
    await rejects(kms.deleteAlias({ AliasName: 'alias/app-data' }), 'NotFoundException');
  });

  it('ListAliases paginates', async () => {
    const k = server.kms({ region: 'sa-east-1' });
    const key = (await k.createKey({})).KeyMetadata!;
    for (let i = 0; i < 5; i++) await k.createAlias({ AliasName: `alias/page-${i}`, TargetKeyId: key.KeyId! });
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const p = await k.listAliases({ Limit: 2, Marker: marker });
      names.push(...p.Aliases!.map((a) => a.AliasName!));
      marker = p.NextMarker;
    } while (marker);
    assert.deepEqual(names, ['alias/page-0', 'alias/page-1', 'alias/page-2', 'alias/page-3', 'alias/page-4']);
  });

  it('tags: TagResource, ListResourceTags, UntagResource', async () => {
    const { KeyMetadata: m } = await kms.createKey({ Tags: [{ TagKey: 'b', TagValue: '2' }] });
    await kms.tagResource({ KeyId: m!.KeyId!, Tags: [{ TagKey: 'a', TagValue: '1' }, { TagKey: 'b', TagValue: 'two' }] });
    const t = await kms.listResourceTags({ KeyId: m!.KeyId! });
    assert.deepEqual(t.Tags, [{ TagKey: 'a', TagValue: '1' }, { TagKey: 'b', TagValue: 'two' }]);
    assert.equal(t.Truncated, false);
    await kms.untagResource({ KeyId: m!.KeyId!, TagKeys: ['a'] });
    assert.deepEqual((await kms.listResourceTags({ KeyId: m!.KeyId! })).Tags, [{ TagKey: 'b', TagValue: 'two' }]);
    await rejects(kms.tagResource({ KeyId: m!.KeyId!, Tags: [{ TagKey: 'aws:reserved', TagValue: 'x' }] }), 'TagException');
    await rejects(kms.tagResource({ KeyId: m!.KeyId!, Tags: Array.from({ length: 50 }, (_, i) => ({ TagKey: `t${i}`, TagValue: 'v' })) }), 'TagException', 'Too many tags');
  });

  it('key policies: default policy, Get/Put/List, malformed and lock-out policies refused, old policy kept', async () => {
    const { KeyMetadata: m } = await kms.createKey({});
    const got = await kms.getKeyPolicy({ KeyId: m!.KeyId!, PolicyName: 'default' });
    assert.equal(got.PolicyName, 'default');
    const policy = JSON.parse(got.Policy!);
    assert.equal(policy.Version, '2012-10-17');
    assert.deepEqual(policy.Statement[0].Principal, { AWS: `arn:aws:iam::${server.accountId}:root` });
    assert.equal(policy.Statement[0].Action, 'kms:*');
    assert.deepEqual((await kms.listKeyPolicies({ KeyId: m!.KeyId! })).PolicyNames, ['default']);
    await rejects(kms.getKeyPolicy({ KeyId: m!.KeyId!, PolicyName: 'other' }), 'NotFoundException');

    const narrower = {
      Version: '2012-10-17',
      Statement: [
        { Sid: 'Admin', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${server.accountId}:root` }, Action: ['kms:PutKeyPolicy', 'kms:GetKeyPolicy', 'kms:DescribeKey'], Resource: '*' },
      ],
    };
    await kms.putKeyPolicy({ KeyId: m!.KeyId!, PolicyName: 'default', Policy: JSON.stringify(narrower) });
    assert.deepEqual(JSON.parse((await kms.getKeyPolicy({ KeyId: m!.KeyId! })).Policy!), narrower);
    // The new policy no longer lets root encrypt: AccessDenied, with the reason.
    await rejects(kms.encrypt({ KeyId: m!.KeyId!, Plaintext: Buffer.from('x') }), 'AccessDeniedException', /not authorized to perform: kms:Encrypt/);

    await rejects(kms.putKeyPolicy({ KeyId: m!.KeyId!, Policy: '[]' }), 'MalformedPolicyDocumentException');
    await rejects(kms.putKeyPolicy({ KeyId: m!.KeyId!, Policy: JSON.stringify({ Version: '2001-01-01', Statement: [] }) }), 'MalformedPolicyDocumentException', /Version/);
    await rejects(
      kms.putKeyPolicy({ KeyId: m!.KeyId!, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:bad action', Resource: '*' }] }) }),
      'MalformedPolicyDocumentException',
      /invalid action/,
    );
    const lockout = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${server.accountId}:root` }, Action: 'kms:Encrypt', Resource: '*' }] };
    await rejects(kms.putKeyPolicy({ KeyId: m!.KeyId!, Policy: JSON.stringify(lockout) }), 'MalformedPolicyDocumentException', /will not allow you to update the key policy/);
    // Every refused policy left the previous one in force.
    assert.deepEqual(JSON.parse((await kms.getKeyPolicy({ KeyId: m!.KeyId! })).Policy!), narrower);
    // An explicit deny wins over an allow.
    const deny = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: server.accountId }, Action: 'kms:*', Resource: '*' },
        { Sid: 'NoDecrypt', Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Resource: '*' },
      ],
    };
    await kms.putKeyPolicy({ KeyId: m!.KeyId!, Policy: JSON.stringify(deny) });
    const ct = await kms.encrypt({ KeyId: m!.KeyId!, Plaintext: Buffer.from('x') });
    await rejects(kms.decrypt({ CiphertextBlob: ct.CiphertextBlob! }), 'AccessDeniedException', /explicit deny/);
  });
});
