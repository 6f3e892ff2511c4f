"""One session of the official Python client (azure-eventhub), for the fuzzing seed corpus.

Run by `cargo run -p eventhubs-emulator --example capture_corpus -- DIR PYTHON`, which passes
the connection string of a recording proxy in front of an emulator with hub `orders:4`.
Not a test: pytest collects only test_*.py.
"""
import sys
import threading

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub._pyamqp import _platform

_platform.KNOWN_TCP_OPTS.discard("TCP_MAXSEG")

conn = sys.argv[1]
with EventHubProducerClient.from_connection_string(conn) as producer:
    producer.get_eventhub_properties()
    producer.get_partition_properties("2")
    batch = producer.create_batch(partition_key="customer-42")
    event = EventData("keyed")
    event.properties = {"n": 7, "flag": True, "name": "x", "ratio": 0.5, "raw": b"\x00\x01"}
    event.message_id = "m-1"
    event.content_type = "application/json"
    event.correlation_id = "c-1"
    batch.add(event)
    batch.add(EventData("second"))
    producer.send_batch(batch)
    producer.send_event(EventData("single"), partition_id="0")
    big = producer.create_batch(partition_id="1")
    big.add(EventData("y" * 3000))
    producer.send_batch(big)

consumer = EventHubConsumerClient.from_connection_string(conn, consumer_group="$default")
done = threading.Event()


def on_event(_ctx, event):
    if event is not None:
        done.set()


worker = threading.Thread(
    target=consumer.receive,
    kwargs=dict(on_event=on_event, partition_id="0", starting_position="-1", owner_level=3,
                track_last_enqueued_event_properties=True),
    daemon=True,
)
worker.start()
done.wait(20)
consumer.close()
worker.join(10)
