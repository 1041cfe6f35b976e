import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStorage, SqliteStorage, type Storage } from '../storage/index.js';
import { BackupRegistry, RecordExists, type BackupRecord } from './backup-registry.js';

const ACCT = '111122223333';
const MID = 'ab'.repeat(32);
const OTHER = 'cd'.repeat(32);
const keyArn = (region: string, id: string) => `arn:aws:kms:${region}:${ACCT}:key/${id}`;
const rec = (messageId: string, location: string, keys: string[], at: number): BackupRecord => ({
  messageId, location, sizeBytes: 100, suite: '0x0578', wrappingKeys: keys.map((k) => ({ keyArn: k, keyVersion: 1 })),
  encryptionContext: {}, registeredAt: at, registeredBy: 'arn:aws:iam::111122223333:user/u',
});
const EAST = keyArn('us-east-1', 'e1');
const WEST = keyArn('us-west-2', 'w1');

function suite(name: string, open: () => { storage: Storage; done: () => Promise<void> }): void {
  describe(`BackupRegistry on ${name}`, () => {
    it('a backup is (message id, location): a copy with the same id is a second record; the same pair is updated in place', async () => {
      const { storage, done } = open();
      try {
        const reg = new BackupRegistry(storage);
        await reg.register(ACCT, rec(MID, '/b/src.kh', [EAST], 1000));
        await reg.register(ACCT, rec(MID, '/b/copy.kh', [WEST], 2000));
        await reg.register(ACCT, rec(OTHER, '/b/other.kh', [EAST], 3000));
        let all = await reg.list(ACCT);
        assert.deepEqual(all.map((r) => [r.messageId, r.location, r.wrappingKeys[0]!.keyArn]).sort(), [
          [MID, '/b/copy.kh', WEST], [MID, '/b/src.kh', EAST], [OTHER, '/b/other.kh', EAST],
        ].sort());
        // Stored under backups/<account>/<messageId>/<32 hex of SHA-256(location)>.
        const h = createHash('sha256').update('/b/src.kh').digest('hex').slice(0, 32);
        assert.ok(await storage.get(`backups/${ACCT}/${MID}/${h}`));
        assert.equal(await storage.get(`backups/${ACCT}/${MID}`), undefined);
        // Verification on one location only; then a rewrap in place keeps it and the first registration time.
        assert.equal((await reg.recordVerification(ACCT, MID, '/b/copy.kh', { at: 5000, by: 'drill', ok: true })).length, 1);
        assert.equal((await reg.get(ACCT, MID, '/b/src.kh'))!.lastVerifiedAt, undefined);
        const rewrapped = await reg.register(ACCT, { ...rec(MID, '/b/copy.kh', [WEST], 9000), wrappingKeys: [{ keyArn: WEST, keyVersion: 2 }] });
        assert.equal(rewrapped.registeredAt, 2000);
        assert.equal(rewrapped.lastVerifiedAt, 5000);
        assert.equal(rewrapped.wrappingKeys[0]!.keyVersion, 2);
        assert.equal((await reg.list(ACCT)).length, 3);
        // Without a location: every record of the message id.
        const both = await reg.recordVerification(ACCT, MID, undefined, { at: 6000, by: 'old-client', ok: false, message: 'x' });
        assert.deepEqual(both.map((r) => r.location).sort(), ['/b/copy.kh', '/b/src.kh']);
        all = await reg.list(ACCT);
        assert.deepEqual(all.filter((r) => r.messageId === MID).map((r) => [r.lastVerifiedAt, r.lastVerifyOk, r.lastVerifyMessage]), [[6000, false, 'x'], [6000, false, 'x']]);
        assert.deepEqual(await reg.recordVerification(ACCT, MID, '/nowhere', { at: 1, by: 'x', ok: true }), []);
        assert.equal(await reg.get(ACCT, MID, '/nowhere'), undefined);
        // Another account sees nothing.
        assert.deepEqual(await reg.list('999988887777'), []);
      } finally {
        await done();
      }
    });

    it('a record stored the old way (backups/<account>/<messageId>) is listed, verified, and migrated when the same (id, location) is re-registered', async () => {
      const { storage, done } = open();
      try {
        const legacyKey = `backups/${ACCT}/${MID}`;
        const legacy: BackupRecord = { ...rec(MID, '/b/src.kh', [EAST], 1000), lastVerifiedAt: 1500, lastVerifiedBy: 'drill', lastVerifyOk: true };
        await storage.put(legacyKey, Buffer.from(JSON.stringify(legacy)));
        await storage.put(`backups/${ACCT}/${OTHER}`, Buffer.from(JSON.stringify(rec(OTHER, '/b/other.kh', [EAST], 1100))));
        const reg = new BackupRegistry(storage);
        assert.deepEqual((await reg.list(ACCT)).map((r) => r.location).sort(), ['/b/other.kh', '/b/src.kh']);
        assert.equal((await reg.get(ACCT, MID, '/b/src.kh'))!.registeredAt, 1000);
        assert.equal((await reg.getAll(ACCT, MID)).length, 1);
        // A copy elsewhere is a new record; the old one stays where it is, still listed.
        await reg.register(ACCT, rec(MID, '/b/copy.kh', [WEST], 2000));
        assert.ok(await storage.get(legacyKey));
        assert.deepEqual((await reg.list(ACCT)).map((r) => r.location).sort(), ['/b/copy.kh', '/b/other.kh', '/b/src.kh']);
        // A drill of the old record updates it in place.
        await reg.recordVerification(ACCT, MID, '/b/src.kh', { at: 1600, by: 'drill2', ok: true });
        assert.equal((await reg.get(ACCT, MID, '/b/src.kh'))!.lastVerifiedBy, 'drill2');
        // Re-registering the same id at the same location moves it, keeping its history.
        const moved = await reg.register(ACCT, { ...rec(MID, '/b/src.kh', [EAST], 3000), wrappingKeys: [{ keyArn: EAST, keyVersion: 2 }] });
        assert.equal(moved.registeredAt, 1000);
        assert.equal(moved.lastVerifiedAt, 1600);
        assert.equal(moved.lastVerifiedBy, 'drill2');
        assert.equal(await storage.get(legacyKey), undefined, 'the old key is gone');
        const h = createHash('sha256').update('/b/src.kh').digest('hex').slice(0, 32);
        assert.equal(JSON.parse((await storage.get(`${legacyKey}/${h}`))!.toString('utf8')).wrappingKeys[0].keyVersion, 2);
        const all = await reg.list(ACCT);
        assert.deepEqual(all.map((r) => r.location).sort(), ['/b/copy.kh', '/b/other.kh', '/b/src.kh'], 'nothing lost, nothing twice');
        assert.equal((await reg.getAll(ACCT, MID)).length, 2);
      } finally {
        await done();
      }
    });

    it('relocate moves a record (old-style too) with its history in one step; deregister removes records; refusals change nothing', async () => {
      const { storage, done } = open();
      try {
        const reg = new BackupRegistry(storage);
        const legacy: BackupRecord = { ...rec(MID, '/b/old.kh', [EAST], 1000), lastVerifiedAt: 1500, lastVerifiedBy: 'drill', lastVerifyOk: true };
        await storage.put(`backups/${ACCT}/${MID}`, Buffer.from(JSON.stringify(legacy)));
        await reg.register(ACCT, rec(MID, '/b/copy.kh', [WEST], 2000));
        await reg.register(ACCT, rec(OTHER, '/b/old.kh', [EAST], 3000));
        assert.deepEqual((await reg.atLocation(ACCT, '/b/old.kh')).map((r) => r.messageId).sort(), [MID, OTHER].sort());
        // Unknown pair, and a destination already registered: refused, nothing changed.
        assert.equal(await reg.relocate(ACCT, MID, '/b/nowhere.kh', '/b/new.kh'), undefined);
        await assert.rejects(reg.relocate(ACCT, MID, '/b/old.kh', '/b/copy.kh'), RecordExists);
        assert.equal((await reg.list(ACCT)).length, 3);
        const moved = await reg.relocate(ACCT, MID, '/b/old.kh', '/b/new.kh');
        assert.deepEqual(moved, { ...legacy, location: '/b/new.kh' });
        assert.equal(await storage.get(`backups/${ACCT}/${MID}`), undefined, 'the old key is gone');
        assert.equal(await reg.get(ACCT, MID, '/b/old.kh'), undefined);
        assert.deepEqual(await reg.get(ACCT, MID, '/b/new.kh'), moved);
        assert.equal((await reg.get(ACCT, OTHER, '/b/old.kh'))!.registeredAt, 3000, 'another message at the old location is left alone');
        assert.equal((await reg.list(ACCT)).length, 3);
        // Deregister: only the pairs named; a pair not registered is skipped.
        const removed = await reg.deregister(ACCT, [{ messageId: MID, location: '/b/new.kh' }, { messageId: MID, location: '/b/nowhere.kh' }]);
        assert.deepEqual(removed.map((r) => r.location), ['/b/new.kh']);
        assert.deepEqual((await reg.list(ACCT)).map((r) => r.location).sort(), ['/b/copy.kh', '/b/old.kh']);
        // A store holding both layouts for one pair: deregister removes both, so nothing reappears.
        await storage.put(`backups/${ACCT}/${MID}`, Buffer.from(JSON.stringify(rec(MID, '/b/copy.kh', [EAST], 1000))));
        assert.equal((await reg.deregister(ACCT, [{ messageId: MID, location: '/b/copy.kh' }])).length, 1);
        assert.deepEqual((await reg.list(ACCT)).map((r) => [r.messageId, r.location]), [[OTHER, '/b/old.kh']]);
      } finally {
        await done();
      }
    });

    it('should a store hold an old-style and a new-style record of the same (id, location), it is listed once (the new one)', async () => {
      const { storage, done } = open();
      try {
        const reg = new BackupRegistry(storage);
        await reg.register(ACCT, rec(MID, '/b/src.kh', [WEST], 2000));
        await storage.put(`backups/${ACCT}/${MID}`, Buffer.from(JSON.stringify(rec(MID, '/b/src.kh', [EAST], 1000))));
        const all = await reg.list(ACCT);
        assert.deepEqual(all.map((r) => r.wrappingKeys[0]!.keyArn), [WEST]);
        assert.equal((await reg.getAll(ACCT, MID)).length, 1);
        assert.equal((await reg.get(ACCT, MID, '/b/src.kh'))!.wrappingKeys[0]!.keyArn, WEST);
      } finally {
        await done();
      }
    });
  });
}

suite('MemoryStorage', () => {
  const storage = new MemoryStorage();
  return { storage, done: () => storage.close() };
});

suite('SqliteStorage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyhold-backup-registry-'));
  const storage = SqliteStorage.open(join(dir, 'db.sqlite'));
  return { storage, done: async () => { await storage.close(); rmSync(dir, { recursive: true, force: true }); } };
});
