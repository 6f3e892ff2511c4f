//! Entry points for fuzzers: each runs, on arbitrary bytes, the decoders the emulator runs on
//! what a client sends, in the order it runs them. None may panic, and each decodes at most
//! about two values per input byte (see [`crate::wire::codec::MAX_ZERO_WIDTH_ELEMENTS`]).
//!
//! The cargo-fuzz targets in `emulator/fuzz` call these, and so does the bounded run of the
//! test command (`emulator/tests/fuzz_decoders.rs`), over the seed corpus of real client frames
//! in `emulator/fuzz/corpus`.

use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use fe2o3_amqp_types::performatives::Performative;

use crate::auth::Authorization;
use crate::broker::Broker;
use crate::cbs::{JwtPolicy, handle_put_token};
use crate::config::{EmulatorConfig, HubConfig, SasKey};
use crate::connection::MAX_FRAME_SIZE;
use crate::management::handle_read;
use crate::wire::frame::read_frame;
use crate::wire::message::{
    BATCH_MESSAGE_FORMAT, Stamp, event_messages, message_annotations, parse_request, partition_key,
    stamp_event,
};
use crate::wire::performative::decode_performative;

/// The frame reader, then the performative decoder on each frame read, then (for transfers)
/// the message decoders on its payload: what one connection does with its bytes.
pub fn frames(data: &[u8]) {
    let mut rest = data;
    loop {
        let before = rest.len();
        // Reading from a slice never waits: one poll finishes it.
        let read = {
            let mut future = pin!(read_frame(&mut rest, MAX_FRAME_SIZE));
            match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(result) => result,
                Poll::Pending => return,
            }
        };
        let Ok(frame) = read else { return };
        if !frame.body.is_empty() {
            performative(&frame.body);
        }
        if rest.len() >= before {
            return;
        }
    }
}

/// A frame body: the performative, and a transfer's payload as an event message and a batch.
pub fn performative(body: &[u8]) {
    if let Ok((Performative::Transfer(transfer), payload)) = decode_performative(body) {
        let format = transfer.message_format.unwrap_or(0);
        message_with_format(payload, format);
    }
}

/// A message as a publisher link reads it: plain and as a batch.
pub fn message(data: &[u8]) {
    message_with_format(data, 0);
    message_with_format(data, BATCH_MESSAGE_FORMAT);
}

fn message_with_format(data: &[u8], format: u32) {
    let Ok(events) = event_messages(data, format) else {
        return;
    };
    let key = message_annotations(data).ok().and_then(|a| partition_key(&a));
    for (i, event) in events.into_iter().enumerate() {
        let stamp = Stamp {
            sequence_number: i64::try_from(i).unwrap_or(i64::MAX),
            offset: 0,
            enqueued_ms: 0,
            partition_key: key.clone(),
        };
        let _ = stamp_event(event, &stamp);
    }
}

/// A SASL frame body, as the SASL layer reads a sasl-init.
pub fn sasl(body: &[u8]) {
    if let Ok(init) = crate::sasl::parse_sasl_init(body) {
        let _ = crate::sasl::accepts(&init, &SasKey::default());
    }
}

/// A `$cbs` request message, answered under both JWT policies.
pub fn cbs(message: &[u8]) {
    if let Ok(request) = parse_request(message) {
        let key = SasKey::default();
        let _ = handle_put_token(&request, &key, JwtPolicy::Refuse);
        let _ = handle_put_token(&request, &key, JwtPolicy::AcceptUnverified);
    }
}

/// A `$management` request message, answered for a connection without and with every right.
pub fn management(message: &[u8]) {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    let broker = BROKER.get_or_init(|| {
        let mut config = EmulatorConfig::default();
        config.hubs.insert(
            "orders".into(),
            HubConfig {
                partitions: 4,
                consumer_groups: vec!["$default".into()],
            },
        );
        Broker::new(config)
    });
    if let Ok(request) = parse_request(message) {
        let _ = handle_read(&request, broker, &Authorization::default());
        let _ = handle_read(&request, broker, &Authorization::everything());
    }
}
