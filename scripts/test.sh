#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine (as root) or a developer's checkout.
# Installs what the tests need when it is missing, builds, checks the module rules, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing system packages: $* (run as root, or install them)" >&2
    return 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need=()
command -v aws >/dev/null 2>&1 || need+=(awscli)
command -v python3 >/dev/null 2>&1 && python3 -c 'import boto3' >/dev/null 2>&1 || need+=(python3-boto3)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
# SoftHSM2 for the PKCS#11 key store and HSM seal tests; opensc for pkcs11-tool.
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
# PostgreSQL (server + client tools) for the keyhold backup pg-dump/pg-restore tests (a throwaway cluster).
# script(1) from bsdutils runs the CLI under a pseudo-terminal (the backup progress bar test).
command -v script >/dev/null 2>&1 || need+=(bsdutils)
{ command -v pg_dump >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  apt_install "${need[@]}"
fi

[ -d node_modules ] || npm ci
npm run --silent build
npm run --silent check:deps

# Every *.test.js under dist/ (unit tests beside their code, black-box suites under test/).
node --test --test-reporter=spec --test-concurrency=2 --test-timeout=300000 dist/
