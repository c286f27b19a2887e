#!/usr/bin/env bash
# Create .venv at the repository root with fmstack and every extra its tests need installed.
# Idempotent. torch is installed first, pinned to the CPU build (2.13.0) that this kind of machine
# carries on disk, so that no dependency can pull a CUDA build of several GB.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "fmstack needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[dev,postgres,s3,ray]'
# The dashboard's browser tests drive Debian's chromium (tests/server/dashboard); Playwright's own
# browser download is not used.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        echo "no /usr/bin/chromium: the dashboard's browser tests will skip; as root run: apt-get install -y chromium" >&2
    fi
fi
.venv/bin/python - <<'PY'
import torch
assert not torch.version.cuda, f"a CUDA build of torch was installed ({torch.__version__}); expected the CPU build"
print(f"fmstack set up in .venv (torch {torch.__version__})")
PY
