import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** Everything `keyhold server` can be told, from flags first, then KEYHOLD_* environment variables. */
export interface ServerConfig {
  dataDir: string;
  host: string;
  port: number;
  tls: { mode: 'local-ca' } | { mode: 'files'; certFile: string; keyFile: string } | { mode: 'off' };
  storage: 'sqlite' | 'memory';
  seal: { kind: 'file' } | { kind: 'passphrase'; passphrase: string };
  accountId: string;
  rootCredentials?: { accessKeyId: string; secretAccessKey: string };
  maxBodyBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  jobIntervalMs: number;
  /** How often events written since the last signed audit digest get one. */
  auditDigestIntervalMs: number;
  logLevel: 'error' | 'warn' | 'info';
  /** Server processes sharing the port and the data dir (cluster.ts); 'auto' is one per CPU. */
  workers: number | 'auto';
}

export const USAGE = `Usage: keyhold server [options]

  --data-dir DIR              where keys, the database and TLS files live (default ./keyhold-data; created 0700)
  --host HOST                 address to listen on (default 127.0.0.1)
  --port PORT                 port (default 8443; 0 picks a free port)
  --tls-cert FILE --tls-key FILE
                              serve this certificate instead of the generated local CA's
  --no-tls                    serve plain HTTP (local testing only)
  --storage sqlite|memory     storage engine (default sqlite, in DATA_DIR/keyhold.db)
  --seal file|passphrase      how the root key is sealed (default file: DATA_DIR/seal.key)
  --seal-passphrase-file FILE passphrase for --seal passphrase (or KEYHOLD_SEAL_PASSPHRASE)
  --max-body-bytes N          largest request body accepted (default 262144)
  --job-interval-seconds N    how often due work (deletions) is looked for (default 60)
  --log-level error|warn|info (default info)
  --audit-digest-seconds N    how often new audit events are covered by a signed digest (default 10)
  --workers N|auto            server processes sharing the port and data dir (default 1; auto: one per CPU;
                              more than 1 needs --storage sqlite)

Environment: KEYHOLD_DATA_DIR, KEYHOLD_HOST, KEYHOLD_PORT, KEYHOLD_ACCOUNT_ID (default 111122223333),
KEYHOLD_ROOT_ACCESS_KEY_ID and KEYHOLD_ROOT_SECRET_ACCESS_KEY (root credentials to create on first start),
KEYHOLD_SEAL, KEYHOLD_SEAL_PASSPHRASE, KEYHOLD_JOB_INTERVAL_SECONDS, KEYHOLD_LOG_LEVEL, KEYHOLD_AUDIT_DIGEST_SECONDS, KEYHOLD_WORKERS.
`;

export class ConfigError extends Error {}

function int(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}`);
  return n;
}

export function parseServerConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'no-tls': { type: 'boolean' },
      storage: { type: 'string' },
      seal: { type: 'string' },
      'seal-passphrase-file': { type: 'string' },
      'max-body-bytes': { type: 'string' },
      'job-interval-seconds': { type: 'string' },
      'log-level': { type: 'string' },
      'audit-digest-seconds': { type: 'string' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) throw new ConfigError(USAGE);

  const dataDir = resolve(values['data-dir'] ?? env.KEYHOLD_DATA_DIR ?? './keyhold-data');
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  if (values['no-tls'] && certFile) throw new ConfigError('--no-tls and --tls-cert exclude each other');
  const tls: ServerConfig['tls'] = values['no-tls']
    ? { mode: 'off' }
    : certFile && keyFile
      ? { mode: 'files', certFile: resolve(certFile), keyFile: resolve(keyFile) }
      : { mode: 'local-ca' };

  const storage = values.storage ?? env.KEYHOLD_STORAGE ?? 'sqlite';
  if (storage !== 'sqlite' && storage !== 'memory') throw new ConfigError('--storage must be sqlite or memory');

  const sealKind = values.seal ?? env.KEYHOLD_SEAL ?? 'file';
  let seal: ServerConfig['seal'];
  if (sealKind === 'file') seal = { kind: 'file' };
  else if (sealKind === 'passphrase') {
    const file = values['seal-passphrase-file'];
    const passphrase = file ? readFileSync(file, 'utf8').replace(/\r?\n$/, '') : env.KEYHOLD_SEAL_PASSPHRASE;
    if (!passphrase) throw new ConfigError('--seal passphrase needs --seal-passphrase-file or KEYHOLD_SEAL_PASSPHRASE');
    seal = { kind: 'passphrase', passphrase };
  } else throw new ConfigError('--seal must be file or passphrase');

  const accountId = env.KEYHOLD_ACCOUNT_ID ?? '111122223333';
  if (!/^\d{12}$/.test(accountId)) throw new ConfigError('KEYHOLD_ACCOUNT_ID must be twelve digits');
  const akid = env.KEYHOLD_ROOT_ACCESS_KEY_ID || undefined;
  const secret = env.KEYHOLD_ROOT_SECRET_ACCESS_KEY || undefined;
  if ((akid === undefined) !== (secret === undefined)) {
    throw new ConfigError('KEYHOLD_ROOT_ACCESS_KEY_ID and KEYHOLD_ROOT_SECRET_ACCESS_KEY go together');
  }
  if (akid !== undefined && !/^[A-Z0-9]{16,128}$/.test(akid)) throw new ConfigError('KEYHOLD_ROOT_ACCESS_KEY_ID must be 16 to 128 upper-case letters and digits');
  if (secret !== undefined && secret.length < 16) throw new ConfigError('KEYHOLD_ROOT_SECRET_ACCESS_KEY must be at least 16 characters');

  const logLevel = values['log-level'] ?? env.KEYHOLD_LOG_LEVEL ?? 'info';
  if (!['error', 'warn', 'info'].includes(logLevel)) throw new ConfigError('--log-level must be error, warn or info');

  const workersRaw = values.workers ?? env.KEYHOLD_WORKERS ?? '1';
  const workers = workersRaw === 'auto' ? 'auto' : int(workersRaw, '--workers', 1, 64)!;
  if (storage === 'memory' && workers !== 1) throw new ConfigError('--workers above 1 needs --storage sqlite (workers share the database)');

  return {
    workers,
    dataDir,
    host: values.host ?? env.KEYHOLD_HOST ?? '127.0.0.1',
    port: int(values.port ?? env.KEYHOLD_PORT, '--port', 0, 65535) ?? 8443,
    tls,
    storage,
    seal,
    accountId,
    rootCredentials: akid && secret ? { accessKeyId: akid, secretAccessKey: secret } : undefined,
    maxBodyBytes: int(values['max-body-bytes'], '--max-body-bytes', 1024, 64 * 1024 * 1024) ?? 256 * 1024,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    jobIntervalMs: (int(values['job-interval-seconds'] ?? env.KEYHOLD_JOB_INTERVAL_SECONDS, '--job-interval-seconds', 1, 86400) ?? 60) * 1000,
    logLevel: logLevel as ServerConfig['logLevel'],
    auditDigestIntervalMs: (int(values['audit-digest-seconds'] ?? env.KEYHOLD_AUDIT_DIGEST_SECONDS, '--audit-digest-seconds', 1, 86400) ?? 10) * 1000,
  };
}
