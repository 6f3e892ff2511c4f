"""Runs the official Python processor (azure-eventhub's EventHubConsumerClient with the official
BlobCheckpointStore) for the Rust test store-blob/tests/interop_python_processor.rs, which runs
our Processor beside it on the same hub and the same blob container.

Usage: python processor.py EVENTHUB_CONNECTION_STRING HUB BLOB_CONNECTION_STRING CONTAINER SECONDS

Prints one JSON object per line on stdout, flushed: {"init": pid}, {"close": pid, "reason": r},
{"event": pid, "body": text, "seq": n}, {"error": text}; {"done": true} after SECONDS.
"""

import json
import sys
import threading
import time

# pyamqp copies every TCP option back with setsockopt; on Linux loopback TCP_MAXSEG can read
# 32768, which setsockopt rejects (intermittent "[Errno 22] Invalid argument" on connect).
from azure.eventhub._pyamqp import _platform

_platform.KNOWN_TCP_OPTS.discard("TCP_MAXSEG")

from azure.eventhub import EventHubConsumerClient  # noqa: E402
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore  # noqa: E402

lock = threading.Lock()


def emit(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def main():
    conn, hub, blob_conn, container, seconds = sys.argv[1:6]
    store = BlobCheckpointStore.from_connection_string(blob_conn, container)
    client = EventHubConsumerClient.from_connection_string(
        conn,
        consumer_group="$Default",
        eventhub_name=hub,
        checkpoint_store=store,
        load_balancing_interval=1,
        partition_ownership_expiration_interval=6,
    )

    def on_event(ctx, event):
        if event is None:
            return
        emit({"event": ctx.partition_id, "body": event.body_as_str(), "seq": event.sequence_number})
        ctx.update_checkpoint(event)

    def on_init(ctx):
        emit({"init": ctx.partition_id})

    def on_close(ctx, reason):
        emit({"close": ctx.partition_id, "reason": str(reason)})

    def on_error(ctx, error):
        emit({"error": f"{getattr(ctx, 'partition_id', None)}: {error!r}"})

    worker = threading.Thread(
        target=client.receive,
        kwargs=dict(
            on_event=on_event,
            on_partition_initialize=on_init,
            on_partition_close=on_close,
            on_error=on_error,
            starting_position="-1",
            max_wait_time=1,
        ),
        daemon=True,
    )
    worker.start()
    time.sleep(float(seconds))
    client.close()
    worker.join(timeout=15)
    emit({"done": True})


if __name__ == "__main__":
    main()
