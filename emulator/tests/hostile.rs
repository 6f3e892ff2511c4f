//! What a hostile client can make the emulator do: the spec's framing rules (frame sizes,
//! handle-max, a close that arrives), and the per-connection caps of `eventhubs_emulator::limits`
//! answered with the service's errors without touching other connections.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::raw::{Script, frames, put_token_message, read_all_or_reset, read_until_closed};
use common::{Client, start};
use eventhubs_emulator::SasKey;
use eventhubs_emulator::auth::MAX_GRANTS;
use eventhubs_emulator::broker::now_ms;
use eventhubs_emulator::cbs::sas_token;
use eventhubs_emulator::limits::{MAX_BUFFERED_REQUEST_BYTES, MAX_LINKS, MAX_REQUEST_SIZE, MAX_SESSIONS};
use fe2o3_amqp::types::primitives::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The emulator still answers a well-formed client's management request.
async fn still_serving(emulator: &eventhubs_emulator::EmulatorHandle) {
    let mut client = Client::connect(emulator).await;
    let (status, description, _) = client
        .request(
            "$management",
            &[
                ("operation", "READ"),
                ("name", "orders"),
                ("type", "com.microsoft:eventhub"),
            ],
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{description}");
    client.close().await;
}

async fn send(emulator: &eventhubs_emulator::EmulatorHandle, script: &Script) -> TcpStream {
    let mut stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
    stream.write_all(&script.bytes).await.unwrap();
    stream
}

#[tokio::test]
async fn a_handle_above_handle_max_is_a_framing_error() {
    let emulator = start().await;
    let mut script = Script::opened(64 * 1024);
    script.begin(0).attach(0, 5000, "too-high", "$cbs", true);
    let mut stream = send(&emulator, &script).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let close = frames(&answer).into_iter().find(|f| f.code() == Some(0x18));
    let condition = close.as_ref().and_then(|f| f.condition());
    assert_eq!(
        condition.as_deref(),
        Some("amqp:connection:framing-error"),
        "AMQP 1.0 2.7.3: {close:?}"
    );
    still_serving(&emulator).await;
}

#[tokio::test]
async fn no_frame_exceeds_the_clients_max_frame_size() {
    let emulator = start().await;
    // A link whose name alone makes the echoed attach larger than the client's 512 bytes.
    let mut script = Script::opened(512);
    script
        .begin(0)
        .attach(0, 0, "small", "$cbs", true)
        .attach(0, 1, &"n".repeat(600), "$cbs", true);
    let mut stream = send(&emulator, &script).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let frames = frames(&answer);
    assert!(
        frames.iter().filter(|f| f.code() == Some(0x12)).count() >= 1,
        "the small attach is answered: {frames:?}"
    );
    for frame in &frames {
        assert!(
            frame.size <= 512,
            "a {}-byte frame went to a client that announced 512: {frame:?}",
            frame.size
        );
    }
    let close = frames.iter().find(|f| f.code() == Some(0x18));
    assert_eq!(
        close.and_then(|f| f.condition()).as_deref(),
        Some("amqp:frame-size-too-small"),
        "the attach that cannot fit closes the connection with the spec's condition: {frames:?}"
    );
    still_serving(&emulator).await;
}

/// With input still unread when the emulator closes, dropping the socket would send a reset
/// that can destroy the `close` frame before the client reads it (3 runs in 5 did, before).
#[tokio::test]
async fn the_close_frame_reaches_a_client_whose_input_is_still_unread() {
    let emulator = start().await;
    for round in 0..5 {
        let mut script = Script::opened(64 * 1024);
        for channel in 0..300u16 {
            script.begin(channel);
        }
        // Plenty more behind the session that breaks the cap: heartbeats the server never reads.
        for _ in 0..50_000 {
            script.bytes.extend_from_slice(&[0, 0, 0, 8, 2, 0, 0, 0]);
        }
        let stream = TcpStream::connect(emulator.local_addr()).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let bytes = script.bytes.clone();
        let writing = tokio::spawn(async move {
            let _ = writer.write_all(&bytes).await;
            writer
        });
        let (all, reset) = read_all_or_reset(&mut reader, Duration::from_secs(10)).await;
        let _ = writing.await;
        let frames = frames(&all);
        let begins = frames.iter().filter(|f| f.code() == Some(0x11)).count();
        assert_eq!(begins, MAX_SESSIONS, "round {round}");
        let close = frames.iter().find(|f| f.code() == Some(0x18));
        assert_eq!(
            close.and_then(|f| f.condition()).as_deref(),
            Some("amqp:resource-limit-exceeded"),
            "round {round}: the close frame with its error arrived (reset: {reset}, {} bytes)",
            all.len()
        );
        assert!(!reset, "round {round}: the socket was reset instead of closed");
    }
    still_serving(&emulator).await;
}

#[tokio::test]
async fn a_request_over_the_size_cap_is_rejected_and_the_connection_lives() {
    let emulator = start().await;
    // The cap is announced on the attach, so a real client refuses to send such a request.
    let mut client = Client::connect_without_token(&emulator).await;
    let mut sender = fe2o3_amqp::Sender::attach(&mut client.session, "big", "$cbs")
        .await
        .unwrap();
    let message = fe2o3_amqp::types::messaging::Message::builder()
        .value(Value::String("x".repeat(MAX_REQUEST_SIZE + 1)))
        .build();
    let text = format!("{:?}", sender.send(message).await);
    assert!(text.contains(&format!("max_size: {MAX_REQUEST_SIZE}")), "{text}");
    client.close().await;

    // A raw client sends it anyway: rejected, and the same link then puts a token.
    let key = SasKey::default();
    let token = sas_token("sb://localhost/", &key, now_ms() / 1000 + 600);
    let mut script = Script::opened(64 * 1024);
    script.begin(0);
    script.attach(0, 0, "cbs", "$cbs", true);
    script.attach(0, 1, "cbs-reply", "$cbs", false);
    script.frame(0, &credit(1, 10), &[]);
    let oversized = put_token_message(1, "sb://localhost/orders", &"x".repeat(MAX_REQUEST_SIZE));
    let (first, rest) = oversized.split_at(MAX_REQUEST_SIZE / 2);
    script.transfer(0, 0, 0, true, first);
    script.transfer(0, 0, 0, false, rest);
    script.transfer(
        0,
        0,
        1,
        false,
        &put_token_message(2, "sb://localhost/orders", &token),
    );
    let stream = send(&emulator, &script).await;
    let all = read_until(stream, "Accepted", Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.contains("amqp:link:message-size-exceeded"),
        "the oversized request is rejected"
    );
    assert!(
        text.contains(&format!("maximum size of {MAX_REQUEST_SIZE} bytes")),
        "and says the cap"
    );
}

/// A flow giving `credit` on `handle`.
fn credit(handle: u32, credit: u32) -> Value {
    use eventhubs_emulator::wire::performative::{FlowOut, flow};
    flow(&FlowOut {
        next_incoming_id: 0,
        incoming_window: 100_000,
        next_outgoing_id: 0,
        outgoing_window: 100_000,
        link: Some((handle, 0, credit, 0)),
        echo: false,
    })
}

/// Reads until `needle` shows in the answer (the connection must stay open meanwhile), failing
/// after `limit`.
async fn read_until(stream: TcpStream, needle: &str, limit: Duration) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let (mut reader, _writer) = stream.into_split();
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let found = tokio::time::timeout(limit, async {
        loop {
            let n = reader.read(&mut buf).await.unwrap_or(0);
            assert!(
                n > 0,
                "the connection was closed before {needle:?} arrived: {:?}",
                String::from_utf8_lossy(&all)
            );
            all.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&all).contains(needle) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "{needle:?} did not arrive within {limit:?}");
    all
}

#[tokio::test]
async fn unfinished_requests_are_capped_per_connection_without_a_token() {
    let emulator = start().await;
    let mut script = Script::opened(64 * 1024);
    script.begin(0);
    // Each link holds a request just under the size cap, never finished.
    let chunk = vec![0x41u8; MAX_REQUEST_SIZE - 1024];
    let links = MAX_BUFFERED_REQUEST_BYTES / chunk.len() + 2;
    for handle in 0..links as u32 {
        script.attach(0, handle, &format!("l{handle}"), "$cbs", true);
        script.transfer(0, handle, handle, true, &chunk);
    }
    let mut stream = send(&emulator, &script).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let close = frames(&answer).into_iter().find(|f| f.code() == Some(0x18));
    let condition = close.as_ref().and_then(|f| f.condition());
    assert_eq!(
        condition.as_deref(),
        Some("amqp:resource-limit-exceeded"),
        "{close:?}"
    );
    let text = String::from_utf8_lossy(&close.unwrap().body).into_owned();
    assert!(
        text.contains("unfinished $cbs/$management request deliveries"),
        "{text}"
    );
    still_serving(&emulator).await;
}

#[tokio::test]
async fn links_beyond_the_cap_are_refused_not_the_connection() {
    let emulator = start().await;
    let mut script = Script::opened(256 * 1024);
    let per_session = 1024u32;
    let sessions = (MAX_LINKS as u32).div_ceil(per_session) + 1;
    for channel in 0..sessions {
        script.begin(channel as u16);
    }
    let mut n = 0u32;
    'attach: for channel in 0..sessions {
        for handle in 0..per_session {
            if n as usize > MAX_LINKS {
                break 'attach;
            }
            script.attach(channel as u16, handle, &format!("r{n}"), "$cbs", false);
            n += 1;
        }
    }
    let stream = send(&emulator, &script).await;
    // Only the extra attach is refused: the connection stays open.
    let all = read_until(stream, "amqp:resource-limit-exceeded", Duration::from_secs(20)).await;
    let attaches = frames(&all).iter().filter(|f| f.code() == Some(0x12)).count();
    assert!(attaches > MAX_LINKS, "{attaches} attaches answered");
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.contains(&format!("at most {MAX_LINKS} are allowed")),
        "the refusal says why"
    );
    still_serving(&emulator).await;
}

#[tokio::test]
async fn grants_are_capped_per_connection_with_a_403() {
    let emulator = start().await;
    let key = SasKey::default();
    let expires = now_ms() / 1000 + 600;
    // A namespace-wide token may be put for any audience: distinct audiences, one connection.
    let token = sas_token("sb://localhost/", &key, expires);
    let mut script = Script::opened(256 * 1024);
    script.begin(0);
    script.attach(0, 0, "cbs", "$cbs", true);
    script.attach(0, 1, "cbs-reply", "$cbs", false);
    // Credit for every answer on the reply link (handle 1).
    script.frame(0, &credit(1, 100_000), &[]);
    let total = MAX_GRANTS as u32 + 1;
    for i in 0..total {
        let message = put_token_message(u64::from(i), &format!("sb://localhost/hub{i}"), &token);
        script.transfer(0, 0, i, false, &message);
    }
    let stream = send(&emulator, &script).await;
    // The connection stays open: only the token beyond the cap is refused.
    let all = read_until(stream, "amqp:resource-limit-exceeded", Duration::from_secs(30)).await;
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.contains("put a namespace or hub token"),
        "the answer says what to do instead"
    );
    // Every earlier token was accepted: count the 202s before the refusal.
    let refused_at = text.find("amqp:resource-limit-exceeded").unwrap();
    let accepted = text[..refused_at].matches("Accepted").count();
    assert_eq!(accepted, MAX_GRANTS, "tokens up to the cap are accepted");
    still_serving(&emulator).await;
}
