#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator, npm package `azurite`), PINNED, into
# <repo>/.tools/azurite. Idempotent: does nothing when the pinned version is already there.
# No global install. Prints the path of the `azurite-blob` binary on success.
#
# Usage: store-blob/scripts/setup-azurite.sh
# Env:   AZURITE_VERSION (default 3.35.0, the version the store's documented Azurite quirks were seen with)
set -euo pipefail

AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
prefix="$repo_root/.tools/azurite"
bin="$prefix/node_modules/.bin/azurite-blob"
installed_pkg="$prefix/node_modules/azurite/package.json"

installed_version() {
    [ -f "$installed_pkg" ] && node -p "require('$installed_pkg').version" 2>/dev/null || true
}

if ! command -v npm >/dev/null 2>&1; then
    echo "setup-azurite: npm not found; install Node.js >= 18 (e.g. apt-get install nodejs npm)" >&2
    exit 1
fi

if [ "$(installed_version)" != "$AZURITE_VERSION" ] || [ ! -x "$bin" ]; then
    echo "setup-azurite: installing azurite@$AZURITE_VERSION into $prefix" >&2
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
        --save-exact "azurite@$AZURITE_VERSION" >&2
fi

if [ "$(installed_version)" != "$AZURITE_VERSION" ] || [ ! -x "$bin" ]; then
    echo "setup-azurite: azurite@$AZURITE_VERSION did not install into $prefix" >&2
    exit 1
fi
echo "$bin"
