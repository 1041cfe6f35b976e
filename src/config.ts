import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCidr } from './audit/webhook-guard.js';

/** Everything `keyhold server` can be told, from flags first, then KEYHOLD_* environment variables. */
export interface ServerConfig {
  dataDir: string;
  host: string;
  port: number;
  tls: { mode: 'local-ca' } | { mode: 'files'; certFile: string; keyFile: string } | { mode: 'off' };
  storage: 'sqlite' | 'memory';
  seal: { kind: 'file' } | { kind: 'passphrase'; passphrase: string } | { kind: 'hsm'; hsm: string };
  /** HSMs declared with --hsm, by name (the CloudHsmClusterId custom key stores refer to). */
  hsms: HsmDeclaration[];
  accountId: string;
  rootCredentials?: { accessKeyId: string; secretAccessKey: string };
  maxBodyBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  jobIntervalMs: number;
  /** How often per-version use counts are written to storage (ListKeyVersions). */
  usageFlushMs: number;
  /** How often events written since the last signed audit digest get one. */
  auditDigestIntervalMs: number;
  /** Audit events older than this many days are removed under a signed retention digest; undefined keeps everything. */
  auditRetentionDays?: number;
  /** Where alerts are POSTed (signed with HMAC-SHA256), from a persistent outbox. */
  alertWebhooks: string[];
  /** Networks account webhooks (PutAlertWebhook) may deliver to although loopback, link-local, unspecified or multicast; canonical CIDRs. */
  accountWebhookAllow: string[];
  logLevel: 'error' | 'warn' | 'info';
  /** Server processes sharing the port and the data dir (cluster.ts); 'auto' is one per CPU. */
  workers: number | 'auto';
  /**
   * 'durable' (always, except in the benchmark): every call is committed to the hash-chained log
   * before it is answered. 'none' records nothing; UNSAFE, command line only (bench/run.ts uses it
   * to measure what the audit log costs).
   */
  auditLog: 'durable' | 'none';
}

export interface HsmDeclaration {
  name: string;
  modulePath: string;
  tokenLabel: string;
  /** The token's user PIN, read from pin-file at start; never logged. */
  pin: string;
}

/** AWS's CloudHsmClusterId shape (botocore): custom key stores name an HSM by it. */
export const HSM_NAME_PATTERN = /^cluster-[2-7a-zA-Z]{11,16}$/;

/** `NAME=<module path>,token-label=<label>,pin-file=<file>` (module may also be given as module=PATH). */
export function parseHsmDeclaration(text: string): HsmDeclaration {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--hsm ${text}: expected NAME=<pkcs11 module>,token-label=<label>,pin-file=<file>`);
  const name = text.slice(0, eq);
  if (!HSM_NAME_PATTERN.test(name)) {
    throw new ConfigError(`--hsm ${name}: the name is the CloudHsmClusterId that custom key stores use, so it must look like one: cluster- and 11 to 16 letters or digits 2-7 (e.g. cluster-softhsmprimary)`);
  }
  let modulePath: string | undefined;
  let tokenLabel: string | undefined;
  let pinFile: string | undefined;
  for (const part of text.slice(eq + 1).split(',')) {
    const i = part.indexOf('=');
    const [k, v] = i < 0 ? ['module', part] : [part.slice(0, i), part.slice(i + 1)];
    if (!v) throw new ConfigError(`--hsm ${name}: empty value for ${k}`);
    if (k === 'module') modulePath = resolve(v);
    else if (k === 'token-label') tokenLabel = v;
    else if (k === 'pin-file') pinFile = resolve(v);
    else throw new ConfigError(`--hsm ${name}: unknown setting ${k} (expected module, token-label, pin-file)`);
  }
  if (!modulePath || !tokenLabel || !pinFile) throw new ConfigError(`--hsm ${name}: the module path, token-label and pin-file are all required`);
  let pin: string;
  try {
    pin = readFileSync(pinFile, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new ConfigError(`--hsm ${name}: cannot read pin-file ${pinFile}: ${(e as Error).message}`);
  }
  if (pin.length < 4 || pin.length > 255) throw new ConfigError(`--hsm ${name}: the PIN in ${pinFile} must be 4 to 255 characters`);
  return { name, modulePath, tokenLabel, pin };
}

/**
 * One server flag: the single source for parsing (parseFlags), `keyhold server --help` (USAGE) and the
 * README's Configuration table (test/conformance/readme-config.test.ts fails when they drift apart).
 */
export interface ServerFlag {
  /** Long name without the leading --. */
  readonly name: string;
  /** The value placeholder (FILE, N, or the allowed values joined by |); absent for a switch. */
  readonly value?: string;
  /** The KEYHOLD_* environment variable read when the flag is absent. */
  readonly env?: string;
  /** The default as shown to people; absent when there is none. */
  readonly default?: string;
  /** May be given more than once. */
  readonly multiple?: boolean;
  readonly description: string;
}

export const SERVER_FLAGS = [
  { name: 'config', value: 'FILE', env: 'KEYHOLD_CONFIG',
    description: 'JSON object of these flags (long names, without --); command-line flags win' },
  { name: 'data-dir', value: 'DIR', env: 'KEYHOLD_DATA_DIR', default: './keyhold-data',
    description: 'where keys, the database, the audit log and TLS files live (created 0700)' },
  { name: 'host', value: 'HOST', env: 'KEYHOLD_HOST', default: '127.0.0.1', description: 'address to listen on' },
  { name: 'port', value: 'PORT', env: 'KEYHOLD_PORT', default: '8443', description: 'port (0 picks a free port)' },
  { name: 'tls-cert', value: 'FILE', description: 'serve this certificate (PEM) instead of the generated local CA\'s; needs --tls-key' },
  { name: 'tls-key', value: 'FILE', description: 'the private key (PEM) for --tls-cert' },
  { name: 'no-tls', description: 'serve plain HTTP (local testing only; warns)' },
  { name: 'storage', value: 'sqlite|memory', env: 'KEYHOLD_STORAGE', default: 'sqlite',
    description: 'storage engine (sqlite keeps DATA_DIR/keyhold.db, WAL)' },
  { name: 'seal', value: 'file|passphrase|hsm:NAME', env: 'KEYHOLD_SEAL', default: 'file',
    description: 'how the root key is sealed (file: DATA_DIR/seal.key; hsm:NAME wraps it under a non-extractable key in the HSM declared as NAME)' },
  { name: 'seal-passphrase-file', value: 'FILE', env: 'KEYHOLD_SEAL_PASSPHRASE',
    description: 'passphrase for --seal passphrase (scrypt); the environment variable holds the passphrase itself' },
  { name: 'hsm', value: 'NAME=MODULE,token-label=LABEL,pin-file=FILE', env: 'KEYHOLD_HSM', multiple: true,
    description: 'declares a PKCS#11 HSM (repeatable; in the environment separated by ;): NAME is the CloudHsmClusterId custom key stores refer to (cluster- and 11 to 16 letters), MODULE the PKCS#11 library, the token is found by LABEL and logged in with the user PIN in FILE' },
  { name: 'max-body-bytes', value: 'N', default: '262144', description: 'largest request body accepted (larger ones get HTTP 413)' },
  { name: 'job-interval-seconds', value: 'N', env: 'KEYHOLD_JOB_INTERVAL_SECONDS', default: '60',
    description: 'how often due work (deletions) is looked for' },
  { name: 'usage-flush-seconds', value: 'N', env: 'KEYHOLD_USAGE_FLUSH_SECONDS', default: '5',
    description: 'how often per-version use counts (ListKeyVersions) are written to storage; also at clean shutdown' },
  { name: 'log-level', value: 'error|warn|info', env: 'KEYHOLD_LOG_LEVEL', default: 'info',
    description: 'least severe server log line written (JSON lines on stderr)' },
  { name: 'audit-digest-seconds', value: 'N', env: 'KEYHOLD_AUDIT_DIGEST_SECONDS', default: '10',
    description: 'how often audit events written since the last digest are covered by a signed digest' },
  { name: 'audit-retention-days', value: 'N', env: 'KEYHOLD_AUDIT_RETENTION_DAYS', default: 'keep everything',
    description: 'remove audit events older than N days (1 to 36500), at start and hourly, together with a signed digest that keeps the rest verifiable' },
  { name: 'alert-webhook', value: 'URL', env: 'KEYHOLD_ALERT_WEBHOOKS', multiple: true,
    description: 'POST every alert there as JSON, signed (X-Keyhold-Signature: sha256=HMAC-SHA256 of "<X-Keyhold-Timestamp>.<body>" under DATA_DIR/alert-webhook-secret or KEYHOLD_ALERT_WEBHOOK_SECRET); repeatable (comma-separated in the environment); retried with backoff across restarts' },
  { name: 'account-webhook-allow', value: 'CIDR', env: 'KEYHOLD_ACCOUNT_WEBHOOK_ALLOW', multiple: true,
    description: 'lets account webhooks (keyhold alerts webhooks add) deliver into this network although it is loopback, link-local, unspecified or multicast, which they may not reach otherwise (SSRF); repeatable (comma-separated in the environment); the --alert-webhook URLs are not checked' },
  { name: 'workers', value: 'N|auto', env: 'KEYHOLD_WORKERS', default: '1',
    description: 'server processes sharing the port and the data dir (auto: one per CPU); more than 1 needs --storage sqlite' },
  { name: 'audit-log', value: 'durable|none', default: 'durable',
    description: 'none records NO audit event (no access log, no tamper evidence, no alerts): UNSAFE, for measuring the audit log\'s cost in benchmarks only; accepted on the command line only (not from --config or the environment)' },
] as const satisfies readonly ServerFlag[];

/** Settings read only from the environment (no flag). */
export const SERVER_ENVIRONMENT_ONLY: readonly { env: string; default?: string; description: string }[] = [
  { env: 'KEYHOLD_ACCOUNT_ID', default: '111122223333', description: 'the default account (twelve digits)' },
  { env: 'KEYHOLD_ROOT_ACCESS_KEY_ID', default: 'generated', description: 'root access key id to create on first start (with KEYHOLD_ROOT_SECRET_ACCESS_KEY)' },
  { env: 'KEYHOLD_ROOT_SECRET_ACCESS_KEY', default: 'generated', description: 'its secret (at least 16 characters)' },
  { env: 'KEYHOLD_ALERT_WEBHOOK_SECRET', default: 'DATA_DIR/alert-webhook-secret', description: 'the HMAC key alert webhooks are signed with' },
];

const HELP_COLUMN = 30;
const HELP_WIDTH = 112;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** The `--help` text, built from SERVER_FLAGS. */
function usage(): string {
  const out = ['Usage: keyhold server [options]', ''];
  for (const f of SERVER_FLAGS as readonly ServerFlag[]) {
    const head = `  --${f.name}${f.value ? ` ${f.value}` : ''}`;
    const extra = [f.default !== undefined ? `default ${f.default}` : '', f.env ? `env ${f.env}` : ''].filter(Boolean).join('; ');
    const body = wrap(`${f.description}${extra ? ` (${extra})` : ''}`, HELP_WIDTH - HELP_COLUMN);
    const pad = ' '.repeat(HELP_COLUMN);
    if (head.length < HELP_COLUMN - 1) out.push(head.padEnd(HELP_COLUMN) + body[0], ...body.slice(1).map((l) => pad + l));
    else out.push(head, ...body.map((l) => pad + l));
  }
  out.push('', 'Environment only:');
  for (const e of SERVER_ENVIRONMENT_ONLY) {
    const body = wrap(`${e.description}${e.default ? ` (default ${e.default})` : ''}`, HELP_WIDTH - HELP_COLUMN);
    const head = `  ${e.env}`;
    if (head.length < HELP_COLUMN - 1) out.push(head.padEnd(HELP_COLUMN) + body[0], ...body.slice(1).map((l) => ' '.repeat(HELP_COLUMN) + l));
    else out.push(head, ...body.map((l) => ' '.repeat(HELP_COLUMN) + l));
  }
  return out.join('\n') + '\n';
}

export const USAGE = usage();

export class ConfigError extends Error {}

function int(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}`);
  return n;
}

/**
 * `--config FILE`: a JSON object whose keys are the long flag names (without --) and whose values are
 * what the flag takes: a string or number, true for a switch, an array for a repeatable flag. An
 * `hsm` entry may also be an object { name, module, tokenLabel, pinFile }. Flags given on the command
 * line win over the file (a repeatable flag given there replaces the file's list).
 */
function configFileArgs(file: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`--config ${file}: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(`--config ${file}: expected a JSON object of flag names and values`);
  const args: string[] = [];
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'config' || k === 'help') throw new ConfigError(`--config ${file}: "${k}" cannot be set in the config file`);
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item === true) args.push(`--${k}`);
      else if (typeof item === 'string' || typeof item === 'number') args.push(`--${k}`, String(item));
      else if (k === 'hsm' && typeof item === 'object' && item !== null) {
        const h = item as Record<string, unknown>;
        if (typeof h.name !== 'string' || typeof h.module !== 'string' || typeof h.tokenLabel !== 'string' || typeof h.pinFile !== 'string') {
          throw new ConfigError(`--config ${file}: an hsm object needs string name, module, tokenLabel and pinFile`);
        }
        args.push('--hsm', `${h.name}=module=${h.module},token-label=${h.tokenLabel},pin-file=${h.pinFile}`);
      } else throw new ConfigError(`--config ${file}: unsupported value for "${k}"`);
    }
  }
  return args;
}

export function parseServerConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const cli = parseFlags(argv);
  const configFile = cli.config ?? env.KEYHOLD_CONFIG;
  const fromFile = configFile ? parseFlags(configFileArgs(resolve(configFile))) : {};
  // Switching the audit log off must be a deliberate act on the command line, never inherited from a file.
  if (fromFile['audit-log'] !== undefined) throw new ConfigError(`--config ${configFile}: "audit-log" can only be given on the command line`);
  const values: ReturnType<typeof parseFlags> = { ...fromFile };
  for (const [k, v] of Object.entries(cli)) if (v !== undefined) (values as Record<string, unknown>)[k] = v;
  return fromValues(values, env);
}

type Flag = (typeof SERVER_FLAGS)[number];
type FlagParseOptions = {
  [F in Flag as F['name']]: F extends { value: string }
    ? F extends { multiple: true }
      ? { type: 'string'; multiple: true }
      : { type: 'string' }
    : { type: 'boolean' };
};

/** parseArgs options derived from SERVER_FLAGS (plus --help). */
const FLAG_PARSE_OPTIONS = Object.fromEntries(
  (SERVER_FLAGS as readonly ServerFlag[]).map((f) => [f.name, f.value ? (f.multiple ? { type: 'string', multiple: true } : { type: 'string' }) : { type: 'boolean' }]),
) as FlagParseOptions;

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    options: { ...FLAG_PARSE_OPTIONS, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  }).values;
}

function fromValues(values: ReturnType<typeof parseFlags>, env: NodeJS.ProcessEnv): ServerConfig {
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
  } else if (sealKind.startsWith('hsm:')) {
    seal = { kind: 'hsm', hsm: sealKind.slice(4) };
  } else throw new ConfigError('--seal must be file, passphrase or hsm:NAME');

  const hsmTexts = values.hsm ?? (env.KEYHOLD_HSM ? env.KEYHOLD_HSM.split(';').filter(Boolean) : []);
  const hsms = hsmTexts.map(parseHsmDeclaration);
  const seen = new Set<string>();
  for (const h of hsms) {
    if (seen.has(h.name)) throw new ConfigError(`--hsm ${h.name} is declared twice`);
    seen.add(h.name);
  }
  if (seal.kind === 'hsm' && !seen.has(seal.hsm)) throw new ConfigError(`--seal hsm:${seal.hsm} names no HSM declared with --hsm`);

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

  const auditLog = values['audit-log'] ?? 'durable';
  if (auditLog !== 'durable' && auditLog !== 'none') throw new ConfigError('--audit-log must be durable or none');

  return {
    workers,
    auditLog,
    dataDir,
    host: values.host ?? env.KEYHOLD_HOST ?? '127.0.0.1',
    port: int(values.port ?? env.KEYHOLD_PORT, '--port', 0, 65535) ?? 8443,
    tls,
    storage,
    seal,
    hsms,
    accountId,
    rootCredentials: akid && secret ? { accessKeyId: akid, secretAccessKey: secret } : undefined,
    maxBodyBytes: int(values['max-body-bytes'], '--max-body-bytes', 1024, 64 * 1024 * 1024) ?? 256 * 1024,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    usageFlushMs: (int(values['usage-flush-seconds'] ?? env.KEYHOLD_USAGE_FLUSH_SECONDS, '--usage-flush-seconds', 1, 3600) ?? 5) * 1000,
    jobIntervalMs: (int(values['job-interval-seconds'] ?? env.KEYHOLD_JOB_INTERVAL_SECONDS, '--job-interval-seconds', 1, 86400) ?? 60) * 1000,
    logLevel: logLevel as ServerConfig['logLevel'],
    alertWebhooks: (values['alert-webhook'] ?? (env.KEYHOLD_ALERT_WEBHOOKS ? env.KEYHOLD_ALERT_WEBHOOKS.split(',') : [])).map((u) => {
      let url: URL;
      try {
        url = new URL(u);
      } catch {
        throw new ConfigError(`--alert-webhook ${u} is not a URL`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`--alert-webhook ${u} must be an http(s) URL`);
      return url.toString();
    }),
    accountWebhookAllow: (values['account-webhook-allow'] ?? (env.KEYHOLD_ACCOUNT_WEBHOOK_ALLOW ? env.KEYHOLD_ACCOUNT_WEBHOOK_ALLOW.split(',') : [])).map((c) => {
      const cidr = parseCidr(c);
      if (!cidr) throw new ConfigError(`--account-webhook-allow ${c} is not an IPv4 or IPv6 CIDR block`);
      return cidr;
    }),
    auditDigestIntervalMs: (int(values['audit-digest-seconds'] ?? env.KEYHOLD_AUDIT_DIGEST_SECONDS, '--audit-digest-seconds', 1, 86400) ?? 10) * 1000,
    auditRetentionDays: int(values['audit-retention-days'] ?? env.KEYHOLD_AUDIT_RETENTION_DAYS, '--audit-retention-days', 1, 36500),
  };
}
