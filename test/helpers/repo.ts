/**
 * Test support shared by the unit tests beside their code under src/ and the suites under test/:
 * where the checkout is, and how frozen and Wycheproof vectors are read. Only tests and bench/ import
 * test/helpers; product code under src/ may not (the `no-test-support-in-product` rule in
 * .dependency-cruiser.cjs). This file imports nothing heavy (no AWS SDK), so unit tests stay fast.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The repository root: the nearest directory up from this file (test/helpers, or dist/test/helpers
 * once compiled) whose package.json is Keyhold's. If the compiled file lives outside the checkout,
 * the working directory is searched the same way.
 */
function findRepoRoot(): URL {
  for (const start of [new URL('./', import.meta.url), pathToFileURL(`${process.cwd()}/`)]) {
    for (let dir = start; ; ) {
      const pkg = new URL('package.json', dir);
      if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'keyhold') return dir;
      const up = new URL('../', dir);
      if (up.href === dir.href) break;
      dir = up;
    }
  }
  throw new Error('cannot find the repository root (a package.json named "keyhold")');
}

/** The checkout's root as a file: URL (ends in '/'). */
export const REPO_ROOT_URL: URL = findRepoRoot();
/** The checkout's root as a path (no trailing separator). */
export const REPO_ROOT: string = fileURLToPath(REPO_ROOT_URL).replace(/\/$/, '');

/** Parses a JSON file named relative to the repository root, e.g. `test/vectors/import-token-v1.json`. */
export function readRepoJson<T>(relative: string): T {
  return JSON.parse(readFileSync(new URL(relative, REPO_ROOT_URL), 'utf8')) as T;
}

/** Wycheproof vectors live next to the repository: `../shared/vectors/wycheproof`. */
export const WYCHEPROOF_DIR = new URL('../shared/vectors/wycheproof/', REPO_ROOT_URL);

/** The fields every Wycheproof test case has; each file adds its own (key, iv, msg, ct, ...). */
export interface WycheproofVector {
  tcId: number;
  comment: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
}

/**
 * The test groups of one Wycheproof file. The vectors are required: a missing file throws, in CI and
 * locally, so a suite that depends on them fails rather than passes on nothing.
 */
export function loadWycheproof<G extends { tests: WycheproofVector[] }>(file: string): G[] {
  const url = new URL(file, WYCHEPROOF_DIR);
  if (!existsSync(url)) {
    const where = process.env.CI === 'true' ? 'in CI' : 'locally';
    throw new Error(`Wycheproof vectors are required (${where}) but ${url.pathname} is missing`);
  }
  return (JSON.parse(readFileSync(url, 'utf8')) as { testGroups: G[] }).testGroups;
}
