#!/usr/bin/env bash
# Installs the official JavaScript SDK packages of the interop test (cli/tests/js/package.json,
# every version pinned by its package-lock.json: @azure/event-hubs,
# @azure/eventhubs-checkpointstore-blob, @azure/storage-blob) into <repo>/.tools/js with
# `npm ci`. Idempotent: does nothing when the installed lockfile is the pinned one.
# Prints the node_modules path on its last line.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
source_dir="$repo_root/cli/tests/js"
prefix="$repo_root/.tools/js"

if ! command -v npm >/dev/null 2>&1; then
    echo "setup-js: npm not found; install Node.js >= 20 (e.g. apt-get install nodejs npm)" >&2
    exit 1
fi
mkdir -p "$prefix"
if ! cmp -s "$source_dir/package-lock.json" "$prefix/installed-lock.json" || [ ! -d "$prefix/node_modules/@azure/event-hubs" ]; then
    echo "setup-js: installing the pinned JavaScript SDK into $prefix" >&2
    cp "$source_dir/package.json" "$source_dir/package-lock.json" "$prefix/"
    (cd "$prefix" && npm ci --no-audit --no-fund --loglevel=error >&2)
    cp "$source_dir/package-lock.json" "$prefix/installed-lock.json"
fi
echo "$prefix/node_modules"
