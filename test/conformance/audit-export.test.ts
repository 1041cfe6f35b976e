/**
 * Conformance: exporting the audit log for a SIEM (issue 5). `keyhold audit export` writes the
 * CloudTrail records LookupEvents carries as JSON Lines (one file per UTC day, stdout) or RFC 5424
 * syslog over UDP and TCP; a second run adds only new events; offline with --data-dir.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { CloudTrail } from '@aws-sdk/client-cloudtrail';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:https';
import { readAuditEvents } from '../helpers/audit.js';
import { faketimeWrapper, libfaketime, offsetClient } from '../helpers/faketime.js';
import { cliEnv, runCli, startServer, tempDir, type TestServer } from '../helpers/server.js';

interface Record5424 { pri: number; timestamp: string; host: string; app: string; msgid: string; sequenceId: number; record: Record<string, unknown> }

/** Parses one RFC 5424 message as the exporter writes it (header, [meta sequenceId], JSON MSG). */
function parse5424(msg: string): Record5424 {
  const m = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) \[meta sequenceId="(\d+)"\] (.*)$/s.exec(msg);
  assert.ok(m, `not an RFC 5424 message: ${msg.slice(0, 120)}`);
  return { pri: Number(m[1]), timestamp: m[2]!, host: m[3]!, app: m[4]!, msgid: m[6]!, sequenceId: Number(m[7]), record: JSON.parse(m[8]!) as Record<string, unknown> };
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

function dirRecords(dir: string): { file: string; line: string; record: { eventID: string; eventTime: string; eventName: string } }[] {
  return readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort().flatMap((file) =>
    lines(join(dir, file)).map((line) => ({ file, line, record: JSON.parse(line) as { eventID: string; eventTime: string; eventName: string } })));
}

function assertNoDuplicates(ids: string[]): void {
  assert.equal(new Set(ids).size, ids.length, 'an event was exported twice');
}

describe('audit log export (JSON Lines files, stdout, syslog)', () => {
  const root = tempDir();
  let s: TestServer;
  let keyId = '';

  before(async () => {
    s = await startServer({ args: ['--audit-digest-seconds', '1'] });
    const kms = s.kms();
    keyId = (await kms.createKey({})).KeyMetadata!.KeyId!;
    for (let i = 0; i < 5; i++) await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from(`m${i}`), EncryptionContext: { app: 'export-test' } });
  });
  after(async () => {
    await s.stop();
    s.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('writes one JSON Lines file per UTC day with the same records LookupEvents carries', async () => {
    const dir = join(root, 'api');
    const r = await runCli(['audit', 'export', '--format', 'jsonl', '--out', dir, '--json'], cliEnv(s));
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { exported: number; firstSeq: number; lastSeq: number; files: string[] };
    const got = dirRecords(dir);
    assert.equal(got.length, summary.exported);
    assert.ok(summary.exported >= 7, `exported ${summary.exported}`);
    assertNoDuplicates(got.map((g) => g.record.eventID));
    for (const g of got) assert.equal(g.file, `keyhold-audit-${g.record.eventTime.slice(0, 10)}.jsonl`);
    assert.deepEqual(summary.files, [...new Set(got.map((g) => g.file))].sort());
    // Byte for byte the CloudTrailEvent of LookupEvents.
    const ct = new CloudTrail({
      endpoint: s.url, region: 'us-east-1', credentials: s.credentials,
      requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(s.caFile!) }) }),
    });
    const page = await ct.lookupEvents({ LookupAttributes: [{ AttributeKey: 'EventName', AttributeValue: 'Encrypt' }] });
    ct.destroy();
    assert.equal(page.Events!.length, 5);
    const byId = new Map(got.map((g) => [g.record.eventID, g.line]));
    for (const e of page.Events!) assert.equal(byId.get(e.EventId!), e.CloudTrailEvent, `event ${e.EventId} differs from LookupEvents`);
    const enc = JSON.parse(byId.get(page.Events![0]!.EventId!)!) as { requestParameters: { keyId: string; encryptionContext: Record<string, string> }; userIdentity: { type: string } };
    assert.match(enc.requestParameters.keyId, new RegExp(`key/${keyId}$`));
    assert.deepEqual(enc.requestParameters.encryptionContext, { app: 'export-test' });
  });

  it('a second run appends only the new events; an interrupted run leaves nothing twice', async () => {
    const dir = join(root, 'api');
    const before = dirRecords(dir);
    const kms = s.kms();
    const fresh: string[] = [];
    for (let i = 0; i < 3; i++) fresh.push((await kms.encrypt({ KeyId: keyId, Plaintext: Buffer.from('later') })).$metadata.requestId!);
    const r = await runCli(['audit', 'export', '--out', dir, '--json'], cliEnv(s));
    assert.equal(r.code, 0, r.stderr);
    const after1 = dirRecords(dir);
    assertNoDuplicates(after1.map((g) => g.record.eventID));
    assert.deepEqual(after1.slice(0, before.length).map((g) => g.line), before.map((g) => g.line), 'earlier lines are kept as they were');
    const added = after1.slice(before.length).map((g) => g.record as unknown as { requestID: string });
    for (const id of fresh) assert.ok(added.some((a) => a.requestID === id), `new Encrypt ${id} exported`);
    assert.equal((JSON.parse(r.stdout) as { exported: number }).exported, added.length);

    // An export that died mid-write: half a line past what the state recorded.
    const file = join(dir, after1[after1.length - 1]!.file);
    appendFileSync(file, '{"eventVersion":"1.08","userIdent');
    const again = await runCli(['audit', 'export', '--out', dir], cliEnv(s));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /removed \d+ bytes an interrupted export wrote/);
    const after2 = dirRecords(dir); // every line parses
    assertNoDuplicates(after2.map((g) => g.record.eventID));
    assert.deepEqual(after2.slice(0, after1.length).map((g) => g.line), after1.map((g) => g.line));
  });

  it('--to stdout with --state is incremental; --start/--end select by event time', async () => {
    const state = join(root, 'stdout-state.json');
    const first = await runCli(['audit', 'export', '--to', 'stdout', '--state', state], cliEnv(s));
    assert.equal(first.code, 0, first.stderr);
    const one = first.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { eventID: string });
    assert.ok(one.length >= 10);
    await s.kms().encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') });
    const second = await runCli(['audit', 'export', '--to', 'stdout', '--state', state], cliEnv(s));
    assert.equal(second.code, 0, second.stderr);
    const two = second.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { eventID: string; eventName: string });
    assert.ok(two.length >= 2 && two.length <= 4, `second run exported ${two.length}`);
    assertNoDuplicates([...one, ...two].map((e) => e.eventID));
    assert.ok(two.some((e) => e.eventName === 'Encrypt'));

    const stored = readAuditEvents(s.dataDir).filter((e) => e.eventName === 'Encrypt');
    const start = stored[3]!.eventTime;
    const end = stored[6]!.eventTime;
    const ranged = await runCli(['audit', 'export', '--to', 'stdout', '--start', start, '--end', end], cliEnv(s));
    assert.equal(ranged.code, 0, ranged.stderr);
    const inRange = ranged.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { eventID: string; eventName: string });
    assert.deepEqual(inRange.filter((e) => e.eventName === 'Encrypt').map((e) => e.eventID), stored.slice(3, 7).map((e) => e.eventId));
    const all = readAuditEvents(s.dataDir);
    for (const e of inRange) {
      const t = all.find((a) => a.eventId === e.eventID)!.eventTime;
      assert.ok(t >= start && t <= end, `${t} outside ${start}..${end}`);
    }
  });

  it('sends RFC 5424 syslog messages over UDP and TCP', async () => {
    // UDP: one datagram per event.
    const udp = createSocket('udp4');
    const datagrams: string[] = [];
    udp.on('message', (m) => datagrams.push(m.toString('utf8')));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const udpPort = udp.address().port;
    const ru = await runCli(['audit', 'export', '--to', `syslog=127.0.0.1:${udpPort}`, '--json'], cliEnv(s));
    assert.equal(ru.code, 0, ru.stderr);
    const n = (JSON.parse(ru.stdout) as { exported: number }).exported;
    for (let i = 0; i < 50 && datagrams.length < n; i++) await new Promise((r) => setTimeout(r, 50));
    udp.close();
    assert.equal(datagrams.length, n);
    const msgs = datagrams.map(parse5424);
    const seqs = msgs.map((m) => m.sequenceId);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in chain order');
    const enc = msgs.find((m) => m.msgid === 'Encrypt')!;
    assert.equal(enc.pri, 13 * 8 + 6, 'facility log audit, severity informational');
    assert.equal(enc.app, 'keyhold');
    assert.equal(enc.timestamp, enc.record.eventTime);
    const stored = readAuditEvents(s.dataDir);
    assert.equal(stored.find((e) => e.seq === enc.sequenceId)!.eventId, enc.record.eventID, 'sequenceId is the chain position');

    // TCP: octet-counted frames (RFC 6587).
    let received = Buffer.alloc(0);
    const server: Server = createServer((c) => c.on('data', (d: Buffer) => (received = Buffer.concat([received, d]))));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const tcpPort = (server.address() as { port: number }).port;
    const rt = await runCli(['audit', 'export', '--to', `syslog=tcp://127.0.0.1:${tcpPort}`, '--json'], cliEnv(s));
    assert.equal(rt.code, 0, rt.stderr);
    const m = (JSON.parse(rt.stdout) as { exported: number }).exported;
    await new Promise((r) => setTimeout(r, 200));
    server.close();
    const frames: string[] = [];
    for (let off = 0; off < received.length; ) {
      const sp = received.indexOf(0x20, off);
      const len = Number(received.subarray(off, sp).toString('ascii'));
      assert.ok(Number.isInteger(len) && len > 0, 'octet count');
      frames.push(received.subarray(sp + 1, sp + 1 + len).toString('utf8'));
      off = sp + 1 + len;
    }
    assert.equal(frames.length, m);
    const id = (x: string) => parse5424(x).record.eventID;
    assert.deepEqual(frames.slice(0, datagrams.length).map(id), datagrams.map(id), 'the same events in the same order as over UDP');
  });

  it('rejects bad flags with exit 2', async () => {
    for (const args of [['--to', 'printer'], ['--format', 'csv', '--to', 'stdout'], ['--out', join(root, 'x'), '--to', 'stdout'], ['--to', 'stdout', '--start', 'yesterday']]) {
      const r = await runCli(['audit', 'export', ...args], cliEnv(s));
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  it('offline with --data-dir: every event, split by UTC day, incremental', async () => {
    const lib = libfaketime();
    if (!lib) return; // not installed (and not CI)
    const dataDir = s.dataDir;
    const creds = s.credentials;
    await s.stop();
    // A day later: the next events go to the next day's file.
    const later = await startServer({ dataDir, credentials: creds, wrapper: faketimeWrapper(lib, 1) });
    try {
      await offsetClient(later, creds, 1).encrypt({ KeyId: keyId, Plaintext: Buffer.from('tomorrow') });
    } finally {
      await later.stop();
    }
    const dir = join(root, 'offline');
    const r = await runCli(['audit', 'export', '--data-dir', dataDir, '--out', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const got = dirRecords(dir);
    const stored = readAuditEvents(dataDir);
    assert.deepEqual(got.map((g) => g.record.eventID).sort(), stored.map((e) => e.eventId).sort(), 'every stored event, once');
    const days = [...new Set(got.map((g) => g.file))];
    assert.equal(days.length, 2, `two day files: ${days.join(', ')}`);
    for (const g of got) assert.equal(g.file, `keyhold-audit-${g.record.eventTime.slice(0, 10)}.jsonl`);
    const again = await runCli(['audit', 'export', '--data-dir', dataDir, '--out', dir, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { exported: number }).exported, 0);
    assert.equal(dirRecords(dir).length, got.length);
    // A state file belongs to one scope: the API export's directory is refused offline.
    const mixed = await runCli(['audit', 'export', '--data-dir', dataDir, '--out', join(root, 'api')]);
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /belongs to an export of account/);
    assert.ok(existsSync(join(dir, '.keyhold-export-state.json')));
  });
});
