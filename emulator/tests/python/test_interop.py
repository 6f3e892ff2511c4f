"""The official azure-eventhub client against the emulator."""
import threading
import time

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import AuthenticationError

from conftest import HUB, receive


def producer(cs):
    return EventHubProducerClient.from_connection_string(cs, eventhub_name=HUB)


def consumer(cs, group="$default"):
    return EventHubConsumerClient.from_connection_string(cs, consumer_group=group, eventhub_name=HUB)


def send(cs, bodies, **batch_args):
    with producer(cs) as p:
        batch = p.create_batch(**batch_args)
        for body in bodies:
            batch.add(EventData(body))
        p.send_batch(batch)


def test_get_eventhub_properties(emulator):
    with producer(emulator) as p:
        props = p.get_eventhub_properties()
    assert props["eventhub_name"] == HUB
    assert props["partition_ids"] == ["0", "1", "2", "3"]
    assert props["created_at"].year >= 2024


def test_get_partition_properties(emulator):
    with producer(emulator) as p:
        empty = p.get_partition_properties("2")
        assert empty["is_empty"] is True
        assert empty["last_enqueued_sequence_number"] == -1
        batch = p.create_batch(partition_id="2")
        batch.add(EventData("a"))
        batch.add(EventData("b"))
        p.send_batch(batch)
        props = p.get_partition_properties("2")
    assert props["id"] == "2"
    assert props["is_empty"] is False
    assert props["beginning_sequence_number"] == 0
    assert props["last_enqueued_sequence_number"] == 1
    assert int(props["last_enqueued_offset"]) > 0


def test_send_batch_to_partition_id_and_receive_from_earliest(emulator):
    send(emulator, [f"event-{i}" for i in range(5)], partition_id="1")
    events, errors = receive(consumer(emulator), "1", 5, starting_position="-1")
    assert not errors
    assert [e.body_as_str() for e in events] == [f"event-{i}" for i in range(5)]
    assert [e.sequence_number for e in events] == list(range(5))
    offsets = [int(e.offset) for e in events]
    assert offsets == sorted(offsets) and len(set(offsets)) == 5
    assert all(e.enqueued_time is not None for e in events)


def test_send_batch_with_partition_key(emulator):
    # The service hash puts key "7" on partition 3 of 4 (abs(-15263 % 4)).
    send(emulator, ["keyed-1", "keyed-2"], partition_key="7")
    with producer(emulator) as p:
        assert p.get_partition_properties("3")["last_enqueued_sequence_number"] == 1
        for other in ("0", "1", "2"):
            assert p.get_partition_properties(other)["is_empty"] is True
    events, _ = receive(consumer(emulator), "3", 2, starting_position="-1")
    # pyamqp hands annotation strings back as bytes, as it does against the service.
    assert [e.partition_key for e in events] == [b"7", b"7"]


def test_send_event(emulator):
    with producer(emulator) as p:
        p.send_event(EventData("single"), partition_id="0")
    events, errors = receive(consumer(emulator, "cg1"), "0", 1, starting_position="-1")
    assert not errors
    assert [e.body_as_str() for e in events] == ["single"]


def test_receive_from_offset(emulator):
    send(emulator, ["o-0", "o-1", "o-2", "o-3"], partition_id="0")
    first, _ = receive(consumer(emulator), "0", 4, starting_position="-1")
    offset = first[1].offset
    events, _ = receive(consumer(emulator), "0", 2, starting_position=offset)
    assert [e.body_as_str() for e in events] == ["o-2", "o-3"]
    inclusive, _ = receive(consumer(emulator), "0", 3, starting_position=offset, starting_position_inclusive=True)
    assert [e.body_as_str() for e in inclusive] == ["o-1", "o-2", "o-3"]


def test_receive_from_sequence_number(emulator):
    send(emulator, ["s-0", "s-1", "s-2", "s-3"], partition_id="2")
    events, _ = receive(consumer(emulator), "2", 2, starting_position=1)
    assert [e.body_as_str() for e in events] == ["s-2", "s-3"]


def test_owner_level_steal_is_an_error_for_the_first_consumer(emulator):
    send(emulator, ["x"], partition_id="0")
    first = consumer(emulator)
    first_errors = []
    first_events = []
    attached = threading.Event()

    def on_event(_ctx, event):
        if event is not None:
            first_events.append(event)
            attached.set()

    worker = threading.Thread(
        target=first.receive,
        kwargs=dict(
            on_event=on_event,
            on_error=lambda _ctx, err: first_errors.append(err),
            partition_id="0",
            owner_level=1,
            starting_position="-1",
        ),
        daemon=True,
    )
    worker.start()
    assert attached.wait(20), "first consumer received nothing"
    second_events, second_errors = receive(consumer(emulator), "0", 1, owner_level=2, starting_position="-1")
    assert [e.body_as_str() for e in second_events] == ["x"]
    assert not second_errors
    deadline = time.time() + 20
    while not first_errors and time.time() < deadline:
        time.sleep(0.1)
    first.close()
    worker.join(10)
    assert first_errors, "the first consumer was not told its link was stolen"
    text = " ".join(f"{type(e).__name__} {e}" for e in first_errors)
    assert "stolen" in text.lower() or "ConsumerDisconnected" in text, text


def test_a_wrong_key_is_refused_at_put_token(emulator):
    """A token signed with another key is refused on $cbs (401), so the client never gets a
    link: the official client raises its authentication error instead of reading anything."""
    wrong = emulator.replace("SharedAccessKey=SAS_KEY_VALUE", "SharedAccessKey=not-the-key")
    assert wrong != emulator
    with pytest.raises(AuthenticationError):
        with producer(wrong) as p:
            p.get_eventhub_properties()


def test_amqp_over_websockets(websocket_emulator):
    """The client's AmqpOverWebsocket transport (websocket-client, pinned) against the
    emulator's --websockets listener: the upgrade, then management, a send and a receive. The
    SDK dials port 443 unless given the endpoint, as it would a gateway."""
    from azure.eventhub import TransportType

    cs = websocket_emulator
    port = cs.split("localhost:")[1].split(";")[0]
    ws = dict(
        transport_type=TransportType.AmqpOverWebsocket,
        custom_endpoint_address=f"sb://localhost:{port}",
    )
    with EventHubProducerClient.from_connection_string(cs, eventhub_name=HUB, **ws) as p:
        assert p.get_eventhub_properties()["partition_ids"] == ["0", "1", "2", "3"]
        batch = p.create_batch(partition_id="2")
        batch.add(EventData("over websockets"))
        p.send_batch(batch)
    client = EventHubConsumerClient.from_connection_string(
        cs, consumer_group="$default", eventhub_name=HUB, **ws
    )
    events, errors = receive(client, "2", 1, starting_position="-1")
    assert [e.body_as_str() for e in events] == ["over websockets"], errors
