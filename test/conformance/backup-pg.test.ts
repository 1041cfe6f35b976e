/**
 * `keyhold backup pg-dump` / `pg-restore` against a real PostgreSQL started for the test: the dump
 * streams through encryption (the file is an ESDK message, no plaintext), restores into a fresh
 * database, and a damaged backup restores nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnv, runCli, startServer, tempDir, requireTool, type TestServer } from '../helpers/server.js';
import { postgresBin, startPostgres, type ThrowawayPostgres } from '../helpers/postgres.js';
import { sniff } from '../../src/cli/backup/scan.js';

const havePg = requireTool('postgresql (pg_dump, initdb)', postgresBin() !== undefined);

describe('keyhold backup pg-dump / pg-restore', { skip: !havePg && 'PostgreSQL not installed (scripts/test.sh installs it)' }, () => {
  let server: TestServer;
  let pg: ThrowawayPostgres;
  let env: Record<string, string>;
  let key: string;
  let dir: string;

  before(async () => {
    server = await startServer();
    pg = startPostgres();
    dir = tempDir('keyhold-pgdump-');
    env = cliEnv(server);
    key = (await server.kms().createKey({})).KeyMetadata!.Arn!;
    pg.psql('postgres', 'CREATE DATABASE shop');
    pg.psql('shop', "CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL); INSERT INTO orders SELECT g, 'customer-secret-' || g FROM generate_series(1, 5000) g;");
  });
  after(async () => {
    pg?.stop();
    await server.stop();
    server.cleanup();
  });

  it('dumps through encryption and restores into a fresh database', async () => {
    const file = join(dir, 'shop.dump.kh');
    const d = await runCli(['backup', 'pg-dump', '--database', pg.url('shop'), '--key', key, '-o', file], env);
    assert.equal(d.code, 0, d.stderr);
    const bytes = readFileSync(file);
    assert.equal(sniff(bytes.subarray(0, 65536)), 'keyhold-backup');
    assert.ok(!bytes.includes(Buffer.from('customer-secret-')), 'no plaintext row in the file');
    assert.ok(!bytes.includes(Buffer.from('PGDMP')));
    const h = JSON.parse((await runCli(['backup', 'inspect', '--json', file], env)).stdout);
    assert.equal(h.encryptionContext['keyhold:source'], 'pg_dump');
    pg.psql('postgres', 'CREATE DATABASE restored');
    const r = await runCli(['backup', 'pg-restore', file, '--database', pg.url('restored')], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(pg.psql('restored', "SELECT count(*), max(customer) FROM orders").trim(), '5000|customer-secret-999');
    // Registered like any backup.
    const list = JSON.parse((await runCli(['backup', 'list', '--json', '--key', key], env)).stdout);
    assert.ok(list.some((b: { Location: string }) => b.Location === file));
  });

  it('a truncated backup restores nothing (pg_restore is stopped before it commits)', async () => {
    const file = join(dir, 'shop.dump.kh');
    const cut = join(dir, 'cut.kh');
    const bytes = readFileSync(file);
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    pg.psql('postgres', 'CREATE DATABASE partial');
    const r = await runCli(['backup', 'pg-restore', cut, '--database', pg.url('partial')], env);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /truncated.*nothing was restored/);
    assert.equal(pg.psql('partial', "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'").trim(), '0');
  });

  it('a failing pg_dump leaves no backup behind', async () => {
    const file = join(dir, 'nope.kh');
    const r = await runCli(['backup', 'pg-dump', '--database', pg.url('does_not_exist'), '--key', key, '-o', file], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pg_dump exited with status/);
    assert.throws(() => readFileSync(file));
  });
});
