"""Starts the emulator binary on a free port for each test and hands out its connection string."""
import os
import subprocess
import threading

import pytest

# pyamqp copies every TCP option back with setsockopt; on Linux loopback TCP_MAXSEG can read
# 32768, which setsockopt rejects (intermittent "[Errno 22] Invalid argument" on connect).
# A client-side workaround: the server cannot fix it.
from azure.eventhub._pyamqp import _platform

_platform.KNOWN_TCP_OPTS.discard("TCP_MAXSEG")

HUB = "orders"


def _run_emulator(*extra):
    binary = os.environ.get("EVENTHUBS_EMULATOR_BIN")
    if not binary:
        pytest.fail("EVENTHUBS_EMULATOR_BIN is not set; run emulator/scripts/test-python.sh")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--hub", f"{HUB}:4:cg1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("Endpoint=sb://localhost:"):
            pytest.fail(f"emulator did not print a connection string: {line!r}")
        yield line
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def emulator():
    yield from _run_emulator()


@pytest.fixture
def websocket_emulator():
    """An emulator that expects AMQP over WebSockets (--websockets)."""
    yield from _run_emulator("--websockets")


def receive(client, partition_id, count, timeout=20, **kwargs):
    """Receives `count` events from one partition (or until `timeout`), returns them."""
    events = []
    errors = []
    done = threading.Event()

    def on_event(_ctx, event):
        if event is not None:
            events.append(event)
            if len(events) >= count:
                done.set()

    def on_error(_ctx, error):
        errors.append(error)

    worker = threading.Thread(
        target=client.receive,
        kwargs=dict(on_event=on_event, on_error=on_error, partition_id=partition_id, max_wait_time=1, **kwargs),
        daemon=True,
    )
    worker.start()
    done.wait(timeout)
    client.close()
    worker.join(10)
    return events, errors
