/**
 * `keyhold backup encrypt|decrypt|inspect|verify|rewrap`: AWS Encryption SDK v2 messages whose data
 * keys are wrapped by Keyhold over the AWS SDK.
 */
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { open, readFile, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describeEdks, type EdkDescription } from './edks.js';
import { deregisterBackup, listBackups, recordVerification, registerBackup, registryLocation, relocateBackup } from './registry.js';
import { KeyholdServiceError } from '../keyhold-client.js';
import { scanTree } from './scan.js';
import { BackupFormatError, parseHeader, IncompleteHeader, SUITES, SUITE_COMMIT_KEY, SUITE_COMMIT_KEY_ECDSA_P384, type ParsedHeader, type EncryptedDataKey } from '../../format/backup-message/index.js';
import { clientSettings, UsageError, type ClientSettings } from '../client.js';
import { KmsKeyring, NoDecryptableKey } from './kms-keyring.js';
import { ByteReader, decryptStream, deriveKeys, encryptStream, readHeader, sealHeader, DEFAULT_FRAME_LENGTH, type DecryptOptions } from './message-stream.js';
import { AtomicFile, nullSink, sizeOf, source, stdoutSink, streamSource } from './files.js';
import { decryptFile, encryptFileParallel, FramePool, parallelEncryptWorthIt, verifyFile } from './parallel.js';
import { ProgressBar } from './progress.js';
import { timingSafeEqual, createDecipheriv } from 'node:crypto';

type Out = (line: string) => void;

/** Exit status when a message fails authentication or is malformed (as `audit verify` uses 3). */
export const EXIT_INTEGRITY = 3;

const COMMON = {
  'endpoint-url': { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  /** No progress bar (it is drawn only when stderr is a terminal anyway). */
  'no-progress': { type: 'boolean' },
} as const;

/** The progress bar on stderr, unless --quiet or --no-progress (or stderr is not a terminal). */
function progressBar(label: string, total: number | undefined, values: { quiet?: boolean; 'no-progress'?: boolean }): ProgressBar {
  return new ProgressBar(label, total, { quiet: values.quiet || values['no-progress'] });
}

function parseContext(pairs: string[] | undefined): Record<string, string> {
  const ctx: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) throw new UsageError(`--context wants k=v, got ${JSON.stringify(p)}`);
    ctx[p.slice(0, i)] = p.slice(i + 1);
  }
  return ctx;
}

function headerSummary(h: ParsedHeader) {
  return {
    format: 'aws-encryption-sdk-v2',
    suite: `0x${h.suiteId.toString(16).padStart(4, '0')} ${SUITES[h.suiteId]!.name}`,
    messageId: h.messageId.toString('hex'),
    frameLength: h.frameLength,
    encryptionContext: { ...h.encryptionContext },
    wrappingKeys: describeEdks(h.encryptedDataKeys),
    headerBytes: h.length,
  };
}

/** --threads N: worker threads for file-to-file work (0: the single-threaded stream path); default one per core. */
function parseThreads(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new UsageError('--threads wants an integer from 0 to 64');
  return n;
}

async function withOutput<T>(outPath: string | undefined, run: (sink: AtomicFile | ReturnType<typeof stdoutSink>) => Promise<T>, durable = true): Promise<T> {
  if (!outPath || outPath === '-') return run(stdoutSink());
  const f = await AtomicFile.create(outPath, { durable });
  try {
    const r = await run(f);
    await f.commit();
    return r;
  } catch (e) {
    await f.abort();
    throw e;
  }
}

async function encryptCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      ...COMMON, key: { type: 'string', multiple: true }, context: { type: 'string', multiple: true }, output: { type: 'string', short: 'o' }, 'frame-size': { type: 'string' },
      signed: { type: 'boolean' }, 'no-register': { type: 'boolean' }, 'register-as': { type: 'string' }, 'no-fsync': { type: 'boolean' }, threads: { type: 'string' },
    },
  });
  if (!values.key?.length) throw new UsageError('backup encrypt needs at least one --key <id|alias|arn>');
  if (positionals.length > 1) throw new UsageError('backup encrypt takes one input (a file or -)');
  const frameLength = values['frame-size'] ? Number(values['frame-size']) : DEFAULT_FRAME_LENGTH;
  if (!Number.isInteger(frameLength) || frameLength < 1) throw new UsageError('--frame-size wants a positive integer (bytes)');
  const settings = clientSettings(values);
  const input = positionals[0];
  const size = await sizeOf(input);
  const progress = progressBar('encrypt', size, values);
  const o = {
    keyring: new KmsKeyring(settings, values.key!),
    context: parseContext(values.context),
    frameLength,
    suiteId: values.signed ? SUITE_COMMIT_KEY_ECDSA_P384 : SUITE_COMMIT_KEY,
    onProgress: (n: number) => progress.update(n),
  };
  // A regular file to a file, unsigned: frames are sealed on every core (parallel.ts). The workers
  // start now, so their start-up overlaps the KMS call.
  const toFile = !!values.output && values.output !== '-';
  const threads = parseThreads(values.threads);
  const pool = threads !== 0 && toFile && !values.signed && input && input !== '-' && parallelEncryptWorthIt(size, frameLength) ? FramePool.start(threads) : undefined;
  let r;
  try {
    r = await withOutput(values.output, (sink) => (pool ? encryptFileParallel(input!, sink as AtomicFile, { ...o, pool }) : encryptStream(source(input, frameLength), sink, o)), !values['no-fsync']);
  } finally {
    await pool?.close();
  }
  progress.done();
  // Register with the server (lineage): a file output by its path, stdout only with --register-as.
  const location = values['register-as'] ?? (values.output && values.output !== '-' ? values.output : undefined);
  if (location && !values['no-register']) await registerBackup(settings, r.header, location, r.ciphertextBytes);
  const info = { ...headerSummary(r.header), plaintextBytes: r.plaintextBytes, ciphertextBytes: r.ciphertextBytes, frames: r.frames, registered: !!location && !values['no-register'] };
  if (values.output && values.output !== '-') {
    if (values.json) out(JSON.stringify(info, null, 2));
    else if (!values.quiet) process.stderr.write(`encrypted ${r.plaintextBytes} bytes into ${values.output} (message ${info.messageId}, ${r.frames} frames, keys ${info.wrappingKeys.map((k) => k.keyArn).join(', ')})\n`);
  }
  return 0;
}

async function decryptCmd(argv: string[], out: Out, verifyOnly: boolean): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { ...COMMON, key: { type: 'string', multiple: true }, context: { type: 'string', multiple: true }, output: { type: 'string', short: 'o' }, 'no-fsync': { type: 'boolean' }, threads: { type: 'string' } },
  });
  if (positionals.length > 1) throw new UsageError(`backup ${verifyOnly ? 'verify' : 'decrypt'} takes one input (a file or -)`);
  const settings = clientSettings(values);
  const input = positionals[0];
  const keyring = new KmsKeyring(settings, values.key ?? []);
  const progress = progressBar(verifyOnly ? 'verify' : 'decrypt', await sizeOf(input), values);
  const o: DecryptOptions = { keyring, requiredContext: parseContext(values.context), onProgress: (n: number) => progress.update(n) };
  const durable = !values['no-fsync'];
  const toFile = !!values.output && values.output !== '-';
  const threads = parseThreads(values.threads);
  /** A file to a file, or verified in place: decryptFile (every core when it can); otherwise the stream. */
  const decrypt = () => {
    if (input && input !== '-' && (verifyOnly || toFile)) {
      return decryptFile(input, { ...o, workers: threads }, verifyOnly ? undefined : { path: values.output!, durable });
    }
    const run = (sink: Parameters<typeof decryptStream>[1]) => decryptStream(source(input), sink, o);
    return verifyOnly ? run(nullSink) : withOutput(values.output, run, durable);
  };
  try {
    const r = await decrypt();
    progress.done();
    if (verifyOnly) {
      const keys = await Promise.all(describeEdks(r.header.encryptedDataKeys).map(async (k) => {
        let state = 'unknown';
        try {
          const d = await keyring.client(k.keyArn).describeKey({ KeyId: k.keyArn });
          state = d.KeyMetadata?.KeyState ?? 'unknown';
        } catch (e) {
          state = `unknown (${(e as Error).name})`;
        }
        return { ...k, state, usedToVerify: k.keyArn === r.keyArn };
      }));
      const report = { ok: true, ...headerSummary(r.header), wrappingKeys: keys, frames: r.frames, plaintextBytes: r.plaintextBytes, ciphertextBytes: r.ciphertextBytes, signed: r.signed };
      if (values.json) out(JSON.stringify(report, null, 2));
      else {
        out(`OK: ${r.frames} frames, ${r.plaintextBytes} plaintext bytes authenticated (message ${report.messageId}, ${report.suite})`);
        for (const k of keys) out(`  ${k.keyArn}  version ${k.keyVersion ?? '?'}  ${k.state}${k.usedToVerify ? '  (used)' : ''}`);
      }
    }
    return 0;
  } catch (e) {
    progress.done();
    if (e instanceof BackupFormatError) {
      if (values.json && verifyOnly) out(JSON.stringify({ ok: false, error: e.message }, null, 2));
      process.stderr.write(`keyhold: ${e.message}${verifyOnly ? '' : '; no plaintext was written'}\n`);
      return EXIT_INTEGRITY;
    }
    if (e instanceof NoDecryptableKey) {
      process.stderr.write(`keyhold: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/** Reads just the header of a file (inspect, rewrap). */
export async function readFileHeader(path: string): Promise<ParsedHeader> {
  const fh = await open(path, 'r');
  try {
    let size = 4096;
    for (;;) {
      const buf = Buffer.alloc(size);
      const { bytesRead } = await fh.read(buf, 0, size, 0);
      try {
        return parseHeader(buf.subarray(0, bytesRead));
      } catch (e) {
        if (!(e instanceof IncompleteHeader)) throw e;
        if (bytesRead < size) throw new BackupFormatError('truncated: the input ends inside the message header');
        size *= 4;
      }
    }
  } finally {
    await fh.close();
  }
}

async function inspectCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } });
  if (positionals.length > 1) throw new UsageError('backup inspect takes one input (a file or -)');
  let h: ParsedHeader;
  try {
    h = !positionals[0] || positionals[0] === '-' ? await readHeader(new ByteReader(streamSource('-'))) : await readFileHeader(positionals[0]);
  } catch (e) {
    return integrityExit(e);
  }
  const s = headerSummary(h);
  if (values.json) out(JSON.stringify(s, null, 2));
  else {
    out(`format:       ${s.format} (framed)`);
    out(`suite:        ${s.suite}`);
    out(`message id:   ${s.messageId}`);
    out(`frame length: ${s.frameLength}`);
    out(`context:      ${Object.entries(s.encryptionContext).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)'}`);
    for (const k of s.wrappingKeys) out(`wrapping key: ${k.keyArn}${k.keyVersion !== undefined ? `  version ${k.keyVersion}` : ''}  (${k.provider})`);
  }
  return 0;
}

/**
 * `backup register FILE...`: registers existing encrypted files at their paths (replicas made by cp
 * or rsync, files written with --no-register). The header is read and registered; with --verify
 * every frame is authenticated first (which needs kms:Decrypt) and the result recorded with it.
 * A file that is not a readable message is reported and skipped; the exit status is then 3.
 */
async function registerCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON, verify: { type: 'boolean' }, threads: { type: 'string' } } });
  if (!positionals.length || positionals.includes('-')) throw new UsageError('backup register takes one or more FILEs (not stdin: a registered backup has a location)');
  const settings = clientSettings(values);
  const threads = parseThreads(values.threads);
  const results: { location: string; messageId?: string; ok: boolean; verified?: boolean; error?: string }[] = [];
  for (const file of positionals) {
    try {
      const size = await sizeOf(file);
      if (size === undefined) throw new BackupFormatError(`${file} is not a regular file`);
      let h = await readFileHeader(file);
      if (values.verify) {
        const r = await verifyFile(file, { keyring: new KmsKeyring(settings, []), workers: threads });
        h = r.header;
      }
      await registerBackup(settings, h, file, size, values.verify ? { ok: true } : undefined);
      results.push({ location: file, messageId: h.messageId.toString('hex'), ok: true, ...(values.verify ? { verified: true } : {}) });
      if (!values.json) out(`registered ${file} (message ${h.messageId.toString('hex').slice(0, 16)}${values.verify ? ', every frame verified' : ''})`);
    } catch (e) {
      if (!(e instanceof BackupFormatError) && !(e instanceof NoDecryptableKey)) throw e;
      results.push({ location: file, ok: false, error: e.message });
      if (!values.json) process.stderr.write(`keyhold: ${file}: ${e.message}; not registered\n`);
    }
  }
  if (values.json) out(JSON.stringify({ registered: results.filter((r) => r.ok).length, results }, null, 2));
  return results.every((r) => r.ok) ? 0 : EXIT_INTEGRITY;
}

/**
 * The message id the file at a registered location holds now: undefined when the location is a
 * URL, or nothing is there, or what is there is not a message.
 */
async function heldMessageId(location: string): Promise<string | undefined> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return undefined;
  try {
    return (await readFileHeader(location)).messageId.toString('hex');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (e instanceof BackupFormatError || e instanceof IncompleteHeader || code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw e;
  }
}

/**
 * `backup forget LOCATION...`: removes the registry's records of backups deleted for good
 * (KeyholdService.DeregisterBackup), so the registry, drills and `rewrap --all` stop counting them.
 * Without --message-id, every record at each location; a location whose file still holds a message
 * is then refused (it would forget a live backup): --message-id says which record to forget.
 */
async function forgetCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON, 'message-id': { type: 'string' } } });
  if (!positionals.length || positionals.includes('-')) throw new UsageError('backup forget takes one or more registered LOCATIONs');
  const messageId = values['message-id']?.toLowerCase();
  if (messageId !== undefined && !/^[0-9a-f]{64}$/.test(messageId)) throw new UsageError('--message-id wants a message id: 64 hex digits (backup list --json shows them)');
  const settings = clientSettings(values);
  const results: { location: string; forgotten: { messageId: string; location: string }[]; error?: string }[] = [];
  for (const location of positionals.map(registryLocation)) {
    let error: string | undefined;
    const held = messageId === undefined ? await heldMessageId(location) : undefined;
    if (held !== undefined) error = `the file still holds message ${held}: give --message-id to say which record to forget`;
    else {
      try {
        const removed = await deregisterBackup(settings, location, messageId);
        results.push({ location, forgotten: removed.map((r) => ({ messageId: r.MessageId, location: r.Location })) });
        if (!values.json) for (const r of removed) out(`forgot ${r.Location} (message ${r.MessageId.slice(0, 16)})`);
      } catch (e) {
        if (!(e instanceof KeyholdServiceError)) throw e;
        error = `${e.name}: ${e.message}`;
      }
    }
    if (error !== undefined) {
      results.push({ location, forgotten: [], error });
      if (!values.json) process.stderr.write(`keyhold: ${location}: ${error}; nothing forgotten\n`);
    }
  }
  if (values.json) out(JSON.stringify({ forgotten: results.reduce((n, r) => n + r.forgotten.length, 0), results }, null, 2));
  return results.some((r) => r.error !== undefined) ? 1 : 0;
}

/**
 * `backup relocate OLD NEW`: the file was moved; its record follows (KeyholdService.RelocateBackup,
 * one transaction, verification history kept). NEW must hold a message, and the record at OLD must
 * be of that message id; a file still at OLD holding it means NEW is a copy (`backup register`).
 */
async function relocateCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON } });
  if (positionals.length !== 2 || positionals.includes('-')) throw new UsageError('backup relocate takes OLD NEW: the registered location and where the file is now');
  const [from, to] = positionals.map(registryLocation) as [string, string];
  if (from === to) throw new UsageError('backup relocate: OLD and NEW are the same location');
  let h: ParsedHeader;
  try {
    h = await readFileHeader(to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${to} does not exist: relocate the record to where the file is now`);
    return integrityExit(e, ` (${to} must hold the registered backup)`);
  }
  const messageId = h.messageId.toString('hex');
  if ((await heldMessageId(from)) === messageId) {
    process.stderr.write(`keyhold: ${from} still holds message ${messageId}: ${to} is a copy; register it with keyhold backup register ${to}\n`);
    return 1;
  }
  try {
    await relocateBackup(clientSettings(values), messageId, from, to);
  } catch (e) {
    if (!(e instanceof KeyholdServiceError)) throw e;
    const hint = e.name === 'NotFoundException' ? ` (${to} holds message ${messageId}: the record at ${from} must be of that message)` : '';
    process.stderr.write(`keyhold: ${e.name}: ${e.message}${hint}\n`);
    return 1;
  }
  if (values.json) out(JSON.stringify({ messageId, location: to, previousLocation: from }, null, 2));
  else out(`relocated message ${messageId.slice(0, 16)}: ${from} -> ${to}`);
  return 0;
}

/** The journal that makes an in-place header rewrite recoverable: the new header, written first. */
function journalPath(file: string): string {
  return join(dirname(file), `.${basename(file)}.keyhold-rewrap`);
}

/**
 * Re-wraps a file's data key (under the newest version of the same keys, or under --to-key keys)
 * and rewrites only the header. Same header length: journal, pwrite, fsync, drop the journal.
 * Otherwise the file is rewritten to a temporary file and renamed (the cost grows with the file).
 */
export async function rewrapFile(
  file: string, settings: ClientSettings, toKeys: string[] | undefined, opts: { fromKeyArn?: string } = {},
): Promise<{ before: EdkDescription[]; after: EdkDescription[]; inPlace: boolean }> {
  await recoverJournal(file);
  const h = await readFileHeader(file);
  refuseSigned(h);
  const keyring = new KmsKeyring(settings);
  const { dataKey } = await keyring.decrypt(h.encryptedDataKeys, h.encryptionContext);
  try {
    checkHeader(h, dataKey);
    const edks: EncryptedDataKey[] = [];
    if (opts.fromKeyArn) {
      // Re-key (rewrap --all): only the data key under fromKeyArn is replaced, by one under its
      // newest version or under the toKeys; every other wrapping key stays as it is.
      const from = opts.fromKeyArn;
      for (const e of h.encryptedDataKeys) {
        if (e.providerId !== 'aws-kms' || e.providerInfo !== from) edks.push(e);
        else if (!edks.some((x) => x.providerInfo === from) && !(toKeys?.length)) edks.push(await keyring.wrap(from, dataKey, h.encryptionContext));
      }
      for (const k of toKeys ?? []) {
        const w = await keyring.wrap(k, dataKey, h.encryptionContext);
        if (!edks.some((x) => x.providerId === w.providerId && x.providerInfo === w.providerInfo)) edks.push(w);
      }
    } else {
      const targets = toKeys?.length ? toKeys : [...new Set(h.encryptedDataKeys.filter((e) => e.providerId === 'aws-kms').map((e) => e.providerInfo))];
      for (const k of targets) edks.push(await keyring.wrap(k, dataKey, h.encryptionContext));
    }
    const newHeader = sealHeader({ ...h, encryptedDataKeys: edks }, dataKey);
    if (newHeader.length === h.length) {
      const journal = journalPath(file);
      await writeFile(journal, newHeader, { mode: 0o600, flush: true });
      const fh = await open(file, 'r+');
      try {
        await fh.write(newHeader, 0, newHeader.length, 0);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await unlink(journal);
      return { before: describeEdks(h.encryptedDataKeys), after: describeEdks(edks), inPlace: true };
    }
    await writeWithNewHeader(file, newHeader, file, h.length);
    return { before: describeEdks(h.encryptedDataKeys), after: describeEdks(edks), inPlace: false };
  } finally {
    dataKey.fill(0);
  }
}

/** Finishes an interrupted in-place rewrap: the journal holds the complete new header. */
async function recoverJournal(file: string): Promise<void> {
  const journal = journalPath(file);
  let j: Buffer;
  try {
    j = await readFile(journal);
  } catch {
    return;
  }
  let jh: ParsedHeader | undefined;
  try {
    jh = parseHeader(j);
  } catch {
    jh = undefined; // journal itself incomplete: the file was never touched
  }
  if (jh && jh.length === j.length) {
    const fh = await open(file, 'r+');
    try {
      const cur = Buffer.alloc(j.length);
      await fh.read(cur, 0, j.length, 0);
      // Only a journal for this very message (same id) may be applied.
      if (cur.subarray(3, 35).equals(jh.messageId)) {
        await fh.write(j, 0, j.length, 0);
        await fh.sync();
      }
    } finally {
      await fh.close();
    }
  }
  await unlink(journal);
}

async function rewrapCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { ...COMMON, 'to-key': { type: 'string', multiple: true }, all: { type: 'boolean' }, 'from-key': { type: 'string' }, state: { type: 'string' } },
  });
  if (values.all) {
    if (positionals.length) throw new UsageError('backup rewrap --all takes no FILE (it reads the registry)');
    if (!values['from-key']) throw new UsageError('backup rewrap --all needs --from-key K');
    const { rekeyAll } = await import('./rekey.js');
    return rekeyAll(clientSettings(values), {
      fromKey: values['from-key'], toKeys: values['to-key'], statePath: values.state, json: values.json, quiet: values.quiet || values['no-progress'],
    }, out, { readFileHeader, rewrapFile });
  }
  if (values['from-key'] || values.state) throw new UsageError('--from-key and --state go with rewrap --all');
  if (positionals.length !== 1) throw new UsageError('backup rewrap takes one FILE (or --all --from-key K)');
  try {
    const r = await rewrapFile(positionals[0]!, clientSettings(values), values['to-key']);
    if (values.json) out(JSON.stringify({ file: positionals[0], ...r }, null, 2));
    else out(`rewrapped ${positionals[0]} ${r.inPlace ? 'in place (header only)' : '(header length changed: file rewritten)'}: ${r.after.map((k) => `${k.keyArn} v${k.keyVersion ?? '?'}`).join(', ')}`);
    return 0;
  } catch (e) {
    return integrityExit(e);
  }
}

async function listCmd(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...COMMON, key: { type: 'string' }, 'key-version': { type: 'string' }, 'at-risk-without': { type: 'string' } } });
  const settings = clientSettings(values);
  const filter: { KeyId?: string; KeyVersion?: number; AtRiskWithoutKeyId?: string } = {};
  if (values.key) filter.KeyId = values.key;
  if (values['key-version']) {
    if (!values.key) throw new UsageError('--key-version needs --key');
    filter.KeyVersion = Number(values['key-version']);
    if (!Number.isInteger(filter.KeyVersion) || filter.KeyVersion < 1) throw new UsageError('--key-version wants a positive integer');
  }
  if (values['at-risk-without']) filter.AtRiskWithoutKeyId = values['at-risk-without'];
  const rows = await listBackups(settings, filter);
  if (values.json) {
    out(JSON.stringify(rows.map((b) => ({
      ...b, RegisteredDate: new Date(b.RegisteredDate * 1000).toISOString(),
      ...(b.LastVerifiedDate !== undefined ? { LastVerifiedDate: new Date(b.LastVerifiedDate * 1000).toISOString() } : {}),
    })), null, 2));
    return 0;
  }
  out(['MESSAGE ID', 'LOCATION', 'SIZE', 'WRAPPING KEYS (version, state)', 'DECRYPTABLE', 'LAST PROVEN DECRYPTABLE'].join('  '));
  for (const b of rows) {
    const keys = b.WrappingKeys.map((k) => `${k.KeyArn.split('/').pop()!.slice(0, 8)}@${k.KeyArn.split(':')[3]} v${k.KeyVersion ?? '?'} ${k.KeyState}`).join('; ');
    const proven = b.LastVerifiedDate !== undefined ? `${new Date(b.LastVerifiedDate * 1000).toISOString()} ${b.LastVerifyOk ? 'ok' : 'FAILED'}` : 'never';
    out([b.MessageId.slice(0, 16), b.Location, String(b.SizeBytes), keys, b.Decryptable ? 'yes' : 'NO', proven].join('  '));
  }
  out(`${rows.length} backups${filter.AtRiskWithoutKeyId ? ` would become undecryptable without ${filter.AtRiskWithoutKeyId}` : ''}`);
  return 0;
}

/**
 * Restore drill: fully authenticates a random sample of registered backups (as whatever identity
 * the credentials are: use a restore-only one) and records each result in the registry.
 */
async function drillCmd(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...COMMON, sample: { type: 'string' } } });
  const settings = clientSettings(values);
  const all = await listBackups(settings);
  const n = values.sample ? Number(values.sample) : all.length;
  if (!Number.isInteger(n) || n < 1) throw new UsageError('--sample wants a positive integer');
  const pool = [...all];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const sample = pool.slice(0, n);
  const keyring = new KmsKeyring(settings);
  const results: { messageId: string; location: string; ok: boolean; message?: string; keyArn?: string }[] = [];
  for (const b of sample) {
    let ok = false;
    let message: string | undefined;
    let keyArn: string | undefined;
    let header: ParsedHeader | undefined;
    try {
      const r = await verifyFile(b.Location, { keyring });
      if (r.header.messageId.toString('hex') !== b.MessageId) throw new BackupFormatError(`the file at ${b.Location} holds message ${r.header.messageId.toString('hex')}, not ${b.MessageId}`);
      header = r.header;
      keyArn = r.keyArn;
      ok = true;
    } catch (e) {
      message = `${(e as Error).name}: ${(e as Error).message}`;
    }
    // Only the result is recorded (kms:RecordBackupVerification): a restore-only identity may drill.
    await recordVerification(settings, b.MessageId, b.Location, !!header, message);
    results.push({ messageId: b.MessageId, location: b.Location, ok, ...(message ? { message } : {}), ...(keyArn ? { keyArn } : {}) });
  }
  const failed = results.filter((r) => !r.ok).length;
  if (values.json) out(JSON.stringify({ checked: results.length, failed, results }, null, 2));
  else {
    for (const r of results) out(`${r.ok ? 'OK    ' : 'FAILED'}  ${r.messageId.slice(0, 16)}  ${r.location}${r.ok ? `  (via ${r.keyArn})` : `  ${r.message}`}`);
    out(`drill: ${results.length} of ${all.length} registered backups checked, ${failed} failed`);
  }
  return failed ? EXIT_INTEGRITY : 0;
}

async function scanCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON, 'no-registry': { type: 'boolean' } } });
  if (positionals.length !== 1) throw new UsageError('backup scan takes one DIR');
  const { findings, registry } = await scanTree(positionals[0]!, clientSettings(values), { registry: !values['no-registry'] });
  const atRisk = findings.filter((f) => f.problems.length);
  const missing = registry.filter((r) => r.risk === 'missing').length;
  if (values.json) out(JSON.stringify({ files: findings.length, atRisk: atRisk.length, registeredMissing: missing, registeredReplaced: registry.length - missing, findings, registry }, null, 2));
  else {
    for (const f of findings) {
      out(`${f.problems.length ? 'AT RISK' : 'ok     '}  ${f.path}  (${f.kind}${f.messageId ? ` ${f.messageId.slice(0, 16)}` : ''})`);
      for (const p of f.problems) out(`           - ${p}`);
    }
    for (const r of registry) {
      out(`${r.risk === 'missing' ? 'MISSING' : 'REPLACED'}  ${r.location}  (registered message ${r.messageId.slice(0, 16)})`);
      for (const p of r.problems) out(`           - ${p}`);
    }
    out(`scan: ${findings.length} files, ${atRisk.length} at risk${values['no-registry'] ? '' : `; registered backups: ${missing} missing, ${registry.length - missing} replaced`}`);
  }
  return atRisk.length || registry.length ? EXIT_INTEGRITY : 0;
}

/**
 * copy: re-wraps the data key for the destination (its region, its endpoint), writes the copy
 * (new header + the same body) atomically, then authenticates the copy there with the destination's
 * key alone and registers it with the destination server.
 */
async function copyCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { ...COMMON, 'to-region': { type: 'string' }, 'to-key': { type: 'string', multiple: true }, 'to-endpoint': { type: 'string' }, output: { type: 'string', short: 'o' }, 'keep-source-keys': { type: 'boolean' }, 'no-register': { type: 'boolean' } },
  });
  if (positionals.length !== 1 || !values.output || values.output === '-') throw new UsageError('backup copy takes one FILE and -o DEST (a file)');
  if (!values['to-key']?.length) throw new UsageError('backup copy needs --to-key K (a key at the destination)');
  const src = clientSettings(values);
  const dst: ClientSettings = { ...src, region: values['to-region'] ?? src.region, endpoint: values['to-endpoint'] ?? src.endpoint };
  const file = positionals[0]!;
  try {
    const h = await readFileHeader(file);
    refuseSigned(h);
    const { dataKey } = await new KmsKeyring(src).decrypt(h.encryptedDataKeys, h.encryptionContext);
    let copyHeader: ParsedHeader;
    try {
      checkHeader(h, dataKey);
      const dstKeyring = new KmsKeyring(dst, [], { [dst.region]: dst });
      const edks: EncryptedDataKey[] = [];
      for (const k of values['to-key']) edks.push(await dstKeyring.wrap(k, dataKey, h.encryptionContext));
      if (values['keep-source-keys']) edks.push(...h.encryptedDataKeys);
      const header = sealHeader({ ...h, encryptedDataKeys: edks }, dataKey);
      copyHeader = parseHeader(header);
      const size = await sizeOf(file);
      const copying = progressBar('copy', size !== undefined ? size - h.length : undefined, values);
      await writeWithNewHeader(values.output, header, file, h.length, (n) => copying.update(n));
      copying.done();
    } finally {
      dataKey.fill(0);
    }
    // Prove it at the destination, with the destination's keys only.
    const destKeys = copyHeader.encryptedDataKeys.map((e) => e.providerInfo).filter((arn) => values['to-key']!.some((k) => arn === k || arn.endsWith(k)) || arn.includes(`:${dst.region}:`));
    const verifying = progressBar('verify', await sizeOf(values.output), values);
    const r = await verifyFile(values.output, { keyring: new KmsKeyring(dst, destKeys, { [dst.region]: dst }), onProgress: (n) => verifying.update(n) });
    verifying.done();
    const size = r.ciphertextBytes;
    if (!values['no-register']) await registerBackup(dst, r.header, values.output, size, { ok: true });
    const report = { source: file, copy: values.output, region: dst.region, endpoint: dst.endpoint, verifiedWith: r.keyArn, frames: r.frames, plaintextBytes: r.plaintextBytes, wrappingKeys: describeEdks(r.header.encryptedDataKeys) };
    if (values.json) out(JSON.stringify(report, null, 2));
    else out(`copied ${file} -> ${values.output}; verified in ${dst.region} with ${r.keyArn} (${r.frames} frames)`);
    return 0;
  } catch (e) {
    return integrityExit(e);
  }
}

/** A BackupFormatError ends the command with EXIT_INTEGRITY, its message (and `note`) on stderr; anything else is rethrown. */
function integrityExit(e: unknown, note = ''): number {
  if (!(e instanceof BackupFormatError)) throw e;
  process.stderr.write(`keyhold: ${e.message}${note}\n`);
  return EXIT_INTEGRITY;
}

/** Re-wrapping changes only the header, which a signature covers: signed messages are refused. */
function refuseSigned(h: ParsedHeader): void {
  if (SUITES[h.suiteId]!.signatureCurve) throw new BackupFormatError('signed messages cannot be re-wrapped header-only (the signature covers the header); decrypt and encrypt again');
}

/**
 * Writes `dest` atomically (a temporary file, then rename): `header`, then the body of `file`, i.e.
 * everything after its first `bodyOffset` bytes. `dest` may be `file` itself.
 */
async function writeWithNewHeader(dest: string, header: Buffer, file: string, bodyOffset: number, onProgress?: (bodyBytes: number) => void): Promise<void> {
  const out = await AtomicFile.create(dest);
  try {
    await out.write(header);
    const fh = await open(file, 'r');
    try {
      for (let pos = bodyOffset; ; ) {
        // A fresh buffer each time: AtomicFile.write may still be writing the previous one.
        const buf = Buffer.allocUnsafe(1 << 20);
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (!bytesRead) break;
        await out.write(buf.subarray(0, bytesRead));
        pos += bytesRead;
        onProgress?.(pos - bodyOffset);
      }
    } finally {
      await fh.close();
    }
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/** Key commitment and header tag of a header, for a data key that claims to be its own. */
function checkHeader(h: ParsedHeader, dataKey: Buffer): void {
  const { encKey, commitment } = deriveKeys(dataKey, h.suiteId, h.messageId);
  try {
    if (!timingSafeEqual(commitment, h.commitment)) throw new BackupFormatError('key commitment does not match');
    const d = createDecipheriv('aes-256-gcm', encKey, Buffer.alloc(12));
    d.setAAD(h.body);
    d.setAuthTag(h.authTag);
    try { d.final(); } catch { throw new BackupFormatError('message header fails authentication (altered header)'); }
  } finally {
    encKey.fill(0);
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res(child.exitCode);
    else child.once('exit', (code) => res(code));
  });
}

/** pg_dump (custom format by default) streamed straight into encryption: no plaintext on disk. */
async function pgDumpCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { ...COMMON, database: { type: 'string' }, key: { type: 'string', multiple: true }, context: { type: 'string', multiple: true }, output: { type: 'string', short: 'o' }, 'frame-size': { type: 'string' }, 'no-register': { type: 'boolean' } },
  });
  if (!values.database) throw new UsageError('backup pg-dump needs --database URL');
  if (!values.key?.length) throw new UsageError('backup pg-dump needs at least one --key');
  if (!values.output || values.output === '-') throw new UsageError('backup pg-dump needs -o FILE');
  const settings = clientSettings(values);
  const child = spawn('pg_dump', ['--format=custom', `--dbname=${values.database}`, ...positionals], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = exitOf(child);
  const spawnError = new Promise<never>((_, rej) => child.once('error', rej));
  const context = { 'keyhold:source': 'pg_dump', ...parseContext(values.context) };
  const r = await withOutput(values.output, async (sink) => {
    const res = await Promise.race([encryptStream(child.stdout!, sink, { keyring: new KmsKeyring(settings, values.key!), context, frameLength: values['frame-size'] ? Number(values['frame-size']) : DEFAULT_FRAME_LENGTH }), spawnError]);
    const code = await exited;
    if (code !== 0) throw new Error(`pg_dump exited with status ${code}; no backup was written`);
    return res;
  });
  if (!values['no-register']) await registerBackup(settings, r.header, values.output, r.ciphertextBytes);
  const info = { ...headerSummary(r.header), plaintextBytes: r.plaintextBytes, ciphertextBytes: r.ciphertextBytes, output: values.output };
  if (values.json) out(JSON.stringify(info, null, 2));
  else out(`pg_dump -> ${values.output}: ${r.plaintextBytes} bytes encrypted (message ${info.messageId})`);
  return 0;
}

/**
 * The reverse: decrypt into pg_restore --single-transaction. Frames reach pg_restore only once
 * verified; if the message turns out truncated or altered, pg_restore is killed before its
 * transaction commits, so nothing is restored.
 */
async function pgRestoreCmd(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { ...COMMON, database: { type: 'string' }, key: { type: 'string', multiple: true }, context: { type: 'string', multiple: true } },
  });
  if (!values.database) throw new UsageError('backup pg-restore needs --database URL');
  if (positionals.length < 1) throw new UsageError('backup pg-restore takes FILE (or -) [-- pg_restore options]');
  const [input, ...extra] = positionals;
  const settings = clientSettings(values);
  const child = spawn('pg_restore', ['--single-transaction', '--exit-on-error', `--dbname=${values.database}`, ...extra], { stdio: ['pipe', 'inherit', 'inherit'] });
  const exited = exitOf(child);
  const stdin = child.stdin!;
  stdin.on('error', () => undefined); // reported through the exit status
  const sink = {
    write: (b: Buffer) => new Promise<void>((res, rej) => {
      if (child.exitCode !== null) return rej(new Error(`pg_restore exited early with status ${child.exitCode}`));
      stdin.write(b, (err) => (err ? rej(err) : res()));
    }),
  };
  try {
    const r = await decryptStream(source(input), sink, { keyring: new KmsKeyring(settings, values.key ?? []), requiredContext: parseContext(values.context) });
    stdin.end();
    const code = await exited;
    if (code !== 0) {
      process.stderr.write(`keyhold: pg_restore exited with status ${code}\n`);
      return 1;
    }
    out(`restored ${r.plaintextBytes} bytes from message ${r.header.messageId.toString('hex')} into the database`);
    return 0;
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    return integrityExit(e, '; pg_restore was stopped before committing: nothing was restored');
  }
}

export const BACKUP_HELP = `  keyhold backup encrypt --key K [--key K2 ...] [--context k=v ...] [--frame-size BYTES] [--signed] [--no-fsync] [IN|-] [-o OUT|-]
                                 AWS Encryption SDK v2 message (suite 0x0478, or 0x0578 with --signed),
                                 data key wrapped under every --key (a key ARN's region picks the region);
                                 file to file, frames are sealed on every core
  keyhold backup decrypt [--key ARN ...] [--context k=v ...] [--no-fsync] [IN|-] [-o OUT|-]
                                 a file output appears only after the last frame verified
                                 --no-fsync: a file output is not fsynced before it is renamed into place
                                 (as age, gpg and cp do): faster, but a crash soon after can lose it
                                 --threads N (encrypt, decrypt, verify): worker threads for file to file
                                 (default one per core, at most 8; 0: one thread)
  keyhold backup inspect [IN|-] [--json]   header: suite, message id, frame size, context, wrapping keys
  keyhold backup verify [IN|-] [--json] [--threads N]   authenticate every frame, write nothing; each key's version and state
  keyhold backup rewrap FILE [--to-key K ...]   re-wrap the data key (newest version, or other keys),
                                 rewriting only the header in place
  keyhold backup rewrap --all --from-key K [--to-key K2 ...] [--state FILE] [--json]
                                 every registered backup under an old version of K (or under K at all,
                                 with --to-key): rewrapped and re-registered; resumable (state file)
  keyhold backup list [--key K [--key-version V]] [--at-risk-without K] [--json]
                                 registered backups (encrypt -o FILE registers; --no-register, --register-as LOC),
                                 each wrapping key's version and state, decryptable now, last proven decryptable
  keyhold backup register FILE [FILE ...] [--verify] [--json]
                                 register existing encrypted files where they are (cp or rsync replicas,
                                 files written with --no-register); --verify authenticates every frame first
  keyhold backup relocate OLD NEW [--json]   the file was moved: its record (and verification history)
                                 follows; NEW must hold the message registered at OLD
  keyhold backup forget LOCATION [LOCATION ...] [--message-id ID] [--json]
                                 remove the records of backups deleted for good (every record at the
                                 location, or that message's; a location still holding a message needs --message-id)
  keyhold backup drill [--sample N] [--json]  fully verify N random registered backups, record the results
  keyhold backup copy FILE -o DEST --to-key K [--to-key ...] [--to-region R] [--to-endpoint URL] [--keep-source-keys]
                                 re-wrap for the destination, write DEST, verify it there with its keys alone
  keyhold backup pg-dump --database URL --key K [--key ...] -o FILE [-- pg_dump options]
                                 pg_dump (custom format) streamed through encryption: no plaintext on disk
  keyhold backup pg-restore FILE --database URL [-- pg_restore options]
                                 decrypt into pg_restore --single-transaction; stopped before commit if bad
  keyhold backup scan DIR [--json] [--no-registry]
                                 every file not encrypted (by content: SQL, pg_dump, tar, gzip, zip, ...),
                                 encrypted with keys disabled/pending deletion/unknown/without rotation,
                                 or not in the registry; registered backups inside DIR whose file is
                                 missing or replaced; exit 3 when anything is at risk
  Long jobs draw a progress bar on stderr when it is a terminal (--no-progress or --quiet: none).
  Exit status: 0 ok, 1 error, 2 usage, 3 the message is malformed or fails authentication.
`;

export async function backupCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'encrypt': return encryptCmd(rest, out);
    case 'decrypt': return decryptCmd(rest, out, false);
    case 'verify': return decryptCmd(rest, out, true);
    case 'inspect': return inspectCmd(rest, out);
    case 'register': return registerCmd(rest, out);
    case 'forget': return forgetCmd(rest, out);
    case 'relocate': return relocateCmd(rest, out);
    case 'rewrap': return rewrapCmd(rest, out);
    case 'list': return listCmd(rest, out);
    case 'drill': return drillCmd(rest, out);
    case 'scan': return scanCmd(rest, out);
    case 'copy': return copyCmd(rest, out);
    case 'pg-dump': return pgDumpCmd(rest, out);
    case 'pg-restore': return pgRestoreCmd(rest, out);
    default: throw new UsageError(`unknown backup command: ${sub ?? '(none)'}\n\n${BACKUP_HELP}`);
  }
}
