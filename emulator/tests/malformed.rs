//! Hostile and broken clients: random bytes, truncated and oversized frames, garbage
//! performatives, abrupt disconnects, many connections. The server closes the offender and
//! keeps serving everyone else.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Client, event, recv, start};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AMQP_HEADER: &[u8] = b"AMQP\x00\x01\x00\x00";

/// A minimal open performative (container id "x").
const OPEN: &[u8] = &[0x00, 0x53, 0x10, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'x'];

fn frame(channel: u16, body: &[u8]) -> Vec<u8> {
    let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
    out.extend([2, 0]);
    out.extend(channel.to_be_bytes());
    out.extend(body);
    out
}

/// Reads until the server closes the socket, and fails unless it does within 5 s; returns what
/// the server sent. A reset counts as closed (the bytes before it are kept).
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    match tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all)).await {
        Ok(_) => all,
        Err(_) => panic!(
            "the server did not close the connection within 5 s (it sent {:?})",
            String::from_utf8_lossy(&all)
        ),
    }
}

/// The close frame's error condition in what the server sent (`amqp:…`), if any.
fn close_condition(answer: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(answer);
    let start = text.find("amqp:")?;
    let condition: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
        .collect();
    Some(condition)
}

/// The emulator still serves a real client end to end.
async fn still_serving(emulator: &eventhubs_emulator::EmulatorHandle, body: &str) {
    let mut client = Client::connect(emulator).await;
    let mut sender = client.sender("orders/Partitions/0").await;
    sender.send(event(body, None)).await.expect("send after abuse");
    client.close().await;
}

#[tokio::test]
async fn random_bytes_get_the_connection_closed() {
    let emulator = start().await;
    let mut rng = rand::rng();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
        let len = rng.random_range(1..4096);
        let mut garbage: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        garbage[0] = b'X'; // never the start of a protocol header
        let _ = stream.write_all(&garbage).await;
        // The client is done: a server still waiting for a whole header sees the end.
        let _ = stream.shutdown().await;
        let answer = read_to_close(&mut stream).await;
        assert!(
            answer.is_empty() || answer == AMQP_HEADER,
            "{len} random bytes: the server answers with its protocol header at most, then \
             closes; it sent {answer:?}"
        );
    }
    still_serving(&emulator, "after-random").await;
}

#[tokio::test]
async fn garbage_after_a_valid_open_is_a_decode_error() {
    let emulator = start().await;
    let mut rng = rand::rng();
    for round in 0..30 {
        let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
        let mut bytes = AMQP_HEADER.to_vec();
        bytes.extend(frame(0, OPEN));
        let body: Vec<u8> = match round % 3 {
            // A described list that lies about its size.
            0 => vec![
                0x00, 0x53, 0x11, 0xd0, 0x7f, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x05,
            ],
            // Deep nesting.
            1 => std::iter::repeat_n([0x00u8, 0x00], 4000).flatten().collect(),
            _ => (0..rng.random_range(1..512)).map(|_| rng.random()).collect(),
        };
        bytes.extend(frame(0, &body));
        stream.write_all(&bytes).await.unwrap();
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with(AMQP_HEADER), "round {round}: header first");
        // header + open + close with a decode or framing error, then the socket closes.
        let condition = close_condition(&answer);
        assert!(
            matches!(
                condition.as_deref(),
                Some(
                    "amqp:decode-error"
                        | "amqp:connection:framing-error"
                        | "amqp:invalid-field"
                        | "amqp:not-allowed"
                )
            ),
            "round {round}: expected a close with a decode or framing error, got {condition:?} in {:?}",
            String::from_utf8_lossy(&answer)
        );
        if round % 3 != 2 {
            assert_eq!(
                condition.as_deref(),
                Some("amqp:decode-error"),
                "round {round}: a lying size and deep nesting are decode errors"
            );
        }
    }
    still_serving(&emulator, "after-garbage").await;
}

#[tokio::test]
async fn oversized_and_truncated_frames() {
    let emulator = start().await;
    // Oversized: a header announcing 1 GiB; the server must not wait for (or allocate) it.
    let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
    let mut bytes = AMQP_HEADER.to_vec();
    bytes.extend(frame(0, OPEN));
    bytes.extend((1u32 << 30).to_be_bytes());
    bytes.extend([2, 0, 0, 0]);
    stream.write_all(&bytes).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(
        close_condition(&answer).as_deref(),
        Some("amqp:connection:framing-error"),
        "closed with a framing error: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // A size below the header size.
    let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
    let mut bytes = AMQP_HEADER.to_vec();
    bytes.extend(frame(0, OPEN));
    bytes.extend([0, 0, 0, 3, 2, 0, 0, 0]);
    stream.write_all(&bytes).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(
        close_condition(&answer).as_deref(),
        Some("amqp:connection:framing-error"),
        "a frame smaller than its header: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // Truncated: half a frame, then the client vanishes.
    for cut in [3usize, 9, 14] {
        let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
        let mut bytes = AMQP_HEADER.to_vec();
        bytes.extend(frame(0, OPEN));
        bytes.truncate(8 + cut);
        stream.write_all(&bytes).await.unwrap();
        // The client vanishes mid-frame: the server answers its header (and open) and closes.
        stream.shutdown().await.unwrap();
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with(AMQP_HEADER), "cut at {cut}: {answer:?}");
    }
    // A wrong protocol header gets ours back, then a close.
    let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
    stream.write_all(b"HTTP/1.1").await.unwrap();
    assert_eq!(read_to_close(&mut stream).await, AMQP_HEADER);
    still_serving(&emulator, "after-truncated").await;
}

#[tokio::test]
async fn abrupt_disconnects_do_not_harm_others() {
    let emulator = start().await;
    let mut steady = Client::connect(&emulator).await;
    let mut receiver = steady
        .receiver("orders/ConsumerGroups/$default/Partitions/1", None, None, &[])
        .await
        .unwrap();
    receiver.set_credit(100).await.unwrap();
    for i in 0..10 {
        let mut doomed = Client::connect(&emulator).await;
        let mut sender = doomed.sender("orders/Partitions/1").await;
        sender.send(event(&format!("d{i}"), None)).await.unwrap();
        let _r = doomed
            .receiver("orders/ConsumerGroups/cg1/Partitions/1", None, None, &[])
            .await
            .unwrap();
        // Vanish without detach, end or close.
        drop(sender);
        drop(doomed);
    }
    for i in 0..10 {
        assert_eq!(recv(&mut receiver).await.body, format!("d{i}"));
    }
    steady.close().await;
}

#[tokio::test]
async fn many_connections_at_once() {
    let emulator = start().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let addr = emulator.local_addr();
        let port = addr.port();
        tasks.push(tokio::spawn(async move {
            // SASL PLAIN with the key (from the URL): such a connection needs no put-token.
            let url = format!("amqp://RootManageSharedAccessKey:SAS_KEY_VALUE@127.0.0.1:{port}");
            let mut connection = fe2o3_amqp::Connection::open(format!("c{i}"), url.as_str())
                .await
                .unwrap();
            let mut session = fe2o3_amqp::Session::begin(&mut connection).await.unwrap();
            let mut sender = fe2o3_amqp::Sender::attach(&mut session, "s", "orders/Partitions/2")
                .await
                .unwrap();
            sender.send(event(&format!("m{i}"), None)).await.unwrap();
            sender.close().await.unwrap();
            session.end().await.unwrap();
            connection.close().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let hub = emulator.broker().hub("orders").unwrap();
    assert_eq!(eventhubs_emulator::broker::lock(&hub.partitions[2]).usage().0, 50);
}

#[tokio::test]
async fn connection_limit_closes_extra_connections() {
    let emulator = eventhubs_emulator::Emulator::builder()
        .hub("orders", 1)
        .max_connections(2)
        .start()
        .await
        .unwrap();
    let _a = Client::connect(&emulator).await;
    let _b = Client::connect(&emulator).await;
    let url = format!("amqp://127.0.0.1:{}", emulator.local_addr().port());
    let third = tokio::time::timeout(
        Duration::from_secs(5),
        fe2o3_amqp::Connection::open("c3", url.as_str()),
    )
    .await;
    assert!(matches!(third, Ok(Err(_))), "the third connection is refused");
}

#[tokio::test]
async fn shutdown_closes_clients_with_an_error() {
    let emulator = start().await;
    let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
    let mut bytes = AMQP_HEADER.to_vec();
    bytes.extend(frame(0, OPEN));
    stream.write_all(&bytes).await.unwrap();
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await.unwrap();
    emulator.shutdown().await;
    let rest = read_to_close(&mut stream).await;
    assert_eq!(close_condition(&rest).as_deref(), Some("amqp:connection:forced"));
}

/// A frame holding an array of 2^32 - 1 nulls in 10 bytes (48 bytes in all, before any
/// authentication) once kept a worker busy for seconds: it is now a decode error at once, and
/// the emulator serves others. (Two workers: a worker stuck decoding must not stop the test's
/// own clock.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_of_billions_of_nulls_is_a_decode_error() {
    let emulator = start().await;
    let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
    let mut bytes = AMQP_HEADER.to_vec();
    // A valid open, then a begin whose one field is an array32 of 0xffffffff nulls (10 bytes).
    bytes.extend(frame(0, OPEN));
    let begin = [
        0x00, 0x53, 0x11, 0xc0, 11, 1, 0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40,
    ];
    bytes.extend(frame(0, &begin));
    stream.write_all(&bytes).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(
        close_condition(&answer).as_deref(),
        Some("amqp:decode-error"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    still_serving(&emulator, "after-nulls").await;
}
