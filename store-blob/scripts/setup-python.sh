#!/usr/bin/env bash
# Creates (or reuses) the shared venv <repo>/.tools/venv and ADDS the blob store's interop
# packages, pinned, idempotently:
#   azure-eventhub-checkpointstoreblob==1.2.0   the official Python blob checkpoint store
#   azure-eventhub                              kept at the version already in the venv (the
#                                               emulator's script installs it too); 5.15.1,
#                                               the latest stable, if absent
# Never upgrades or removes what another script installed. Prints the venv's python path.
#
# Usage: store-blob/scripts/setup-python.sh
set -euo pipefail

CHECKPOINTSTOREBLOB_VERSION="${CHECKPOINTSTOREBLOB_VERSION:-1.2.0}"
DEFAULT_EVENTHUB_VERSION="5.15.1"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
venv="$repo_root/.tools/venv"
py="$venv/bin/python"

if [ ! -x "$py" ]; then
    base="${PYTHON:-python3}"
    if ! command -v "$base" >/dev/null 2>&1; then
        echo "setup-python: $base not found; install Python >= 3.8" >&2
        exit 1
    fi
    echo "setup-python: creating venv $venv" >&2
    mkdir -p "$(dirname "$venv")"
    "$base" -m venv "$venv"
fi

installed() { { "$py" -m pip show "$1" 2>/dev/null || true; } | sed -n "s/^Version: //p"; }

eventhub_version="$(installed azure-eventhub)"
if [ -z "$eventhub_version" ]; then
    eventhub_version="$DEFAULT_EVENTHUB_VERSION"
fi
if [ "$(installed azure-eventhub-checkpointstoreblob)" != "$CHECKPOINTSTOREBLOB_VERSION" ] \
    || [ "$(installed azure-eventhub)" != "$eventhub_version" ]; then
    echo "setup-python: installing azure-eventhub-checkpointstoreblob==$CHECKPOINTSTOREBLOB_VERSION" \
        "with azure-eventhub==$eventhub_version" >&2
    "$py" -m pip install --quiet --disable-pip-version-check \
        "azure-eventhub-checkpointstoreblob==$CHECKPOINTSTOREBLOB_VERSION" \
        "azure-eventhub==$eventhub_version" >&2
fi
"$py" -c "import azure.eventhub.extensions.checkpointstoreblob" || {
    echo "setup-python: azure-eventhub-checkpointstoreblob does not import in $venv" >&2
    exit 1
}
echo "$py"
