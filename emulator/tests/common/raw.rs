//! A raw AMQP client: hand-built frames written to a TCP socket, and the server's answer split
//! back into frames. For the hostile inputs no real client would send.

use std::time::Duration;

use eventhubs_emulator::wire::frame::{FRAME_TYPE_AMQP, encode_frame};
use eventhubs_emulator::wire::message::encode_section;
use eventhubs_emulator::wire::performative::{self as perf, AttachOut, described, encode};
use serde_amqp::primitives::OrderedMap;
use serde_amqp::value::Value;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

pub const AMQP_HEADER: &[u8] = b"AMQP\x00\x01\x00\x00";

/// Bytes a client sends, built frame by frame.
#[derive(Default)]
pub struct Script {
    pub bytes: Vec<u8>,
}

impl Script {
    /// The AMQP header and an `open` announcing `max_frame_size`.
    pub fn opened(max_frame_size: u32) -> Self {
        let mut script = Script {
            bytes: AMQP_HEADER.to_vec(),
        };
        script.frame(0, &perf::open("raw-client", max_frame_size, 0), &[]);
        script
    }

    pub fn frame(&mut self, channel: u16, performative: &Value, payload: &[u8]) -> &mut Self {
        let body = encode(performative).unwrap();
        encode_frame(&mut self.bytes, FRAME_TYPE_AMQP, channel, &[&body, payload]);
        self
    }

    pub fn begin(&mut self, channel: u16) -> &mut Self {
        let begin = described(
            0x11,
            vec![
                Value::Null,
                Value::Uint(0),
                Value::Uint(100_000),
                Value::Uint(100_000),
                Value::Uint(u32::MAX),
            ],
        );
        self.frame(channel, &begin, &[])
    }

    /// Attaches a link on `address`: the client sends (`sender`) or receives on it.
    pub fn attach(
        &mut self,
        channel: u16,
        handle: u32,
        name: &str,
        address: &str,
        sender: bool,
    ) -> &mut Self {
        let terminus = described(0x28, vec![Value::String(address.into())]);
        let target = described(0x29, vec![Value::String(address.into())]);
        let attach = AttachOut {
            name: name.into(),
            handle,
            role_receiver: !sender,
            snd_settle_mode: 0,
            rcv_settle_mode: 0,
            source: if sender { Value::Null } else { terminus },
            target: if sender {
                target
            } else {
                described(0x29, vec![Value::String("reply".into())])
            },
            initial_delivery_count: sender.then_some(0),
            max_message_size: 0,
            offered_capabilities: vec![],
            properties: vec![],
        };
        self.frame(channel, &perf::attach(&attach), &[])
    }

    /// One transfer frame of delivery `id` on `handle`, with `more` when it continues.
    pub fn transfer(&mut self, channel: u16, handle: u32, id: u32, more: bool, payload: &[u8]) -> &mut Self {
        let tag = id.to_be_bytes();
        self.frame(
            channel,
            &perf::transfer(handle, Some((id, &tag)), false, more),
            payload,
        )
    }
}

/// An `open` body of 46 bytes whose four fields are arrays of 2^32 - 1 nulls each (10 bytes per
/// array): before the validator counted zero-width elements, it held a worker for seconds.
pub fn zero_width_open() -> Vec<u8> {
    let nulls = [0xf0u8, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40];
    let mut open = vec![0x00, 0x53, 0x10, 0xc0, 0x00, 0x04];
    for _ in 0..4 {
        open.extend(nulls);
    }
    open[4] = u8::try_from(open.len() - 5).unwrap_or(u8::MAX);
    open
}

/// A `$cbs` put-token request message for `audience` with `token`.
pub fn put_token_message(id: u64, audience: &str, token: &str) -> Vec<u8> {
    put_token_message_with_id(Value::Ulong(id), audience, token)
}

/// A put-token request whose message-id (echoed as the answer's correlation-id) is `id`.
pub fn put_token_message_with_id(id: Value, audience: &str, token: &str) -> Vec<u8> {
    let mut props = OrderedMap::new();
    for (k, v) in [
        ("operation", "put-token"),
        ("type", "servicebus.windows.net:sastoken"),
        ("name", audience),
    ] {
        props.insert(Value::String(k.into()), Value::String(v.into()));
    }
    let mut message = encode(&described(
        0x73,
        vec![
            id,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::String("reply".into()),
        ],
    ))
    .unwrap();
    message.extend(encode_section(0x74, Value::Map(props)).unwrap());
    message.extend(encode_section(0x77, Value::String(token.into())).unwrap());
    message
}

/// One frame of the server's answer.
#[derive(Debug)]
pub struct Frame {
    pub size: usize,
    pub channel: u16,
    pub body: Vec<u8>,
}

impl Frame {
    /// The performative's descriptor code (0x10 open … 0x18 close), None for a heartbeat.
    pub fn code(&self) -> Option<u8> {
        (self.body.len() >= 3 && self.body[0] == 0x00 && self.body[1] == 0x53).then(|| self.body[2])
    }

    /// The error condition this frame carries (`amqp:…`), if any.
    pub fn condition(&self) -> Option<String> {
        condition_in(&self.body)
    }
}

/// The first `amqp:…` symbol in `bytes`.
pub fn condition_in(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let start = text.find("amqp:")?;
    Some(
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
            .collect(),
    )
}

/// Splits what the server sent after its protocol header into frames (a torn last frame is
/// left out).
pub fn frames(answer: &[u8]) -> Vec<Frame> {
    let mut at = if answer.starts_with(AMQP_HEADER) { 8 } else { 0 };
    let mut out = Vec::new();
    while answer.len() >= at + 8 {
        let size = u32::from_be_bytes([answer[at], answer[at + 1], answer[at + 2], answer[at + 3]]) as usize;
        if size < 8 || answer.len() < at + size {
            break;
        }
        let doff = usize::from(answer[at + 4]) * 4;
        out.push(Frame {
            size,
            channel: u16::from_be_bytes([answer[at + 6], answer[at + 7]]),
            body: answer[at + doff.max(8)..at + size].to_vec(),
        });
        at += size;
    }
    out
}

/// Reads until the server closes the socket (a reset counts as closed; the bytes before it
/// are kept), failing unless it does within `limit`.
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    read_all_or_reset(stream, limit).await.0
}

/// Reads until the server closes; also says whether reading ended in a reset rather than an
/// orderly close (the bytes before it are kept). Fails unless it ends within `limit`.
pub async fn read_all_or_reset<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut reset = false;
    let reading = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Err(_) => {
                    reset = true;
                    break;
                }
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    };
    if tokio::time::timeout(limit, reading).await.is_err() {
        panic!("the server did not close the connection within {limit:?}");
    }
    (all, reset)
}
