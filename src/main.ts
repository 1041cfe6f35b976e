/**
 * The composition root: reads config, picks implementations, starts the server. The only module
 * that knows every other one.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, chmod, readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ConfigError, parseServerConfig, type ServerConfig } from './config.js';
import { Barrier, FileSeal, PassphraseSeal, type Seal } from './barrier/index.js';
import { MemoryStorage, SqliteStorage, type Storage } from './storage/index.js';
import { AuditContextKey, AuditSigningKey, GuardedKeyStore, ImportParameterStore, NO_HSMS, RoutingKeyStore, SoftwareKeyStore, type KeyStore } from './keystore/index.js';
import { HsmPool, HsmSeal } from './keystore/pkcs11/index.js';
import { BackupRegistry, CustomKeyStoreRepository, KeyRepository, UsageCounter } from './keys/index.js';
import { IdentityStore } from './identity/index.js';
import { AlertEngine, AuditDb, WebhookAddressGuard, DiscardingAuditLog, readExportPage, SqliteAuditLog, verifyAuditDb } from './audit/index.js';
import { printVerification } from './cli/audit.js';
import { UsageError } from './cli/client.js';
import { EXPORT_OPTIONS, EXPORT_USAGE, exportOptions, printExportSummary, runExport, type ExportOptions, type ExportSource } from './cli/audit-export.js';
import { respondToAlert, systemClock, type Clock, type Services } from './operations/index.js';
import { DELETION_JOB, IMPORT_EXPIRY_JOB, JobRunner, ROTATION_JOB } from './jobs/index.js';
import { createHandler } from './api/aws-json/handler.js';
import { ensureLocalTls } from './api/tls.js';
import { isClusterWorker, resolveWorkerCount, runPrimary, workerLink } from './cluster.js';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly services: Services;
  readonly jobs: JobRunner;
  close(): Promise<void>;
  /** Forgets cached storage reads (a sibling worker committed; see cluster.ts). */
  dropCachedReads(): void;
}

const LEVELS = { error: 0, warn: 1, info: 2 } as const;

/** How often audit retention (--audit-retention-days) looks for events to remove. */
const RETENTION_INTERVAL_MS = 3_600_000;

function makeLogger(level: ServerConfig['logLevel']): Services['log'] {
  return (lvl, msg, fields) => {
    if (LEVELS[lvl] > LEVELS[level]) return;
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + '\n');
  };
}

async function openSeal(config: ServerConfig, hsms: HsmPool | undefined): Promise<Seal> {
  if (config.seal.kind === 'passphrase') return new PassphraseSeal(config.seal.passphrase);
  if (config.seal.kind === 'hsm') {
    // No token, no start: the root key is opened only inside the HSM (TokenError names the cause).
    return new HsmSeal(hsms!.token(config.seal.hsm));
  }
  return FileSeal.open(join(config.dataDir, 'seal.key'));
}

export interface StartOptions {
  clock?: Clock;
  announce?: (line: string) => void;
  /** Passed to SqliteStorage (see cluster.ts): tells sibling workers to drop their cached reads. */
  afterCommit?: () => Promise<void>;
}

/**
 * Everything a server needs before it listens: the data dir (0700), storage, the unsealed barrier
 * and the account's root credentials (created, and written to root-credentials.json, on first start).
 */
async function openCore(config: ServerConfig, log: Services['log'], announce: (line: string) => void, afterCommit?: () => Promise<void>) {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await chmod(config.dataDir, 0o700);
  // Declared HSMs: tokens open on first use (the seal's at once), and again after a failure.
  const hsms = config.hsms.length > 0
    ? new HsmPool(config.hsms, (name, e) => log('warn', 'HSM call failed', { hsm: name, error: String((e as Error)?.message ?? e) }))
    : undefined;
  const storage = config.storage === 'memory'
    ? new MemoryStorage()
    : SqliteStorage.open(join(config.dataDir, 'keyhold.db'), afterCommit ? { afterCommit } : {});
  try {
    const barrier = await Barrier.unseal(storage, await openSeal(config, hsms));
    const identity = new IdentityStore(storage, barrier);
    const boot = await identity.bootstrapRoot(config.accountId, config.rootCredentials);
    if (boot.created) {
      const file = join(config.dataDir, 'root-credentials.json');
      await writeFile(file, JSON.stringify({ accountId: config.accountId, ...boot.credentials }, null, 2) + '\n', { mode: 0o600 });
      await chmod(file, 0o600);
      announce(`keyhold root credentials for account ${config.accountId} written to ${file}`);
    }
    return { storage, barrier, identity, hsms };
  } catch (e) {
    await storage.close();
    hsms?.close();
    throw e;
  }
}

async function tlsMaterial(config: ServerConfig): Promise<{ cert: string; key: string } | undefined> {
  if (config.tls.mode === 'off') return undefined;
  if (config.tls.mode === 'files') return { cert: await readFile(config.tls.certFile, 'utf8'), key: await readFile(config.tls.keyFile, 'utf8') };
  return ensureLocalTls(config.dataDir);
}

/** The data dir as a cluster's workers expect it: created, root key sealed, credentials and TLS files in place. */
export async function prepareDataDir(config: ServerConfig, announce: (line: string) => void): Promise<void> {
  const { storage, hsms } = await openCore(config, makeLogger(config.logLevel), announce);
  await storage.close();
  hsms?.close();
  await tlsMaterial(config);
}

export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const announce = opts.announce ?? ((line: string) => process.stdout.write(line + '\n'));
  const log = makeLogger(config.logLevel);
  const { storage, barrier, identity, hsms } = await openCore(config, log, announce, opts.afterCommit);
  const software: KeyStore = new SoftwareKeyStore(barrier, storage);
  const keystore = new GuardedKeyStore(new RoutingKeyStore(software, (name) => {
    if (!hsms) throw new Error(`no HSM named ${name} is declared`);
    return hsms.keyStore(name);
  }));
  let audit: SqliteAuditLog | DiscardingAuditLog;
  const accountWebhookGuard = new WebhookAddressGuard(config.accountWebhookAllow);
  let alerts: AlertEngine | undefined;
  /** Set once the services exist: the alert response acts through them. */
  let servicesForAlerts: Services | undefined;
  if (config.auditLog === 'none') {
    // bench/run.ts only: what the durable log costs is measured against this.
    log('warn', DiscardingAuditLog.WARNING);
    audit = new DiscardingAuditLog();
  } else {
    try {
      const signer = await AuditSigningKey.loadOrCreate(barrier, storage);
      audit = await SqliteAuditLog.open(join(config.dataDir, 'audit', 'audit.db'), { log, signer, digestIntervalMs: config.auditDigestIntervalMs });
    } catch (e) {
      await storage.close();
      hsms?.close();
      throw e;
    }
    const engine = new AlertEngine(audit, {
      webhooks: config.alertWebhooks, webhookSecret: await alertWebhookSecret(config.dataDir), log,
      alertSettings: async (accountId) => ({ sourceCidrAllowlist: (await identity.accountSettings(accountId)).alertSourceCidrs }),
      accountWebhooks: (accountId) => identity.listAlertWebhooks(accountId),
      accountWebhookSecret: (accountId, webhookId) => identity.alertWebhookSecret(accountId, webhookId),
      accountWebhookGuard,
      respond: (alert) => (servicesForAlerts ? respondToAlert(servicesForAlerts, alert) : Promise.resolve()),
    });
    audit.onCommitted = (events) => engine.examine(events);
    engine.start();
    alerts = engine;
  }
  // Retention (--audit-retention-days): at start and hourly, off the request path.
  const applyRetention = () => {
    const days = config.auditRetentionDays!;
    if (!(audit instanceof SqliteAuditLog)) return;
    audit.applyRetention(Date.now() - days * 86_400_000, days)
      .catch((e) => log('warn', 'audit retention failed; will try again', { error: String((e as Error)?.message ?? e) }));
  };
  const retentionTimer = config.auditRetentionDays === undefined ? undefined : setInterval(applyRetention, RETENTION_INTERVAL_MS);
  retentionTimer?.unref();
  if (retentionTimer) applyRetention();
  const services: Services = {
    keys: new KeyRepository(storage),
    keystore,
    identity,
    customKeyStores: new CustomKeyStoreRepository(storage),
    importParameters: new ImportParameterStore(barrier, storage),
    hsms: hsms ?? NO_HSMS,
    audit,
    auditContextKey: await AuditContextKey.loadOrCreate(barrier, storage),
    usage: new UsageCounter(storage),
    backups: new BackupRegistry(storage),
    accountWebhookGuard,
    clock: opts.clock ?? systemClock,
    log,
  };
  servicesForAlerts = services;

  const handler = createHandler({ services, maxBodyBytes: config.maxBodyBytes, health: () => audit.health() });
  let server: Server;
  let scheme: 'http' | 'https';
  const material = await tlsMaterial(config);
  if (material === undefined) {
    log('warn', 'TLS is off (--no-tls): credentials and data cross the network in the clear; use this only for local testing');
    server = createHttpServer(handler);
    scheme = 'http';
  } else {
    server = createHttpsServer({ ...material, minVersion: 'TLSv1.2' }, handler);
    scheme = 'https';
  }
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.requestTimeoutMs;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${scheme}://${host}:${port}`;

  const jobs = new JobRunner(services, [DELETION_JOB, ROTATION_JOB, IMPORT_EXPIRY_JOB], config.jobIntervalMs);
  jobs.start();

  // Use counts are added up in memory and written every few seconds, not once per request.
  const keyExists = async (keyId: string, tx: Parameters<typeof services.keys.getKey>[1]) => (await services.keys.getKey(keyId, tx)) !== undefined;
  const flushUsage = () =>
    services.usage.flush(keyExists).catch((e) => log('warn', 'key usage counts could not be written; kept for the next flush', { error: String(e) }));
  const usageTimer = setInterval(() => void flushUsage(), config.usageFlushMs);
  usageTimer.unref();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await jobs.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      clearInterval(usageTimer);
      await flushUsage();
      alerts?.stop();
      if (retentionTimer) clearInterval(retentionTimer);
      await audit.close();
      await storage.close();
      hsms?.close();
    })());

  announce(`keyhold listening on ${url}`);
  const dropCachedReads = () => {
    if (storage instanceof SqliteStorage) storage.dropCachedReads();
  };
  return { url, port, services, jobs, close, dropCachedReads };
}

/** `keyhold server [flags]`: runs until SIGTERM or SIGINT, then shuts down cleanly. */
export async function serverCommand(argv: string[]): Promise<void> {
  let config: ServerConfig;
  try {
    config = parseServerConfig(argv);
  } catch (e) {
    if (e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(e as Error).message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const workers = resolveWorkerCount(config.workers);
  const log = makeLogger(config.logLevel);
  const print = (line: string) => process.stdout.write(line + '\n');
  const caLine = config.tls.mode === 'local-ca' ? [`keyhold CA certificate: ${join(config.dataDir, 'tls', 'ca.pem')}`] : [];
  if (workers > 1 && !isClusterWorker()) {
    await prepareDataDir(config, print);
    await runPrimary({ workers, announce: print, log, afterListening: caLine });
    return;
  }
  // The signal handlers are in place before the server starts: `keyhold listening on` is printed
  // while startServer runs, and a SIGTERM sent as soon as it appears must shut down cleanly too
  // (it used to find no handler yet and kill the process outright).
  let started!: (r: RunningServer) => void;
  const up = new Promise<RunningServer>((r) => (started = r));
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    if (!isClusterWorker()) process.stderr.write(`keyhold: ${signal}, shutting down\n`);
    up.then((r) => r.close()).then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`keyhold: shutdown failed: ${e}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  let running: RunningServer;
  if (isClusterWorker()) {
    const link = workerLink((msg) => log('warn', msg));
    running = await startServer(config, {
      afterCommit: () => link.afterCommit(),
      announce: (line) => {
        const listening = /^keyhold listening on (.+)$/.exec(line);
        if (listening) link.listening(listening[1]!);
        else link.announce(line);
      },
    });
    link.onSiblingCommit(() => running.dropCachedReads());
  } else {
    running = await startServer(config);
    for (const line of caLine) print(line);
  }
  started(running);
}

/**
 * `keyhold audit verify --data-dir DIR`: checks the audit log offline, on the files, with the
 * signing key's public half read through the barrier (so a public key swapped in by whoever
 * altered the log is not trusted). Needs the seal (seal.key, or the passphrase). The server may be
 * running. Exit 0 intact, 3 not, 1 when the data dir cannot be read, 2 usage.
 */
export async function auditOfflineCommand(argv: string[]): Promise<number> {
  const fail = (code: number, msg: string) => {
    process.stderr.write(`keyhold: ${msg}\n`);
    return code;
  };
  const [sub, ...rest] = argv;
  if (sub === 'export') return auditOfflineExport(rest);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { 'data-dir': { type: 'string' }, seal: { type: 'string' }, 'seal-passphrase-file': { type: 'string' }, json: { type: 'boolean' } },
    }));
  } catch (e) {
    return fail(2, (e as Error).message);
  }
  if (sub !== 'verify' || !values['data-dir']) return fail(2, 'usage: keyhold audit verify --data-dir DIR [--seal passphrase --seal-passphrase-file F] [--json]');
  let config: ServerConfig;
  try {
    config = parseServerConfig([
      '--data-dir', values['data-dir'],
      ...(values.seal ? ['--seal', values.seal] : []),
      ...(values['seal-passphrase-file'] ? ['--seal-passphrase-file', values['seal-passphrase-file']] : []),
    ]);
  } catch (e) {
    return fail(2, (e as Error).message);
  }
  const dbFile = join(config.dataDir, 'keyhold.db');
  const auditFile = join(config.dataDir, 'audit', 'audit.db');
  if (!existsSync(dbFile) || !existsSync(auditFile)) return fail(1, `${config.dataDir} holds no keyhold.db and audit/audit.db`);
  if (config.seal.kind === 'file' && !existsSync(join(config.dataDir, 'seal.key'))) return fail(1, `no seal key at ${join(config.dataDir, 'seal.key')}`);
  const storage = SqliteStorage.open(dbFile);
  try {
    if (!(await storage.get('sys/root-key'))) return fail(1, `${dbFile} has no root key`);
    const barrier = await Barrier.unseal(storage, await openSeal(config, undefined));
    const key = await AuditSigningKey.load(barrier, storage);
    if (!key) return fail(1, 'the data dir has no audit signing key (no server has run on it with this version)');
    const adb = AuditDb.open(auditFile, { readonly: true });
    try {
      const code = printVerification(verifyAuditDb(adb, key.publicKeyPem), values.json === true, (l) => process.stdout.write(l + '\n'));
      // Journals a server left behind (it was killed): their events enter the chain at its next start.
      const intake = join(config.dataDir, 'audit', 'intake');
      const waiting = existsSync(intake) ? readdirSync(intake).filter((n) => n.endsWith('.jsonl') && statSync(join(intake, n)).size > 0) : [];
      if (waiting.length > 0) {
        process.stderr.write(`note: ${waiting.length} intake journal(s) in ${intake} hold events not yet moved into the log (not verified here); the next server start moves them in\n`);
      }
      return code;
    } finally {
      adb.close();
    }
  } catch (e) {
    return fail(1, (e as Error).message);
  } finally {
    await storage.close();
  }
}

/** The audit database as an export source: every account's events (an operator's view of the files). */
function dbExportSource(adb: AuditDb, o: ExportOptions): ExportSource {
  return {
    scope: async () => 'every account (offline)',
    page: async (afterSeq, limit) => readExportPage(adb, {
      afterSeq, limit, ...(o.startMs !== undefined ? { startMs: o.startMs } : {}), ...(o.endMs !== undefined ? { endMs: o.endMs } : {}),
    }),
  };
}

/**
 * `keyhold audit export --data-dir DIR ...`: exports from the audit database directly (read-only;
 * the server may be running). Needs no seal: the events are read, not verified
 * (`keyhold audit verify --data-dir` checks them).
 */
async function auditOfflineExport(argv: string[]): Promise<number> {
  const fail = (code: number, msg: string) => {
    process.stderr.write(`keyhold: ${msg}\n`);
    return code;
  };
  let o: ExportOptions;
  let dataDir: string | undefined;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { ...EXPORT_OPTIONS, 'data-dir': { type: 'string' }, seal: { type: 'string' }, 'seal-passphrase-file': { type: 'string' } },
    });
    dataDir = values['data-dir'];
    o = exportOptions(values);
  } catch (e) {
    return fail(2, `${(e as Error).message}\n${EXPORT_USAGE}`);
  }
  const auditFile = join(dataDir!, 'audit', 'audit.db');
  if (!existsSync(auditFile)) return fail(1, `${dataDir} holds no audit/audit.db`);
  let adb: AuditDb | undefined;
  try {
    adb = AuditDb.open(auditFile, { readonly: true });
    const summary = await runExport(dbExportSource(adb, o), o, (m) => process.stderr.write(`keyhold: ${m}\n`));
    printExportSummary(summary, o, (l) => process.stdout.write(l + '\n'));
    return 0;
  } catch (e) {
    return fail(e instanceof UsageError ? 2 : 1, (e as Error).message);
  } finally {
    adb?.close();
  }
}

/** The HMAC key alert webhooks are signed with: KEYHOLD_ALERT_WEBHOOK_SECRET, or generated once into DATA_DIR/alert-webhook-secret (0600). */
async function alertWebhookSecret(dataDir: string): Promise<Buffer> {
  if (process.env.KEYHOLD_ALERT_WEBHOOK_SECRET) return Buffer.from(process.env.KEYHOLD_ALERT_WEBHOOK_SECRET, 'utf8');
  const file = join(dataDir, 'alert-webhook-secret');
  try {
    await writeFile(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return Buffer.from((await readFile(file, 'utf8')).trim(), 'utf8');
}
