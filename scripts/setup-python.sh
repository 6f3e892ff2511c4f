#!/usr/bin/env bash
# Creates (idempotently) the Python venv of the interop tests (emulator and blob store), at
# <repo>/.tools/venv (or $EVENTHUBS_VENV), and installs the pinned packages from
# scripts/python-requirements.txt from PyPI.
# Prints the venv's python path on its last line. With CI=true any failure is fatal (exit 1);
# otherwise a failure prints one loud line and exits 2 so callers can skip.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${EVENTHUBS_VENV:-$root/.tools/venv}"
req="$here/python-requirements.txt"

fail() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "setup-python: FAILED: $1" >&2
        exit 1
    fi
    echo "setup-python: SKIPPING Python interop tests: $1 (install python3 with venv support and re-run scripts/setup-python.sh)" >&2
    exit 2
}

command -v python3 >/dev/null 2>&1 || fail "python3 not found"
if [[ ! -x "$venv/bin/python" ]]; then
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2 || fail "python3 -m venv $venv failed"
fi
# Skip pip when every pinned requirement is already installed at its pinned version.
if ! "$venv/bin/python" - "$req" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, pinned = line.split("==")
    if version(name) != pinned:
        sys.exit(1)
PY
then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2 \
        || fail "pip install -r $req failed"
fi
echo "$venv/bin/python"
