/**
 * The composition root: reads config, picks implementations, starts the server. The only module
 * that knows every other one.
 */
import { mkdir, chmod, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ConfigError, parseServerConfig, type ServerConfig } from './config.js';
import { Barrier, FileSeal, PassphraseSeal, type Seal } from './barrier/index.js';
import { MemoryStorage, SqliteStorage, type Storage } from './storage/index.js';
import { GuardedKeyStore, SoftwareKeyStore } from './keystore/index.js';
import { KeyRepository } from './keys/index.js';
import { IdentityStore } from './identity/index.js';
import { JsonlAuditLog } from './audit/index.js';
import { systemClock, type Clock, type Services } from './operations/index.js';
import { DELETION_JOB, JobRunner, ROTATION_JOB } from './jobs/index.js';
import { createHandler } from './api/aws-json/handler.js';
import { ensureLocalTls } from './api/tls.js';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly services: Services;
  readonly jobs: JobRunner;
  close(): Promise<void>;
}

const LEVELS = { error: 0, warn: 1, info: 2 } as const;

function makeLogger(level: ServerConfig['logLevel']): Services['log'] {
  return (lvl, msg, fields) => {
    if (LEVELS[lvl] > LEVELS[level]) return;
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + '\n');
  };
}

async function openSeal(config: ServerConfig): Promise<Seal> {
  if (config.seal.kind === 'passphrase') return new PassphraseSeal(config.seal.passphrase);
  return FileSeal.open(join(config.dataDir, 'seal.key'));
}

export async function startServer(config: ServerConfig, opts: { clock?: Clock; announce?: (line: string) => void } = {}): Promise<RunningServer> {
  const announce = opts.announce ?? ((line: string) => process.stdout.write(line + '\n'));
  const log = makeLogger(config.logLevel);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await chmod(config.dataDir, 0o700);

  const storage: Storage = config.storage === 'memory' ? new MemoryStorage() : SqliteStorage.open(join(config.dataDir, 'keyhold.db'));
  const barrier = await Barrier.unseal(storage, await openSeal(config));
  const keystore = new GuardedKeyStore(new SoftwareKeyStore(barrier, storage));
  const identity = new IdentityStore(storage, barrier);
  const audit = new JsonlAuditLog(join(config.dataDir, 'audit', 'events.jsonl'));
  const services: Services = {
    keys: new KeyRepository(storage),
    keystore,
    identity,
    audit,
    clock: opts.clock ?? systemClock,
    log,
  };

  const boot = await identity.bootstrapRoot(config.accountId, config.rootCredentials);
  if (boot.created) {
    const file = join(config.dataDir, 'root-credentials.json');
    await writeFile(file, JSON.stringify({ accountId: config.accountId, ...boot.credentials }, null, 2) + '\n', { mode: 0o600 });
    await chmod(file, 0o600);
    announce(`keyhold root credentials for account ${config.accountId} written to ${file}`);
  }

  const handler = createHandler({ services, maxBodyBytes: config.maxBodyBytes, health: () => ({ healthy: true, problems: [] }) });
  let server: Server;
  let scheme: 'http' | 'https';
  if (config.tls.mode === 'off') {
    log('warn', 'TLS is off (--no-tls): credentials and data cross the network in the clear; use this only for local testing');
    server = createHttpServer(handler);
    scheme = 'http';
  } else {
    const material =
      config.tls.mode === 'files'
        ? { cert: await readFile(config.tls.certFile, 'utf8'), key: await readFile(config.tls.keyFile, 'utf8') }
        : await ensureLocalTls(config.dataDir);
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

  const jobs = new JobRunner(services, [DELETION_JOB, ROTATION_JOB], config.jobIntervalMs);
  jobs.start();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await jobs.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await audit.close();
      await storage.close();
    })());

  announce(`keyhold listening on ${url}`);
  return { url, port, services, jobs, close };
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
  const running = await startServer(config);
  if (config.tls.mode === 'local-ca') process.stdout.write(`keyhold CA certificate: ${join(config.dataDir, 'tls', 'ca.pem')}\n`);
  const shutdown = (signal: string) => {
    process.stderr.write(`keyhold: ${signal}, shutting down\n`);
    running.close().then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`keyhold: shutdown failed: ${e}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
