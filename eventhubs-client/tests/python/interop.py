"""The official Python client (azure-eventhub, pinned in scripts/python-requirements.txt) on
one side of eventhubs-client's interop test (tests/interop_python.rs).

Usage: python interop.py send|receive < request.json > answer.json

send:    {"connection_string", "hub", "partition_key", "body", "message_id"} sends one event
         with typed application properties, a message id, a content type and a correlation id,
         in a batch with that partition key; answers {}.
receive: {"connection_string", "hub", "count"} reads every partition from the start until
         `count` events arrived (20 s at most) and answers them as Python sees them: each
         property value tagged with its Python type.
"""
import datetime
import json
import sys
import threading
import time
import uuid

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub._pyamqp import _platform
from azure.eventhub._pyamqp.types import TYPE, VALUE, AMQPTypes

# pyamqp copies every TCP option back with setsockopt; on Linux loopback TCP_MAXSEG can read
# 32768, which setsockopt rejects (intermittent "[Errno 22] Invalid argument" on connect).
_platform.KNOWN_TCP_OPTS.discard("TCP_MAXSEG")

# The properties both sides send: the same values, in the same AMQP types.
TYPED = {
    "string": "eu-west",
    "int": 42,
    "long": {TYPE: AMQPTypes.long, VALUE: -9_000_000_000},
    "ulong": {TYPE: AMQPTypes.ulong, VALUE: 2**64 - 1},
    "double": 2.5,
    "bool": True,
    "binary": b"\x00\x01\xff",
    "uuid": uuid.UUID(int=7),
    "timestamp": datetime.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=datetime.timezone.utc),
    "symbol": {TYPE: AMQPTypes.symbol, VALUE: "sym"},
}


def tagged(value):
    """A value as Python decoded it, tagged with its Python type (JSON-safe)."""
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", value]
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if value is None:
        return ["none", None]
    return ["other", repr(value)]


def send(request):
    producer = EventHubProducerClient.from_connection_string(
        request["connection_string"], eventhub_name=request["hub"]
    )
    with producer:
        event = EventData(request["body"].encode())
        event.message_id = request["message_id"]
        event.content_type = "application/json"
        event.correlation_id = uuid.UUID(int=0xFEED)
        event.properties = dict(TYPED)
        batch = producer.create_batch(partition_key=request["partition_key"])
        batch.add(event)
        producer.send_batch(batch)
    return {}


def receive(request):
    consumer = EventHubConsumerClient.from_connection_string(
        request["connection_string"], "$Default", eventhub_name=request["hub"]
    )
    events = []
    done = threading.Event()

    def on_event(context, event):
        if event is None:
            return
        events.append(
            {
                "partition": context.partition_id,
                "body": event.body_as_str(),
                "message_id": tagged(event.message_id),
                "content_type": tagged(event.content_type),
                "correlation_id": tagged(event.correlation_id),
                "partition_key": tagged(event.partition_key),
                "properties": {k.decode() if isinstance(k, bytes) else k: tagged(v) for k, v in event.properties.items()},
            }
        )
        if len(events) >= request["count"]:
            done.set()

    worker = threading.Thread(
        target=consumer.receive,
        kwargs=dict(on_event=on_event, starting_position="-1", max_wait_time=1),
        daemon=True,
    )
    worker.start()
    done.wait(timeout=20)
    consumer.close()
    worker.join(timeout=10)
    return sorted(events, key=lambda e: e["body"])


if __name__ == "__main__":
    command = sys.argv[1]
    answer = {"send": send, "receive": receive}[command](json.load(sys.stdin))
    json.dump(answer, sys.stdout)
