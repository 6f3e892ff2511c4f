//! What users of the official SDKs expect of a producer and a consumer, against the in-process
//! emulator: size-bounded batches, partition keys (the service's hashing), round robin, typed
//! application properties, message ids, content types, correlation ids and system properties,
//! inclusive enqueued-time starts and prefetch 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use eventhubs_client::{
    BatchOptions, ErrorKind, EventData, EventHubClient, MessageId, PartitionReceiver, PropertyValue,
    ReceivedEvent, ReceiverOptions, StartPosition,
};
use eventhubs_emulator::{Emulator, EmulatorHandle};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(5);

async fn start(partitions: usize) -> (EmulatorHandle, EventHubClient) {
    let emulator = Emulator::builder()
        .hub("orders", partitions)
        .start()
        .await
        .unwrap();
    let client = EventHubClient::from_connection_string(&emulator.connection_string(Some("orders")), None)
        .await
        .unwrap();
    (emulator, client)
}

async fn receiver(client: &EventHubClient, partition: &str, options: ReceiverOptions) -> PartitionReceiver {
    client
        .open_receiver("$default", partition, options)
        .await
        .unwrap()
}

fn earliest() -> ReceiverOptions {
    ReceiverOptions {
        start: StartPosition::Earliest,
        ..ReceiverOptions::default()
    }
}

async fn receive_n(receiver: &mut PartitionReceiver, count: usize) -> Vec<ReceivedEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < count && tokio::time::Instant::now() < deadline {
        events.extend(receiver.receive(count - events.len(), WAIT).await.unwrap());
    }
    assert_eq!(events.len(), count, "{events:?}");
    events
}

fn typed_event(t: OffsetDateTime) -> EventData {
    EventData::new("typed")
        .with_message_id("order-7")
        .with_content_type("application/json")
        .with_correlation_id(uuid::Uuid::from_u128(0xfeed))
        .with_property("string", "eu-west")
        .with_property("long", -9_000_000_000i64)
        .with_property("int", 42i32)
        .with_property("ulong", u64::MAX)
        .with_property("double", 2.5f64)
        .with_property("float", -0.5f32)
        .with_property("bool", true)
        .with_property("timestamp", t)
        .with_property("uuid", uuid::Uuid::from_u128(7))
        .with_property("binary", vec![0u8, 1, 255])
        .with_property("char", 'λ')
        .with_property("null", PropertyValue::Null)
}

#[tokio::test]
async fn typed_properties_message_id_content_type_and_correlation_id_arrive_exactly() {
    let (_emulator, client) = start(2).await;
    let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap();
    let sent = typed_event(t);
    client.send(Some("1"), vec![sent.clone()]).await.unwrap();
    let mut batch = client
        .create_batch(BatchOptions::partition_id("1"))
        .await
        .unwrap();
    assert!(batch.try_add(&sent.clone().with_message_id(9u64)).unwrap());
    client.send_batch(&batch).await.unwrap();

    let mut r = receiver(&client, "1", earliest()).await;
    let events = receive_n(&mut r, 2).await;
    for (event, id) in events
        .iter()
        .zip([MessageId::from("order-7"), MessageId::ULong(9)])
    {
        assert_eq!(event.properties, sent.properties, "every type survives the trip");
        assert_eq!(event.message_id, Some(id));
        assert_eq!(event.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            event.correlation_id,
            Some(MessageId::Uuid(uuid::Uuid::from_u128(0xfeed)))
        );
        assert_eq!(event.body, b"typed");
        // The system properties hold the service's annotations, typed.
        let system = &event.system_properties;
        assert_eq!(
            system
                .get("x-opt-sequence-number")
                .and_then(PropertyValue::as_i64),
            Some(event.sequence_number)
        );
        assert_eq!(
            system.get("x-opt-enqueued-time"),
            Some(&PropertyValue::Timestamp(event.enqueued_time))
        );
        assert!(system.contains_key("x-opt-offset"), "{system:?}");
    }
}

#[tokio::test]
async fn a_partition_key_lands_where_the_service_hash_puts_it_and_is_received_back() {
    let (_emulator, client) = start(4).await;
    let keys = ["tenant-1", "tenant-2", "order/42", "ключ", ""];
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in keys.iter().filter(|k| !k.is_empty()) {
        let partition = eventhubs_emulator::hash::partition_for_key(key, 4).to_string();
        let mut batch = client
            .create_batch(BatchOptions::partition_key(*key))
            .await
            .unwrap();
        for i in 0..3 {
            assert!(batch.try_add(&EventData::new(format!("{key}#{i}"))).unwrap());
        }
        assert_eq!(batch.partition_key(), Some(*key));
        client.send_batch(&batch).await.unwrap();
        expected
            .entry(partition)
            .or_default()
            .extend((0..3).map(|i| format!("{key}#{i}")));
    }
    let e = client
        .create_batch(BatchOptions::partition_key(""))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    for partition in 0..4 {
        let partition = partition.to_string();
        let want = expected.remove(&partition).unwrap_or_default();
        let mut r = receiver(&client, &partition, earliest()).await;
        let got = if want.is_empty() {
            r.receive(10, Duration::from_millis(300)).await.unwrap()
        } else {
            receive_n(&mut r, want.len()).await
        };
        let bodies: Vec<String> = got
            .iter()
            .map(|e| String::from_utf8(e.body.clone()).unwrap())
            .collect();
        assert_eq!(bodies, want, "partition {partition}");
        for event in &got {
            let key = bodies_key(event);
            assert_eq!(event.partition_key.as_deref(), Some(key.as_str()));
            assert_eq!(
                event.system_properties.get("x-opt-partition-key"),
                Some(&PropertyValue::String(key))
            );
        }
    }
}

fn bodies_key(event: &ReceivedEvent) -> String {
    let body = String::from_utf8(event.body.clone()).unwrap();
    body.rsplit_once('#').unwrap().0.to_owned()
}

#[tokio::test]
async fn round_robin_batches_spread_over_the_partitions() {
    let (_emulator, client) = start(4).await;
    for i in 0..8 {
        let mut batch = client.create_batch(BatchOptions::default()).await.unwrap();
        assert!(batch.try_add(&EventData::new(format!("rr{i}"))).unwrap());
        client.send_batch(&batch).await.unwrap();
    }
    let mut used = 0;
    let mut total = 0;
    for partition in 0..4 {
        let properties = client.partition_properties(&partition.to_string()).await.unwrap();
        let count = usize::try_from(properties.last_enqueued_sequence_number + 1).unwrap();
        used += usize::from(count > 0);
        total += count;
    }
    assert_eq!(total, 8);
    assert!(used > 1, "round robin used {used} partition(s)");
}

#[tokio::test]
async fn a_batch_fills_up_to_the_links_max_message_size_and_the_service_takes_it() {
    let (_emulator, client) = start(1).await;
    let mut batch = client
        .create_batch(BatchOptions::partition_id("0"))
        .await
        .unwrap();
    // The emulator announces the service's 1 MiB on its publisher links.
    assert_eq!(batch.max_size_in_bytes(), 1024 * 1024);
    let event = EventData::new(vec![7u8; 10_000]).with_property("n", 1i64);
    let mut added = 0;
    while batch.try_add(&event).unwrap() {
        added += 1;
    }
    assert!(batch.size_in_bytes() <= batch.max_size_in_bytes());
    assert!(
        batch.size_in_bytes() + 10_000 > batch.max_size_in_bytes(),
        "the batch stopped early: {} of {}",
        batch.size_in_bytes(),
        batch.max_size_in_bytes()
    );
    client.send_batch(&batch).await.unwrap();
    let properties = client.partition_properties("0").await.unwrap();
    assert_eq!(properties.last_enqueued_sequence_number + 1, added);

    // The same events sent without a batch are more than the service accepts.
    let too_many = vec![event.clone(); usize::try_from(added + 1).unwrap()];
    let e = client.send(Some("0"), too_many).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    // A smaller limit of our own is honoured; one event larger than it is an error.
    let options = BatchOptions {
        max_size_in_bytes: Some(25_000),
        ..BatchOptions::partition_id("0")
    };
    let mut small = client.create_batch(options).await.unwrap();
    assert!(small.try_add(&event).unwrap());
    assert!(small.try_add(&event).unwrap());
    assert!(!small.try_add(&event).unwrap());
    let options = BatchOptions {
        max_size_in_bytes: Some(5_000),
        ..BatchOptions::partition_id("0")
    };
    let mut tiny = client.create_batch(options).await.unwrap();
    assert_eq!(tiny.try_add(&event).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn an_inclusive_enqueued_time_start_includes_the_event_at_that_time() {
    let (_emulator, client) = start(1).await;
    for i in 0..3 {
        client
            .send(Some("0"), vec![EventData::new(format!("e{i}"))])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut all = receiver(&client, "0", earliest()).await;
    let events = receive_n(&mut all, 3).await;
    let second = events[1].enqueued_time;
    let at = |inclusive| ReceiverOptions {
        start: StartPosition::EnqueuedTime {
            time: second,
            inclusive,
        },
        ..ReceiverOptions::default()
    };
    let mut inclusive = receiver(&client, "0", at(true)).await;
    let got = receive_n(&mut inclusive, 2).await;
    assert_eq!(got[0].sequence_number, events[1].sequence_number);
    let mut exclusive = receiver(&client, "0", at(false)).await;
    let got = receive_n(&mut exclusive, 1).await;
    assert_eq!(got[0].sequence_number, events[2].sequence_number);
}

/// With prefetch 0 nothing is read ahead between calls: the second event is delivered only
/// when the second call asks for it, so it carries the partition's state as of then (the
/// runtime metric names the event sent between the calls). With prefetch it was already on
/// hand before that event was sent.
#[tokio::test]
async fn prefetch_zero_reads_only_while_a_call_waits() {
    let (_emulator, client) = start(1).await;
    let events: Vec<_> = (0..10).map(|i| EventData::new(format!("p{i}"))).collect();
    client.send(Some("0"), events).await.unwrap();
    let mut last_enqueued_seen = Vec::new();
    for prefetch in [0, 300] {
        let mut r = receiver(
            &client,
            "0",
            ReceiverOptions {
                start: StartPosition::Earliest,
                prefetch,
                track_last_enqueued_event_properties: true,
                ..ReceiverOptions::default()
            },
        )
        .await;
        let first = r.receive(1, WAIT).await.unwrap();
        assert_eq!(first.len(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        client
            .send(Some("0"), vec![EventData::new("between")])
            .await
            .unwrap();
        let second = r.receive(1, WAIT).await.unwrap();
        assert_eq!(second[0].sequence_number, first[0].sequence_number + 1);
        last_enqueued_seen.push(r.last_enqueued_event_properties().unwrap().sequence_number);
        // Every event still arrives, in order, one call at a time.
        let rest = receive_n(&mut r, 9).await;
        assert_eq!(rest.last().map(|e| e.body.as_slice()), Some(&b"between"[..]));
    }
    // prefetch 0: the partition's newest event was the one just sent between the calls
    // (seq 10). prefetch 300: the second event was prefetched before seq 11 was sent between
    // its calls, so it still reports seq 10.
    assert_eq!(last_enqueued_seen, vec![10, 10]);
}
