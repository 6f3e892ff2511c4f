#!/usr/bin/env bash
# Runs the official Python client (azure-eventhub, pinned) against the emulator binary.
# Usage: emulator/scripts/test-python.sh [pytest args]
# Env: CARGO_TARGET_DIR (where to build), CI=true makes a missing Python a failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
set +e
python_bin="$("$here/../../scripts/setup-python.sh" | tail -n 1)"
status=$?
set -e
if [[ $status -eq 2 ]]; then exit 0; fi
if [[ $status -ne 0 ]]; then exit "$status"; fi
cd "$root"
cargo build --quiet -p eventhubs-emulator --bin eventhubs-emulator
target="${CARGO_TARGET_DIR:-$root/target}"
export EVENTHUBS_EMULATOR_BIN="$target/debug/eventhubs-emulator"
exec "$python_bin" -m pytest -q -p no:cacheprovider "$here/../tests/python" "$@"
