import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './server.js';

/** Where Debian puts SoftHSM2's PKCS#11 module. */
export const SOFTHSM_MODULE = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so']
  .find((p) => existsSync(p));

function haveUtil(): boolean {
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why SoftHSM tests cannot run here, or undefined when they can. Under CI=true a missing SoftHSM2
 * is a failure (scripts/test.sh installs it), never a skip: callers throw this reason.
 */
export function softhsmMissing(): string | undefined {
  if (SOFTHSM_MODULE && haveUtil()) return undefined;
  return 'SoftHSM2 is not installed (apt-get install softhsm2 opensc; scripts/test.sh does it as root)';
}

/** For node:test's `skip` option: skip locally without SoftHSM, but never under CI. */
export function skipWithoutSoftHsm(): string | false {
  const why = softhsmMissing();
  if (!why) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${why}`);
  return why;
}

export interface SoftHsm {
  /** Directory holding softhsm2.conf and the token store; removed by cleanup(). */
  readonly dir: string;
  readonly conf: string;
  readonly module: string;
  /** SOFTHSM2_CONF for child processes. */
  readonly env: Record<string, string>;
  /** Creates a token; returns its label, user PIN and a file holding the PIN. */
  initToken(label: string, pin?: string): { label: string; pin: string; pinFile: string };
  cleanup(): void;
}

/** A private SoftHSM2 token store in a temp dir: nothing is written to the system's token dir. */
export function softHsm(): SoftHsm {
  const missing = softhsmMissing();
  if (missing) throw new Error(missing);
  const dir = tempDir('keyhold-softhsm-');
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { SOFTHSM2_CONF: conf };
  return {
    dir,
    conf,
    module: SOFTHSM_MODULE!,
    env,
    initToken(label, pin = '1234567') {
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', '87654321', '--pin', pin], {
        env: { ...process.env, ...env },
        stdio: 'ignore',
      });
      const pinFile = join(dir, `${label}.pin`);
      writeFileSync(pinFile, pin + '\n', { mode: 0o600 });
      return { label, pin, pinFile };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
