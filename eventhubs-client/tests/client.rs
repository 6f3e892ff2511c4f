//! The client against the in-process emulator: management, send/receive, start positions,
//! owner levels, and the failure paths.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use eventhubs_client::{
    ConnectionString, ErrorKind, EventData, EventHubClient, ReceivedEvent, ReceiverOptions, StartPosition,
};
use eventhubs_emulator::{Emulator, EmulatorHandle};

const WAIT: Duration = Duration::from_secs(5);

async fn start() -> EmulatorHandle {
    Emulator::builder()
        .hub("orders", 4)
        .consumer_group("orders", "cg1")
        .start()
        .await
        .unwrap()
}

async fn client(emulator: &EmulatorHandle) -> EventHubClient {
    EventHubClient::from_connection_string(&emulator.connection_string(Some("orders")), None)
        .await
        .unwrap()
}

fn key_of(connection_string: &str) -> String {
    connection_string
        .split(';')
        .find_map(|s| s.strip_prefix("SharedAccessKey="))
        .unwrap()
        .to_owned()
}

fn options(start: StartPosition) -> ReceiverOptions {
    ReceiverOptions {
        start,
        ..ReceiverOptions::default()
    }
}

/// Receives until `count` events arrived (or fails after a few seconds).
async fn receive_n(receiver: &mut eventhubs_client::PartitionReceiver, count: usize) -> Vec<ReceivedEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < count && tokio::time::Instant::now() < deadline {
        events.extend(receiver.receive(count - events.len(), WAIT).await.unwrap());
    }
    assert_eq!(events.len(), count, "{events:?}");
    events
}

fn bodies(events: &[ReceivedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8(e.body.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn properties_and_partition_properties() {
    let emulator = start().await;
    let client = client(&emulator).await;
    assert_eq!(client.event_hub(), "orders");
    assert_eq!(
        client.fully_qualified_namespace(),
        format!("localhost:{}", emulator.local_addr().port()),
        "host and port, as the official SDKs record the namespace"
    );
    let hub = client.properties().await.unwrap();
    assert_eq!(hub.name, "orders");
    assert_eq!(hub.partition_ids, vec!["0", "1", "2", "3"]);
    assert!(hub.created_at <= time::OffsetDateTime::now_utc());

    let empty = client.partition_properties("1").await.unwrap();
    assert_eq!(empty.event_hub, "orders");
    assert_eq!(empty.id, "1");
    assert!(empty.is_empty);
    assert_eq!(empty.last_enqueued_time, None);
    assert_eq!(empty.last_enqueued_sequence_number, -1);

    client
        .send(Some("1"), vec![EventData::new("a"), EventData::new("b")])
        .await
        .unwrap();
    let filled = client.partition_properties("1").await.unwrap();
    assert!(!filled.is_empty);
    assert_eq!(filled.beginning_sequence_number, 0);
    assert_eq!(filled.last_enqueued_sequence_number, 1);
    assert!(filled.last_enqueued_time.is_some());
    assert_ne!(filled.last_enqueued_offset, "-1");

    let missing = client.partition_properties("9").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn send_to_a_partition_then_receive_from_earliest() {
    let emulator = start().await;
    let client = client(&emulator).await;
    client
        .send(
            Some("0"),
            vec![EventData::new("hello").with_property("kind", "greeting")],
        )
        .await
        .unwrap();
    let mut receiver = client
        .open_receiver("$default", "0", options(StartPosition::Earliest))
        .await
        .unwrap();
    assert_eq!(receiver.partition_id(), "0");
    let events = receive_n(&mut receiver, 1).await;
    let event = &events[0];
    assert_eq!(event.body, b"hello");
    assert_eq!(event.partition_id, "0");
    assert_eq!(event.sequence_number, 0);
    assert_eq!(
        event.properties.get("kind").and_then(|v| v.as_str()),
        Some("greeting")
    );
    assert_eq!(event.partition_key, None);
    assert!(!event.offset.is_empty());
    let age = time::OffsetDateTime::now_utc() - event.enqueued_time;
    assert!(age < time::Duration::minutes(1), "{age}");
    // Nothing more: the next event read is the next one sent, right after it.
    client
        .send(Some("0"), vec![EventData::new("next")])
        .await
        .unwrap();
    let next = receive_n(&mut receiver, 1).await;
    assert_eq!(bodies(&next), ["next"]);
    assert_eq!(next[0].sequence_number, 1);
    receiver.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn offset_and_sequence_number_starts_are_inclusive_or_exclusive() {
    let emulator = start().await;
    let client = client(&emulator).await;
    for body in ["e0", "e1", "e2"] {
        client.send(Some("2"), vec![EventData::new(body)]).await.unwrap();
    }
    let mut all = client
        .open_receiver("cg1", "2", options(StartPosition::Earliest))
        .await
        .unwrap();
    let events = receive_n(&mut all, 3).await;
    assert_eq!(bodies(&events), ["e0", "e1", "e2"]);
    all.close().await.unwrap();

    let offset = events[1].offset.clone();
    let cases = [
        (
            StartPosition::Offset {
                offset: offset.clone(),
                inclusive: true,
            },
            vec!["e1", "e2"],
        ),
        (
            StartPosition::Offset {
                offset,
                inclusive: false,
            },
            vec!["e2"],
        ),
        (
            StartPosition::SequenceNumber {
                sequence_number: 1,
                inclusive: true,
            },
            vec!["e1", "e2"],
        ),
        (
            StartPosition::SequenceNumber {
                sequence_number: 1,
                inclusive: false,
            },
            vec!["e2"],
        ),
    ];
    for (start, expected) in cases {
        let mut receiver = client
            .open_receiver("cg1", "2", options(start.clone()))
            .await
            .unwrap();
        let got = receive_n(&mut receiver, expected.len()).await;
        assert_eq!(bodies(&got), expected, "{start:?}");
        // Nothing extra (no repeat of e2): the next event read follows it directly.
        client
            .send(Some("2"), vec![EventData::new("next")])
            .await
            .unwrap();
        let next = receive_n(&mut receiver, 1).await;
        assert_eq!(
            next[0].sequence_number,
            got[got.len() - 1].sequence_number + 1,
            "{start:?}"
        );
        receiver.close().await.unwrap();
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn latest_sees_only_later_events() {
    let emulator = start().await;
    let client = client(&emulator).await;
    client
        .send(Some("3"), vec![EventData::new("before")])
        .await
        .unwrap();
    let mut receiver = client
        .open_receiver("$default", "3", ReceiverOptions::default())
        .await
        .unwrap();
    client
        .send(Some("3"), vec![EventData::new("after")])
        .await
        .unwrap();
    let events = receive_n(&mut receiver, 1).await;
    assert_eq!(bodies(&events), ["after"]);
    assert_eq!(events[0].sequence_number, 1);
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_batch_arrives_in_order_with_consecutive_sequence_numbers() {
    let emulator = start().await;
    let client = client(&emulator).await;
    client
        .send(Some("1"), vec![EventData::new("first")])
        .await
        .unwrap();
    let batch: Vec<EventData> = (0..5)
        .map(|i| EventData::new(format!("b{i}")).with_property("i", i.to_string()))
        .collect();
    client.send(Some("1"), batch).await.unwrap();
    let mut receiver = client
        .open_receiver("$default", "1", options(StartPosition::Earliest))
        .await
        .unwrap();
    let events = receive_n(&mut receiver, 6).await;
    assert_eq!(bodies(&events), ["first", "b0", "b1", "b2", "b3", "b4"]);
    let sequence: Vec<i64> = events.iter().map(|e| e.sequence_number).collect();
    assert_eq!(sequence, [0, 1, 2, 3, 4, 5]);
    assert_eq!(events[3].properties.get("i").and_then(|v| v.as_str()), Some("2"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn sending_without_a_partition_spreads_over_the_hub() {
    let emulator = start().await;
    let client = client(&emulator).await;
    for i in 0..8 {
        client
            .send(None, vec![EventData::new(format!("rr{i}"))])
            .await
            .unwrap();
    }
    let mut total = 0;
    for id in ["0", "1", "2", "3"] {
        let p = client.partition_properties(id).await.unwrap();
        total += p.last_enqueued_sequence_number + 1;
    }
    assert_eq!(total, 8);
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_higher_owner_level_takes_the_partition() {
    let emulator = start().await;
    let client = client(&emulator).await;
    let owned = |level| ReceiverOptions {
        start: StartPosition::Earliest,
        owner_level: Some(level),
        prefetch: 10,
        ..ReceiverOptions::default()
    };
    let mut first = client.open_receiver("cg1", "0", owned(1)).await.unwrap();
    let mut second = client.open_receiver("cg1", "0", owned(2)).await.unwrap();
    let err = first.receive(10, WAIT).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OwnerLevelConflict, "{err}");
    first.close().await.unwrap();
    // A lower level is refused while the higher one holds.
    let lower = client.open_receiver("cg1", "0", owned(1)).await.unwrap_err();
    assert_eq!(lower.kind(), ErrorKind::OwnerLevelConflict, "{lower}");
    // The owner keeps reading.
    client
        .send(Some("0"), vec![EventData::new("mine")])
        .await
        .unwrap();
    assert_eq!(bodies(&receive_n(&mut second, 1).await), ["mine"]);
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_sixth_receiver_without_owner_level_exceeds_the_quota() {
    let emulator = start().await;
    let client = client(&emulator).await;
    let mut receivers = Vec::new();
    for _ in 0..5 {
        receivers.push(
            client
                .open_receiver("$default", "2", ReceiverOptions::default())
                .await
                .unwrap(),
        );
    }
    let err = client
        .open_receiver("$default", "2", ReceiverOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_not_echoed() {
    let emulator = start().await;
    let good = emulator.connection_string(Some("orders"));
    let wrong_key = "d3Jvbmcta2V5LXZhbHVl";
    let bad = good.replace(&key_of(&good), wrong_key);
    let err = EventHubClient::from_connection_string(&bad, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(wrong_key), "{text}");
    assert!(!text.contains("sig="), "{text}");
}

#[tokio::test]
async fn an_unknown_hub_is_not_found() {
    // The token for `sb://localhost/nope` is valid (signed for its own audience), so the
    // emulator accepts it and then answers the READ and the attach with not-found.
    let emulator = start().await;
    let client = EventHubClient::from_connection_string(&emulator.connection_string(None), Some("nope"))
        .await
        .unwrap();
    let err = client.properties().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = client
        .open_receiver("$default", "0", ReceiverOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = client
        .send(Some("0"), vec![EventData::new("x")])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // An unknown consumer group too.
    let orders = client_for(&emulator).await;
    let err = orders
        .open_receiver("nogroup", "0", ReceiverOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

async fn client_for(emulator: &EmulatorHandle) -> EventHubClient {
    client(emulator).await
}

#[tokio::test]
async fn bad_connection_strings_are_invalid_input_without_the_key() {
    let emulator = start().await;
    let good = emulator.connection_string(Some("orders"));
    let key = key_of(&good);
    let no_endpoint = good
        .split(';')
        .filter(|s| !s.starts_with("Endpoint="))
        .collect::<Vec<_>>()
        .join(";");
    let err = EventHubClient::from_connection_string(&no_endpoint, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = format!("{err} {err:?}");
    assert!(text.contains("Endpoint"), "{text}");
    assert!(!text.contains(&key), "{text}");

    let no_key_name = good.replace("SharedAccessKeyName=", "KeyName=");
    let err = ConnectionString::parse(&no_key_name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("SharedAccessKeyName"), "{err}");
    assert!(!format!("{err:?}").contains(&key));

    let err = EventHubClient::from_connection_string(&emulator.connection_string(None), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("EntityPath"), "{err}");
}

#[tokio::test]
async fn debug_never_shows_the_key_and_closed_clients_refuse_work() {
    let emulator = start().await;
    let cs = emulator.connection_string(Some("orders"));
    let key = key_of(&cs);
    let parsed = ConnectionString::parse(&cs).unwrap();
    for text in [format!("{parsed:?}"), parsed.to_string()] {
        assert!(!text.contains(&key), "{text}");
    }
    assert_eq!(parsed.event_hub(), Some("orders"));
    let client = client(&emulator).await;
    let text = format!("{client:?}");
    assert!(!text.contains(&key), "{text}");
    assert!(text.contains("orders"), "{text}");
    let clone = client.clone();
    client.close().await.unwrap();
    let err = clone.properties().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    clone.close().await.unwrap();
}

/// With `track_last_enqueued_event_properties`, every event carries the partition's last
/// enqueued event (the service's runtime metric); without it, nothing does.
#[tokio::test]
async fn last_enqueued_event_properties_come_with_events_when_asked() {
    let emulator = start().await;
    let client = client(&emulator).await;
    let events = (0..5).map(|n| EventData::new(format!("e{n}"))).collect();
    client.send(Some("1"), events).await.unwrap();
    let tracked = ReceiverOptions {
        start: StartPosition::Earliest,
        track_last_enqueued_event_properties: true,
        ..ReceiverOptions::default()
    };
    let mut receiver = client.open_receiver("$default", "1", tracked).await.unwrap();
    assert_eq!(
        receiver.last_enqueued_event_properties(),
        None,
        "nothing before the first event"
    );
    let got = receive_n(&mut receiver, 2).await;
    let latest = receiver.last_enqueued_event_properties().cloned().unwrap();
    assert_eq!(latest.sequence_number, 4);
    assert_eq!(
        latest.sequence_number - got[1].sequence_number,
        3,
        "three events behind"
    );
    assert!(latest.offset.is_some() && latest.enqueued_time.is_some() && latest.retrieval_time.is_some());
    receiver.close().await.unwrap();

    let mut plain = client
        .open_receiver("$default", "1", options(StartPosition::Earliest))
        .await
        .unwrap();
    receive_n(&mut plain, 2).await;
    assert_eq!(plain.last_enqueued_event_properties(), None);
    client.close().await.unwrap();
}
