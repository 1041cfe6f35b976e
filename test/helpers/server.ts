import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KMS } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { REPO_ROOT } from './repo.js';

export { REPO_ROOT };

export const KEYHOLD_BIN = join(REPO_ROOT, 'bin', 'keyhold.js');

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly caFile: string | undefined;
  readonly accountId: string;
  readonly credentials: Credentials;
  readonly proc: ChildProcess;
  stdout: string;
  stderr: string;
  /** An AWS SDK KMS client pointed at this server. */
  kms(opts?: { region?: string; credentials?: Credentials; maxAttempts?: number }): KMS;
  /** Stops the server (SIGTERM by default) and waits for it to exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Removes the data dir (unless it was given by the caller). */
  cleanup(): void;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
  accountId?: string;
  credentials?: Credentials;
  /** prefix the command, e.g. ['faketime', '-f', '+400d'] */
  wrapper?: string[];
  /** Another build's bin/keyhold.js (the benchmark's --baseline); default this checkout's. */
  bin?: string;
  /** How long to wait for the listening line (default 60 s; a server under valgrind needs more). */
  startTimeoutMs?: number;
}

export function newCredentials(): Credentials {
  return { accessKeyId: 'AKIA' + randomBytes(8).toString('hex').toUpperCase(), secretAccessKey: randomBytes(30).toString('base64') };
}

export function tempDir(prefix = 'keyhold-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const START_TIMEOUT_MS = 60_000;

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? join(tempDir(), 'data');
  const credentials = opts.credentials ?? newCredentials();
  const accountId = opts.accountId ?? '111122223333';
  const cmd = [...(opts.wrapper ?? []), process.execPath, opts.bin ?? KEYHOLD_BIN, 'server', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...(opts.args ?? [])];
  const proc = spawn(cmd[0]!, cmd.slice(1), {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      KEYHOLD_ACCOUNT_ID: accountId,
      KEYHOLD_ROOT_ACCESS_KEY_ID: credentials.accessKeyId,
      KEYHOLD_ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server: Partial<TestServer> & { stdout: string; stderr: string } = { stdout: '', stderr: '' };
  proc.stderr!.on('data', (d: Buffer) => {
    server.stderr += d.toString();
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    // Generous: a cluster of workers on a loaded 2-core machine can take a while. A server that does
    // not come up is stopped (SIGTERM, then SIGKILL) so that it cannot keep the test file alive.
    const timer = setTimeout(() => {
      reject(new Error(`server did not start in ${(opts.startTimeoutMs ?? START_TIMEOUT_MS) / 1000} s:\n${server.stdout}\n${server.stderr}`));
      proc.kill('SIGTERM');
      setTimeout(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); }, 5_000).unref();
    }, opts.startTimeoutMs ?? START_TIMEOUT_MS);
    proc.stdout!.on('data', (d: Buffer) => {
      server.stdout += d.toString();
      const m = /keyhold listening on (\S+)/.exec(server.stdout);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${server.stdout}\n${server.stderr}`));
    });
  });
  const caFile = url.startsWith('https:') && existsSync(join(dataDir, 'tls', 'ca.pem')) ? join(dataDir, 'tls', 'ca.pem') : undefined;
  const ca = caFile ? readFileSync(caFile) : undefined;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return Object.assign(server, {
    url,
    port: Number(new URL(url).port),
    dataDir,
    caFile,
    accountId,
    credentials,
    proc,
    kms(o: { region?: string; credentials?: Credentials; maxAttempts?: number } = {}) {
      return new KMS({
        endpoint: url,
        region: o.region ?? 'us-east-1',
        credentials: o.credentials ?? credentials,
        maxAttempts: o.maxAttempts ?? 1,
        requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca, keepAlive: true }) }),
      });
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    cleanup() {
      if (ownDir) rmSync(resolve(dataDir, '..'), { recursive: true, force: true });
    },
  }) as TestServer;
}

/** cliEnv extras that keep the developer's own AWS config, profiles and session token out of a client command. */
export const NO_AWS_PROFILE = { AWS_SESSION_TOKEN: undefined, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };

/**
 * The environment a `keyhold` client command needs to reach `server` as `credentials` (default: its root), plus `extra`.
 * An `undefined` in `extra` unsets that variable in runCli's child; a session token in `credentials` always wins.
 */
export function cliEnv(server: TestServer, credentials?: Credentials, extra?: Record<string, string>): Record<string, string>;
export function cliEnv(server: TestServer, credentials: Credentials | undefined, extra: Record<string, string | undefined>): Record<string, string | undefined>;
export function cliEnv(server: TestServer, credentials: Credentials = server.credentials, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    AWS_ENDPOINT_URL: server.url, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_REGION: 'us-east-1', ...(server.caFile ? { AWS_CA_BUNDLE: server.caFile } : {}), ...extra,
    ...(credentials.sessionToken ? { AWS_SESSION_TOKEN: credentials.sessionToken } : {}),
  };
}

/** Runs the keyhold CLI and collects its output. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, input?: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const p = spawn(process.execPath, [KEYHOLD_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolveRun({ code, stdout, stderr }));
    if (input) p.stdin.end(input);
    else p.stdin.end();
  });
}

/** Tools a test needs: under CI=true a missing one fails the test instead of skipping it. */
export function requireTool(name: string, found: boolean): boolean {
  if (found) return true;
  if (process.env.CI === 'true') throw new Error(`${name} is required in CI but is not installed`);
  return false;
}

/** A KMS client for a server started in-process (src/main.ts), trusting its generated CA. */
export function inProcessClient(url: string, dataDir: string, credentials: Credentials): KMS {
  return new KMS({
    endpoint: url,
    region: 'us-east-1',
    credentials,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(join(dataDir, 'tls', 'ca.pem')) }) }),
  });
}
