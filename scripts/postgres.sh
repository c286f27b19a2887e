#!/usr/bin/env bash
# Install (Debian package) and start a local PostgreSQL server for the store tests, idempotently,
# and print the URL the tests use. Needs root for apt-get; on a machine that has PostgreSQL running
# with a `fmstack` role already, it only prints the URL.
set -euo pipefail
URL="postgresql+psycopg://fmstack:fmstack@127.0.0.1:5432/fmstack"
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "installing PostgreSQL (Debian package)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | grep -q "^$version main .* online"; then
    pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 30); do
    runuser -u postgres -- pg_isready -q -h 127.0.0.1 && break
    sleep 1
done
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 >&2 <<'SQL'
SELECT 'CREATE ROLE fmstack LOGIN PASSWORD ''fmstack'' CREATEDB'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fmstack')\gexec
SELECT 'CREATE DATABASE fmstack OWNER fmstack'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'fmstack')\gexec
SQL
echo "$URL"
