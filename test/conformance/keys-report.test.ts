/**
 * `keyhold keys report`: the CLI against a real server, through the AWS SDK only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import type { KMS } from '@aws-sdk/client-kms';
import { buildReport, type KeyReportRow as Row } from '../../src/cli/keys-report.js';
import { cliEnv, runCli, startServer, type TestServer } from '../helpers/server.js';
import { readAuditEvents } from '../helpers/audit.js';

const DAY = 86400_000;
/** An Owner tag naming a principal the server does not know: "owner no longer active". */
const DEPARTED = 'arn:aws:iam::111122223333:user/departed';
const ROOT = 'arn:aws:iam::111122223333:root';

function assertNearIso(actual: string | null, expectedMs: number, slackMs = 5 * 60_000): void {
  assert.ok(actual, 'date missing');
  assert.match(actual, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(actual) - expectedMs) < slackMs, `${actual} is not near ${new Date(expectedMs).toISOString()}`);
}

describe('keyhold keys report', () => {
  let server: TestServer;
  let kms: KMS;
  let env: Record<string, string>;
  const ids = { plain: '', off: '', owned: '', rotated: '', deleting: '' };
  let lastRotation: Date;

  before(async () => {
    server = await startServer();
    kms = server.kms();
    env = cliEnv(server);
    ids.plain = (await kms.createKey({})).KeyMetadata!.KeyId!;
    await kms.createAlias({ AliasName: 'alias/report-plain', TargetKeyId: ids.plain });
    ids.off = (await kms.createKey({ Tags: [{ TagKey: 'KeyholdRotation', TagValue: 'disabled' }] })).KeyMetadata!.KeyId!;
    ids.owned = (await kms.createKey({ Tags: [{ TagKey: 'Owner', TagValue: DEPARTED }] })).KeyMetadata!.KeyId!;
    ids.rotated = (await kms.createKey({})).KeyMetadata!.KeyId!;
    await kms.encrypt({ KeyId: ids.rotated, Plaintext: Buffer.from('v1') });
    await kms.rotateKeyOnDemand({ KeyId: ids.rotated });
    await kms.rotateKeyOnDemand({ KeyId: ids.rotated });
    await kms.encrypt({ KeyId: ids.rotated, Plaintext: Buffer.from('v3') });
    const retire = await runCli(['keys', 'retire', ids.rotated, '--min-version', '2'], env);
    assert.equal(retire.code, 0, retire.stderr);
    assert.match(retire.stdout, /versions below 2 are retired \(minimum was 1\)/);
    const rotations = (await kms.listKeyRotations({ KeyId: ids.rotated })).Rotations!;
    assert.equal(rotations.length, 2);
    lastRotation = rotations.at(-1)!.RotationDate!;
    ids.deleting = (await kms.createKey({})).KeyMetadata!.KeyId!;
    await kms.scheduleKeyDeletion({ KeyId: ids.deleting, PendingWindowInDays: 7 });
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('--json lists every key with owner, state, rotation data and flags', async () => {
    const r = await runCli(['keys', 'report', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Row[];
    assert.equal(rows.length, 5);
    const byId = new Map(rows.map((row) => [row.keyId, row]));
    const now = Date.now();

    const plain = byId.get(ids.plain)!;
    assertNearIso(plain.nextRotationDate, now + 365 * DAY);
    assert.deepEqual({ ...plain, nextRotationDate: null }, {
      keyId: ids.plain, aliases: ['alias/report-plain'], owner: ROOT, ownerActive: true, state: 'Enabled', rotationOptOut: false, rotationEnabled: true,
      rotationPeriodDays: 365, lastRotationDate: null, nextRotationDate: null, newestVersionAgeDays: 0, versionsInUse: 1,
      minimumDecryptionVersion: 1, recentlyUsedVersions: [], origin: 'AWS_KMS', importValidTo: null, flags: [],
    });

    assert.deepEqual(byId.get(ids.off), {
      keyId: ids.off, aliases: [], owner: ROOT, ownerActive: true, state: 'Enabled', rotationOptOut: true, rotationEnabled: false,
      rotationPeriodDays: null, lastRotationDate: null, nextRotationDate: null, newestVersionAgeDays: 0, versionsInUse: 1,
      minimumDecryptionVersion: 1, recentlyUsedVersions: [], origin: 'AWS_KMS', importValidTo: null, flags: ['rotation-off'],
    });

    const owned = byId.get(ids.owned)!;
    assertNearIso(owned.nextRotationDate, now + 365 * DAY);
    assert.deepEqual({ ...owned, nextRotationDate: null }, {
      keyId: ids.owned, aliases: [], owner: DEPARTED, ownerActive: false, state: 'Enabled', rotationOptOut: false, rotationEnabled: true,
      rotationPeriodDays: 365, lastRotationDate: null, nextRotationDate: null, newestVersionAgeDays: 0, versionsInUse: 1,
      minimumDecryptionVersion: 1, recentlyUsedVersions: [], origin: 'AWS_KMS', importValidTo: null, flags: ['owner-inactive'],
    });

    const rotated = byId.get(ids.rotated)!;
    assert.equal(rotated.lastRotationDate, lastRotation.toISOString());
    assertNearIso(rotated.nextRotationDate, now + 365 * DAY);
    assert.deepEqual({ ...rotated, nextRotationDate: null }, {
      keyId: ids.rotated, aliases: [], owner: ROOT, ownerActive: true, state: 'Enabled', rotationOptOut: false, rotationEnabled: true,
      rotationPeriodDays: 365, lastRotationDate: lastRotation.toISOString(), nextRotationDate: null, newestVersionAgeDays: 0, versionsInUse: 2,
      minimumDecryptionVersion: 2, recentlyUsedVersions: [1, 3], origin: 'AWS_KMS', importValidTo: null, flags: [],
    });

    assert.deepEqual(byId.get(ids.deleting), {
      keyId: ids.deleting, aliases: [], owner: ROOT, ownerActive: true, state: 'PendingDeletion', rotationOptOut: false, rotationEnabled: null,
      rotationPeriodDays: null, lastRotationDate: null, nextRotationDate: null, newestVersionAgeDays: 0, versionsInUse: null,
      minimumDecryptionVersion: 1, recentlyUsedVersions: [], origin: 'AWS_KMS', importValidTo: null, flags: [],
    });
  });

  it('records the owner and the rotation opt-out in the CreateKey audit event', () => {
    const creates = readAuditEvents(server.dataDir).filter((e) => e.eventName === 'CreateKey' && !e.errorCode);
    const byKey = new Map(creates.map((e) => [e.resources[0]!.arn.split('/').pop(), e]));
    assert.deepEqual(byKey.get(ids.off)!.details, { owner: ROOT, rotationOptOut: true });
    assert.deepEqual(byKey.get(ids.owned)!.details, { owner: DEPARTED });
    assert.deepEqual(byKey.get(ids.plain)!.details, { owner: ROOT });
  });

  it('without --json prints an aligned table and a summary of the flags', async () => {
    const r = await runCli(['keys', 'report'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^KEY ID\s+ALIASES\s+OWNER\s+STATE\s+ROTATION\s+PERIOD\s+LAST ROTATION\s+NEXT ROTATION\s+AGE DAYS\s+VERSIONS\s+USED 30D\s+MATERIAL\s+FLAGS$/);
    for (const id of Object.values(ids)) assert.ok(r.stdout.includes(id), `${id} missing from the table`);
    assert.match(r.stdout, new RegExp(`${ids.off}\\s+-\\s+arn:aws:iam::111122223333:root\\s+Enabled\\s+off \\(opt-out\\)\\s+-\\s+-\\s+-\\s+0\\s+1\\s+-\\s+AWS_KMS\\s+rotation-off`));
    assert.match(r.stdout, new RegExp(`${ids.owned}\\s+-\\s+arn:aws:iam::111122223333:user/departed\\s+Enabled\\s+on\\s+365\\s.*\\sowner-inactive$`, 'm'));
    assert.match(r.stdout, new RegExp(`${ids.rotated}\\s.*\\s2\\s+1,3\\s+AWS_KMS\\s+-$`, 'm'));
    assert.match(r.stdout, new RegExp(`${ids.deleting}\\s+-\\s+arn:aws:iam::111122223333:root\\s+PendingDeletion\\s+-\\s+-`));
    // The columns line up: every row starts the STATE column at the same offset.
    const stateAt = lines[0]!.indexOf('STATE');
    for (const line of lines.slice(1, 6)) assert.match(line.slice(stateAt), /^(Enabled|PendingDeletion)\s/);
    assert.equal(lines.at(-1), '5 keys: 1 rotation-off, 0 rotation-overdue, 0 never-rotated, 1 owner-inactive, 0 imported');
  });

  it('flags rotation-overdue and never-rotated once the keys are older than their period', async () => {
    // The same report as the CLI's, computed as if 400 days had passed (no real year passes).
    const settings = { endpoint: server.url, region: 'us-east-1', credentials: server.credentials, caBundle: server.caFile };
    const rows = await buildReport(kms, settings, Date.now() + 400 * DAY);
    const flags = new Map(rows.map((row) => [row.keyId, row.flags]));
    assert.deepEqual(flags.get(ids.plain), ['rotation-overdue', 'never-rotated']);
    assert.deepEqual(flags.get(ids.off), ['rotation-off', 'never-rotated']);
    assert.deepEqual(flags.get(ids.owned), ['owner-inactive', 'rotation-overdue', 'never-rotated']);
    assert.deepEqual(flags.get(ids.rotated), ['rotation-overdue']);
    assert.deepEqual(flags.get(ids.deleting), []);
    assert.equal(rows.find((row) => row.keyId === ids.rotated)!.newestVersionAgeDays, 400);
    // 400 days on, nothing was used within the last 30 days.
    assert.deepEqual(rows.find((row) => row.keyId === ids.rotated)!.recentlyUsedVersions, []);
  });

  it('keyhold keys versions shows every version with its counts, and retire refuses bad input', async () => {
    const r = await runCli(['keys', 'versions', ids.rotated, '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout) as { keyArn: string; currentVersion: number; minimumDecryptionVersion: number; owner: string; versions: { version: number; status: string; encryptCount: number; decryptCount: number; rotationType: string | null; lastUsed: string | null }[] };
    assert.equal(v.currentVersion, 3);
    assert.equal(v.minimumDecryptionVersion, 2);
    assert.equal(v.owner, ROOT);
    assert.deepEqual(v.versions.map((x) => [x.version, x.status, x.rotationType, x.encryptCount, x.decryptCount, x.lastUsed !== null]), [
      [1, 'retired', null, 1, 0, true], [2, 'decrypt-only', 'ON_DEMAND', 0, 0, false], [3, 'current', 'ON_DEMAND', 1, 0, true],
    ]);
    const table = await runCli(['keys', 'versions', ids.rotated], env);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /current version 3, minimum decryption version 2, owner arn:aws:iam::111122223333:root$/);
    assert.match(lines[1]!, /^VERSION\s+CREATED\s+TYPE\s+STATUS\s+ENCRYPTS\s+DECRYPTS\s+LAST USED$/);
    assert.match(lines[2]!, /^1\s+\S+Z\s+initial\s+retired\s+1\s+0\s+\S+Z$/);
    assert.match(lines[3]!, /^2\s+\S+Z\s+ON_DEMAND\s+decrypt-only\s+0\s+0\s+never$/);
    const owned = await runCli(['keys', 'versions', ids.owned], env);
    assert.match(owned.stdout, /owner arn:aws:iam::111122223333:user\/departed \(no longer active\)/);

    const tooHigh = await runCli(['keys', 'retire', ids.rotated, '--min-version', '4'], env);
    assert.equal(tooHigh.code, 1);
    assert.match(tooHigh.stderr, /ValidationException/);
    const missing = await runCli(['keys', 'retire', ids.rotated], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--min-version N/);
  });
});

describe('keyhold keys report: imported (BYOK) keys', () => {
  it('marks imported keys, warns ahead of ValidTo and when the material is gone', async () => {
    const server = await startServer();
    try {
      const kms = server.kms();
      const env = cliEnv(server);
      const importKey = async (validTo?: Date) => {
        const keyId = (await kms.createKey({ Origin: 'EXTERNAL' })).KeyMetadata!.KeyId!;
        const p = await kms.getParametersForImport({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' });
        const pub = createPublicKey({ key: Buffer.from(p.PublicKey!), format: 'der', type: 'spki' });
        await kms.importKeyMaterial({
          KeyId: keyId, ImportToken: p.ImportToken!,
          EncryptedKeyMaterial: publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, randomBytes(32)),
          ...(validTo ? { ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: validTo } : { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }),
        });
        return keyId;
      };
      const soon = await importKey(new Date(Date.now() + 10 * DAY));
      const later = await importKey(new Date(Date.now() + 200 * DAY));
      const forever = await importKey();
      const gone = await importKey();
      await kms.deleteImportedKeyMaterial({ KeyId: gone });
      const plain = (await kms.createKey({})).KeyMetadata!.KeyId!;

      const r = await runCli(['keys', 'report', '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      const byId = new Map((JSON.parse(r.stdout) as Row[]).map((row) => [row.keyId, row]));
      assert.deepEqual(byId.get(soon)!.flags, ['imported', 'import-expiring']);
      assert.equal(byId.get(soon)!.origin, 'EXTERNAL');
      assertNearIso(byId.get(soon)!.importValidTo, Date.now() + 10 * DAY);
      assert.deepEqual(byId.get(later)!.flags, ['imported']);
      assert.deepEqual(byId.get(forever)!.flags, ['imported']);
      assert.equal(byId.get(forever)!.importValidTo, null);
      assert.deepEqual(byId.get(gone)!.flags, ['imported', 'import-missing']);
      assert.deepEqual(byId.get(plain)!.flags, []);

      // A wider window catches the later one too.
      const wide = JSON.parse((await runCli(['keys', 'report', '--json', '--expiry-warning-days', '365'], env)).stdout) as Row[];
      assert.deepEqual(wide.find((row) => row.keyId === later)!.flags, ['imported', 'import-expiring']);

      const t = await runCli(['keys', 'report'], env);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stdout, /5 keys: 0 rotation-off, 0 rotation-overdue, 0 never-rotated, 0 owner-inactive, 4 imported/);
      assert.match(t.stdout, new RegExp(`WARNING: imported key material of ${soon} expires \\d{4}-`));
      assert.match(t.stdout, new RegExp(`WARNING: imported key ${gone} has no key material \\(PendingImport\\)`));
      assert.doesNotMatch(t.stdout, new RegExp(`WARNING: .*${later}`));
      assert.match(t.stdout, new RegExp(`${soon}.*imported to \\d{4}-\\d{2}-\\d{2}\\s+imported,import-expiring`));
    } finally {
      await server.stop();
      server.cleanup();
    }
  });
});
