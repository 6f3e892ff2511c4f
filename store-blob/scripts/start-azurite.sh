#!/usr/bin/env bash
# Starts a FRESH, in-memory Azurite blob service on 127.0.0.1 on a free port (Azurite binds
# port 0 itself, so there is no race for the port), waits until it listens, and prints shell
# `export` lines on stdout:
#
#   EVENTHUBS_TEST_AZURITE_BLOB_URL=http://127.0.0.1:PORT/devstoreaccount1   (what the tests read)
#   EVENTHUBS_TEST_AZURITE_PID=PID                                          (kill it when done)
#
# Usage:  eval "$(store-blob/scripts/start-azurite.sh [--watch-pid PID])"
#         ... run tests ...
#         kill "$EVENTHUBS_TEST_AZURITE_PID"
#
# --watch-pid PID  stops Azurite as soon as process PID exits (the Rust test harness uses it so
#                  an Azurite it started never outlives the test binary).
#
# Installs the pinned Azurite first (setup-azurite.sh, idempotent) unless AZURITE_NO_INSTALL=1.
# Telemetry is disabled: Azurite must not talk to anything but loopback. The access log goes to
# ${AZURITE_LOG:-<repo>/.tools/azurite/last-run.log}.
set -euo pipefail

scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "$scripts/../.." && pwd -P)"
bin="$repo_root/.tools/azurite/node_modules/.bin/azurite-blob"
watch_pid=""
if [ "${1:-}" = "--watch-pid" ]; then
    watch_pid="${2:?--watch-pid needs a pid}"
fi

if [ "${AZURITE_NO_INSTALL:-0}" != "1" ]; then
    "$scripts/setup-azurite.sh" >/dev/null
elif [ ! -x "$bin" ]; then
    echo "start-azurite: $bin missing; run store-blob/scripts/setup-azurite.sh" >&2
    exit 1
fi

log="${AZURITE_LOG:-$repo_root/.tools/azurite/last-run.log}"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/azurite.XXXXXX")"
: >"$log"
# setsid: own process group, so a Ctrl-C of the caller's job does not leave it half-dead and
# `kill -- -PID` stops everything it started.
(cd "$workdir" && exec setsid "$bin" --inMemoryPersistence --blobHost 127.0.0.1 --blobPort 0 \
    --skipApiVersionCheck --loose --disableTelemetry --disableProductStyleUrl \
    >>"$log" 2>&1 </dev/null) &
pid=$!

port=""
for _ in $(seq 1 300); do
    port="$(sed -n 's#.*successfully listens on http://127\.0\.0\.1:\([0-9]\+\).*#\1#p' "$log" | head -n1)"
    [ -n "$port" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start-azurite: azurite-blob exited early; log:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "start-azurite: azurite-blob did not listen within 30 s; log: $log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
fi

# Wait until it answers HTTP (any status: 4xx for an unauthenticated request is fine).
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    sleep 0.1
done

if [ -n "$watch_pid" ]; then
    (
        while kill -0 "$watch_pid" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
        kill "$pid" 2>/dev/null || true
        # Azurite closes gracefully and may wait on idle keep-alive connections: 5 s, then KILL.
        for _ in 1 2 3 4 5; do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -rf "$workdir"
    ) >/dev/null 2>&1 </dev/null &
    disown || true
fi

echo "export EVENTHUBS_TEST_AZURITE_BLOB_URL=http://127.0.0.1:$port/devstoreaccount1"
echo "export EVENTHUBS_TEST_AZURITE_PID=$pid"
