/**
 * The module table of ARCHITECTURE.md, enforced. Each module may import only what its row lists
 * (node builtins and npm packages are not restricted here, except where noted).
 */
const M = (name) => `^src/${name}/`;
const allowed = {
  errors: [],
  types: [],
  crypto: ['errors', 'types'],
  format: ['errors', 'types'],
  storage: ['errors', 'types'],
  barrier: ['crypto', 'storage', 'errors', 'types'],
  keystore: ['crypto', 'format', 'barrier', 'errors', 'types'],
  keys: ['storage', 'keystore', 'errors', 'types'],
  identity: ['storage', 'keystore', 'errors', 'types'],
  policy: ['errors', 'types'],
  audit: ['crypto', 'storage', 'errors', 'types'],
  operations: ['keys', 'identity', 'keystore', 'policy', 'audit', 'format', 'crypto', 'errors', 'types'],
  jobs: ['operations', 'errors', 'types'],
  api: ['operations', 'errors', 'types'],
  cli: ['format', 'crypto', 'errors', 'types'],
};
const all = Object.keys(allowed);

const forbidden = all.map((from) => {
  const ok = new Set([from, ...allowed[from]]);
  const notAllowed = all.filter((m) => !ok.has(m));
  return {
    name: `${from}-imports`,
    comment: `${from}/ may import only: ${allowed[from].join(', ') || 'nothing of ours'} (ARCHITECTURE.md)`,
    severity: 'error',
    from: { path: M(from), pathNot: '\\.test\\.ts$' },
    to: { path: [...notAllowed.map(M), '^src/main\\.ts$', '^src/config\\.ts$'] },
  };
});

forbidden.push(
  {
    name: 'policy-no-io',
    comment: 'policy/ is a pure function: no I/O modules',
    severity: 'error',
    from: { path: M('policy') },
    to: { path: '^(fs|node:fs|net|node:net|http|node:http|https|node:https|child_process|node:child_process)$|better-sqlite3|^pg$' },
  },
  {
    name: 'optional-backends-only-from-main',
    comment: 'optional backends (pkcs11, postgres) are loaded only by main.ts',
    severity: 'error',
    from: { pathNot: '^src/main\\.ts$|^src/(keystore/pkcs11|storage/postgres)/' },
    to: { path: '^src/(keystore/pkcs11|storage/postgres)/' },
  },
  {
    name: 'api-no-crypto-or-storage-packages',
    comment: 'api never touches storage engines',
    severity: 'error',
    from: { path: M('api') },
    to: { path: 'better-sqlite3|node_modules/pg/' },
  },
  {
    name: 'no-test-support-in-product',
    comment: 'test support (test/) is imported only by tests (*.test.ts) and bench/, never by product code under src/',
    severity: 'error',
    from: { path: '^src/', pathNot: '\\.test\\.ts$' },
    to: { path: '^test/' },
  },
  {
    name: 'no-circular',
    severity: 'error',
    from: {},
    to: { circular: true },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
