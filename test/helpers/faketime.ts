import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { KMS } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { requireTool, type Credentials, type TestServer } from './server.js';

export const DAY_MS = 86_400_000;

/** libfaketime for a server wrapper; under CI=true a missing one fails the test (requireTool). */
export function libfaketime(): string | undefined {
  const dirs = ['/usr/local/lib/faketime', '/usr/lib/faketime'];
  try {
    for (const d of readdirSync('/usr/lib')) dirs.push(join('/usr/lib', d, 'faketime'));
  } catch {
    // no /usr/lib
  }
  let tool = false;
  try {
    execFileSync('faketime', ['-f', '+0d', 'true'], { stdio: 'ignore' });
    tool = true;
  } catch {
    tool = false;
  }
  const lib = dirs.map((d) => join(d, 'libfaketime.so.1')).find((f) => existsSync(f));
  return requireTool('faketime (libfaketime)', tool && lib !== undefined) ? lib : undefined;
}

/**
 * A server wrapper whose clock runs `days` ahead: `env LD_PRELOAD=libfaketime FAKETIME=+Nd` (not
 * `faketime` itself, which forks and would keep SIGTERM from reaching node).
 */
export function faketimeWrapper(lib: string, days: number): string[] {
  return ['env', `LD_PRELOAD=${lib}`, `FAKETIME=${days >= 0 ? '+' : ''}${days}d`];
}

/** A KMS client whose signing clock matches a server `days` ahead of ours. */
export function offsetClient(server: TestServer, credentials: Credentials, days: number): KMS {
  return new KMS({
    endpoint: server.url,
    region: 'us-east-1',
    credentials,
    maxAttempts: 1,
    systemClockOffset: days * DAY_MS,
    requestHandler: new NodeHttpHandler({ httpsAgent: new Agent({ ca: readFileSync(join(server.dataDir, 'tls', 'ca.pem')) }) }),
  });
}
