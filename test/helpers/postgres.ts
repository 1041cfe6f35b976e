import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './server.js';

/** The PostgreSQL server binaries (Debian keeps them under /usr/lib/postgresql/<major>/bin). */
export function postgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base).filter((d) => existsSync(join(base, d, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(base, majors[0], 'bin') : undefined;
}

export interface ThrowawayPostgres {
  url(db: string): string;
  psql(db: string, sql: string): string;
  stop(): void;
}

/**
 * A throwaway PostgreSQL cluster in a temp dir on a free port, run as the `postgres` user when we
 * are root (initdb refuses root), trust auth on 127.0.0.1 only.
 */
export function startPostgres(): ThrowawayPostgres {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  const base = tempDir('keyhold-pg-');
  chmodSync(base, 0o755);
  const data = join(base, 'data');
  const run = join(base, 'run');
  mkdirSync(data, { mode: 0o700 });
  mkdirSync(run);
  const root = process.getuid?.() === 0;
  const as = (cmd: string, args: string[]) => (root ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : execFileSync(cmd, args, { encoding: 'utf8' }));
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(data, uid, gid);
    chownSync(run, uid, gid);
  }
  const port = 20000 + Math.floor(Math.random() * 20000);
  as(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8']);
  as(join(bin, 'pg_ctl'), ['-D', data, '-l', join(run, 'pg.log'), '-w', '-t', '30', '-o', `-p ${port} -k ${run} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  const url = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  return {
    url,
    psql: (db, sql) => execFileSync('psql', ['-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1', '-d', url(db), '-c', sql], { encoding: 'utf8' }),
    stop() {
      try {
        as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  };
}
