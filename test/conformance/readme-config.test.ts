/**
 * Conformance: the README's Configuration table, `keyhold server --help` and the flags the server
 * parses are one list (SERVER_FLAGS in src/config.ts). A flag added to the code but not to the README
 * (or the other way round), a wrong default or environment variable, or a help text that drifts
 * fails here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVER_ENVIRONMENT_ONLY, SERVER_FLAGS, parseServerConfig, type ServerFlag } from '../../src/config.js';
import { REPO_ROOT } from '../helpers/repo.js';
import { runCli, tempDir } from '../helpers/server.js';

const FLAGS = SERVER_FLAGS as readonly ServerFlag[];

interface Row {
  flagCell: string;
  envCell: string;
  defaultCell: string;
}

/** The rows of the table under "## Configuration" (cells split on unescaped |). */
function readmeConfigRows(): Row[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Configuration$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, 'README has a "## Configuration" section');
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| flag |'));
  assert.ok(start >= 0, 'the Configuration section has a table starting with "| flag |"');
  const rows: Row[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, '|'));
    assert.equal(cells.length, 4, `four cells in README row: ${line}`);
    rows.push({ flagCell: cells[0]!, envCell: cells[1]!, defaultCell: cells[2]! });
  }
  return rows;
}

const flagNamesIn = (text: string) => [...text.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!);
const envNamesIn = (text: string) => [...text.matchAll(/\bKEYHOLD_[A-Z0-9_]+/g)].map((m) => m[0]);

describe('README Configuration table, --help and SERVER_FLAGS agree', () => {
  it('the README table lists every server flag, and only those, with its value, environment variable and default', () => {
    const rows = readmeConfigRows();
    const flagRows = rows.filter((r) => r.flagCell !== '');
    const documented = flagRows.flatMap((r) => flagNamesIn(r.flagCell));
    const missing = FLAGS.map((f) => f.name).filter((n) => !documented.includes(n));
    assert.deepEqual(missing, [], `server flags missing from the README table: ${missing.join(', ')}`);
    const unknown = documented.filter((n) => !FLAGS.some((f) => f.name === n));
    assert.deepEqual(unknown, [], `the README table names flags that do not exist: ${unknown.join(', ')}`);
    assert.equal(new Set(documented).size, documented.length, 'each flag has one row');

    for (const f of FLAGS) {
      const row = flagRows.find((r) => flagNamesIn(r.flagCell)[0] === f.name)!;
      assert.equal(row.flagCell, `\`--${f.name}${f.value ? ` ${f.value}` : ''}\``, `README flag cell for --${f.name} shows its values`);
      assert.deepEqual(envNamesIn(row.envCell), f.env ? [f.env] : [], `README environment cell for --${f.name}`);
      assert.equal(row.defaultCell, f.default !== undefined ? `\`${f.default}\`` : '', `README default for --${f.name}`);
    }

    const envRows = rows.filter((r) => r.flagCell === '');
    assert.deepEqual(
      envRows.map((r) => envNamesIn(r.envCell)).flat(),
      SERVER_ENVIRONMENT_ONLY.map((e) => e.env),
      'environment-only rows match SERVER_ENVIRONMENT_ONLY, in order',
    );
    for (const e of SERVER_ENVIRONMENT_ONLY) {
      const row = envRows.find((r) => envNamesIn(r.envCell)[0] === e.env)!;
      assert.equal(row.defaultCell, e.default !== undefined ? `\`${e.default}\`` : '', `README default for ${e.env}`);
    }
  });

  it('`keyhold server --help` names exactly the README\'s flags, each with its value, default and environment variable', async () => {
    const { code, stdout, stderr } = await runCli(['server', '--help']);
    assert.equal(code, 2, stdout);
    const help = stderr;
    assert.match(help, /^Usage: keyhold server \[options\]/);
    const helpFlags = [...help.matchAll(/^ {2}--([a-z][a-z0-9-]*)/gm)].map((m) => m[1]!);
    const readmeFlags = readmeConfigRows().flatMap((r) => flagNamesIn(r.flagCell));
    assert.deepEqual([...helpFlags].sort(), [...readmeFlags].sort(), '--help and the README list the same flags');
    // Each flag's block runs from its line to the next flag's (descriptions are wrapped).
    const blocks = help.split(/^(?= {2}--|\nEnvironment only:)/m);
    for (const f of FLAGS) {
      const block = blocks.find((b) => b.startsWith(`  --${f.name}${f.value ? ` ${f.value}` : ''}`) && /^ {2}--([a-z0-9-]+)/.exec(b)![1] === f.name);
      assert.ok(block, `--help shows --${f.name}${f.value ? ` ${f.value}` : ''}`);
      const flat = block.replace(/\s+/g, ' ');
      if (f.default !== undefined) assert.ok(flat.includes(`default ${f.default}`), `--help gives the default of --${f.name}: ${flat}`);
      const envs = [...flat.matchAll(/\benv (KEYHOLD_[A-Z0-9_]+)/g)].map((m) => m[1]);
      assert.deepEqual(envs, f.env ? [f.env] : [], `--help names ${f.env ?? 'no variable'} for --${f.name}`);
    }
    for (const e of SERVER_ENVIRONMENT_ONLY) assert.match(help, new RegExp(`^ {2}${e.env}\\b`, 'm'), `--help lists ${e.env}`);
  });

  it('every documented environment variable does what its flag does, and every documented default is the default', () => {
    const dir = tempDir('keyhold-config-');
    try {
      const pinFile = join(dir, 'pin');
      writeFileSync(pinFile, '1234\n');
      const configFile = join(dir, 'config.json');
      writeFileSync(configFile, JSON.stringify({ port: 1234, 'log-level': 'warn' }));
      const passFile = join(dir, 'pass');
      writeFileSync(passFile, 'correct horse battery\n');
      const base = { KEYHOLD_SEAL_PASSPHRASE: 'example passphrase' };
      const examples: Record<string, string> = {
        config: configFile,
        'data-dir': join(dir, 'data'),
        host: '0.0.0.0',
        port: '1234',
        storage: 'memory',
        seal: 'passphrase',
        hsm: `cluster-softhsmprimary=module=/usr/lib/softhsm/libsofthsm2.so,token-label=t,pin-file=${pinFile}`,
        'job-interval-seconds': '7',
        'usage-flush-seconds': '7',
        'log-level': 'warn',
        'audit-digest-seconds': '7',
        'audit-retention-days': '7',
        'alert-webhook': 'https://example.test/hook',
        'account-webhook-allow': '127.0.0.0/8',
        workers: '2',
      };
      for (const f of FLAGS.filter((f) => f.env)) {
        if (f.name === 'seal-passphrase-file') {
          // The variable holds the passphrase itself, the flag names a file holding it.
          const viaFlag = parseServerConfig(['--seal', 'passphrase', `--${f.name}`, passFile], {});
          const viaEnv = parseServerConfig(['--seal', 'passphrase'], { [f.env!]: 'correct horse battery' });
          assert.deepEqual(viaEnv, viaFlag, f.name);
          continue;
        }
        const example = examples[f.name];
        assert.ok(example, `the test has an example value for --${f.name}`);
        const viaFlag = parseServerConfig([`--${f.name}`, example], base);
        const viaEnv = parseServerConfig([], { ...base, [f.env!]: example });
        assert.deepEqual(viaEnv, viaFlag, `${f.env} acts like --${f.name}`);
        assert.notDeepEqual(viaFlag, parseServerConfig([], base), `--${f.name} ${example} changes something`);
      }
      // Defaults written as a value (not a description such as "keep everything") must be what the server uses.
      const descriptive = new Set(['keep everything']);
      for (const f of FLAGS.filter((f) => f.default !== undefined && f.value && !descriptive.has(f.default))) {
        assert.deepEqual(parseServerConfig([`--${f.name}`, f.default!], {}), parseServerConfig([], {}), `--${f.name} defaults to ${f.default}`);
      }
      assert.equal(parseServerConfig([], {}).auditRetentionDays, undefined, 'no --audit-retention-days keeps everything');
      // --account-webhook-allow: repeatable, a list in the config file, comma-separated in the environment; CIDRs only.
      const allowFile = join(dir, 'allow.json');
      writeFileSync(allowFile, JSON.stringify({ 'account-webhook-allow': ['127.0.0.1', 'fe80::/10'] }));
      for (const c of [
        parseServerConfig(['--account-webhook-allow', '127.0.0.1', '--account-webhook-allow', 'fe80::/10'], {}),
        parseServerConfig(['--config', allowFile], {}),
        parseServerConfig([], { KEYHOLD_ACCOUNT_WEBHOOK_ALLOW: '127.0.0.1,fe80::/10' }),
      ]) assert.deepEqual(c.accountWebhookAllow, ['127.0.0.1/32', 'fe80::/10']);
      assert.deepEqual(parseServerConfig([], {}).accountWebhookAllow, []);
      assert.throws(() => parseServerConfig(['--account-webhook-allow', 'localhost'], {}), /--account-webhook-allow localhost is not an IPv4 or IPv6 CIDR block/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
