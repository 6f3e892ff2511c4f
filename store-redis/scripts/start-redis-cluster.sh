#!/usr/bin/env bash
# Starts a FRESH, throw-away Redis Cluster of three masters (no replicas, no persistence) on
# 127.0.0.1, on free ports, waits until every slot is served, and prints shell `export` lines:
#
#   EVENTHUBS_TEST_REDIS_CLUSTER_URLS=redis://127.0.0.1:P1,redis://127.0.0.1:P2,redis://127.0.0.1:P3
#   EVENTHUBS_TEST_REDIS_CLUSTER_PIDS="PID1 PID2 PID3"      (kill them when done)
#
# Usage:  eval "$(store-redis/scripts/start-redis-cluster.sh [--watch-pid PID])"
#
# --watch-pid PID  stops the nodes as soon as process PID exits (the Rust tests use it, so a
#                  cluster they started never outlives the test binary).
#
# Needs redis-server and redis-cli (Redis 7) on PATH.
set -euo pipefail

watch_pid=""
if [ "${1:-}" = "--watch-pid" ]; then
    watch_pid="${2:?--watch-pid needs a pid}"
fi
for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "start-redis-cluster: $tool is not on PATH" >&2; exit 1; }
done

workdir="$(mktemp -d "${TMPDIR:-/tmp}/redis-cluster.XXXXXX")"
pids=()
ports=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$workdir"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A node listens on PORT and on PORT+10000 (the cluster bus): both must be free. A port taken
# between the check and the bind makes redis-server exit; then the next candidate is tried.
start_node() {
    local tries port dir
    for tries in $(seq 1 50); do
        port=$((20000 + RANDOM % 25000))
        port_free "$port" && port_free $((port + 10000)) || continue
        dir="$workdir/$port"
        mkdir -p "$dir"
        (cd "$dir" && exec setsid redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
            --cluster-config-file nodes.conf --cluster-node-timeout 5000 --save "" --appendonly no \
            --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1) &
        local pid=$!
        for _ in $(seq 1 50); do
            if redis-cli -p "$port" ping >/dev/null 2>&1; then
                pids+=("$pid")
                ports+=("$port")
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null || true
    done
    echo "start-redis-cluster: no node could start; last log:" >&2
    cat "$dir/redis.log" >&2 || true
    return 1
}

for _ in 1 2 3; do
    start_node || { stop_all; exit 1; }
done

nodes=()
for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
if ! redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$workdir/create.log" 2>&1; then
    echo "start-redis-cluster: redis-cli --cluster create failed:" >&2
    cat "$workdir/create.log" >&2
    stop_all
    exit 1
fi
# Every node must know the whole slot map before a client arrives.
for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do
        redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
        sleep 0.1
    done
    redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || {
        echo "start-redis-cluster: node $port never reached cluster_state:ok" >&2
        stop_all
        exit 1
    }
done

if [ -n "$watch_pid" ]; then
    (
        while kill -0 "$watch_pid" 2>/dev/null; do sleep 1; done
        stop_all
    ) >/dev/null 2>&1 </dev/null &
    disown || true
fi

urls=""
for port in "${ports[@]}"; do urls="${urls:+$urls,}redis://127.0.0.1:$port"; done
echo "export EVENTHUBS_TEST_REDIS_CLUSTER_URLS=$urls"
echo "export EVENTHUBS_TEST_REDIS_CLUSTER_PIDS=\"${pids[*]}\""
