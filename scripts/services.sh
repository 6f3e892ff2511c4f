#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis the tests use are up (sourced by scripts/test).
# On the project's machines both run already; if one has stopped, start it the way the machine
# image does. Servers elsewhere: set EVENTHUBS_TEST_POSTGRES_URL / EVENTHUBS_TEST_REDIS_URL.

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if [ -z "${EVENTHUBS_TEST_POSTGRES_URL:-}" ] && ! pg_up; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "==> starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    fi
fi
if [ -z "${EVENTHUBS_TEST_REDIS_URL:-}" ] && ! redis_up; then
    if command -v redis-server >/dev/null; then
        echo "==> starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
        for _ in $(seq 1 30); do redis_up && break; sleep 1; done
    fi
fi
