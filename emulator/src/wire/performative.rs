//! Outgoing performatives, encoded with every field present (see the module docs of `wire`).

use serde_amqp::described::Described;
use serde_amqp::descriptor::Descriptor;
use serde_amqp::primitives::{Array, OrderedMap, Symbol};
use serde_amqp::value::Value;

/// An AMQP error condition with its description (`amqp:error` composite, code 0x1d).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    /// The condition symbol, e.g. `amqp:not-found`.
    pub condition: String,
    /// Human-readable description.
    pub description: String,
}

impl AmqpError {
    /// A new error.
    pub fn new(condition: &str, description: impl Into<String>) -> Self {
        Self {
            condition: condition.to_owned(),
            description: description.into(),
        }
    }

    /// The error as an AMQP value, all three fields present.
    pub fn to_value(&self) -> Value {
        described(
            0x1d,
            vec![
                Value::Symbol(Symbol::from(self.condition.as_str())),
                // Descriptions may quote what the client sent: bounded so an error fits a frame.
                Value::String(
                    crate::wire::message::truncate_text(
                        &self.description,
                        crate::wire::message::MAX_DESCRIPTION_LEN,
                    )
                    .into_owned(),
                ),
                Value::Null,
            ],
        )
    }
}

/// Error conditions the emulator uses.
pub mod condition {
    /// The entity does not exist.
    pub const NOT_FOUND: &str = "amqp:not-found";
    /// A request or frame is malformed.
    pub const DECODE_ERROR: &str = "amqp:decode-error";
    /// The operation is refused in this state.
    pub const NOT_ALLOWED: &str = "amqp:not-allowed";
    /// The peer broke a protocol rule.
    pub const INVALID_FIELD: &str = "amqp:invalid-field";
    /// Credentials are missing or wrong.
    pub const UNAUTHORIZED: &str = "amqp:unauthorized-access";
    /// A frame could not be read.
    pub const FRAMING_ERROR: &str = "amqp:connection:framing-error";
    /// A receiver with an equal or higher owner level took the partition.
    pub const LINK_STOLEN: &str = "amqp:link:stolen";
    /// The service detached the link on its own (fault injection uses it).
    pub const DETACH_FORCED: &str = "amqp:link:detach-forced";
    /// A message is larger than the link allows.
    pub const MESSAGE_SIZE_EXCEEDED: &str = "amqp:link:message-size-exceeded";
    /// The server is shutting down or hit an internal problem.
    pub const INTERNAL_ERROR: &str = "amqp:internal-error";
    /// Too many connections or links.
    pub const RESOURCE_LIMIT: &str = "amqp:resource-limit-exceeded";
    /// A performative does not fit in the peer's max-frame-size (AMQP 1.0, 2.8.15).
    pub const FRAME_SIZE_TOO_SMALL: &str = "amqp:frame-size-too-small";
}

/// A described list value.
pub fn described(code: u64, fields: Vec<Value>) -> Value {
    Value::Described(Box::new(Described {
        descriptor: Descriptor::Code(code),
        value: Value::List(fields),
    }))
}

/// An array of symbols (never empty: callers pass at least one).
pub fn symbols(items: &[&str]) -> Value {
    Value::Array(Array(
        items.iter().map(|s| Value::Symbol(Symbol::from(*s))).collect(),
    ))
}

/// A `fields` map with symbol keys.
pub fn fields(entries: Vec<(&str, Value)>) -> Value {
    let mut map = OrderedMap::new();
    for (k, v) in entries {
        map.insert(Value::Symbol(Symbol::from(k)), v);
    }
    Value::Map(map)
}

fn opt<T>(value: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    value.map(f).unwrap_or(Value::Null)
}

fn error_value(error: Option<&AmqpError>) -> Value {
    opt(error, AmqpError::to_value)
}

/// Serialises a value; encoding a `Value` built here cannot fail, but the error is kept.
pub fn encode(value: &Value) -> Result<Vec<u8>, serde_amqp::Error> {
    serde_amqp::to_vec(value)
}

/// `open` (0x10) with all ten fields.
pub fn open(container_id: &str, max_frame_size: u32, idle_timeout_ms: u32) -> Value {
    described(
        0x10,
        vec![
            Value::String(container_id.to_owned()),
            Value::Null,
            Value::Uint(max_frame_size),
            Value::Ushort(u16::MAX),
            Value::Uint(idle_timeout_ms),
            symbols(&["en-US"]),
            symbols(&["en-US"]),
            symbols(&["com.microsoft:eventhubs-emulator"]),
            symbols(&["com.microsoft:eventhubs-emulator"]),
            fields(vec![
                ("product", Value::String("eventhubs-emulator".into())),
                ("version", Value::String(env!("CARGO_PKG_VERSION").into())),
            ]),
        ],
    )
}

/// `begin` (0x11) with all eight fields; handle-max is explicit.
pub fn begin(remote_channel: u16, next_outgoing_id: u32, incoming_window: u32, handle_max: u32) -> Value {
    described(
        0x11,
        vec![
            Value::Ushort(remote_channel),
            Value::Uint(next_outgoing_id),
            Value::Uint(incoming_window),
            Value::Uint(u32::MAX >> 1),
            Value::Uint(handle_max),
            symbols(&["com.microsoft:eventhubs-emulator"]),
            symbols(&["com.microsoft:eventhubs-emulator"]),
            fields(vec![("product", Value::String("eventhubs-emulator".into()))]),
        ],
    )
}

/// The fields of an outgoing `attach`.
#[derive(Debug, Clone)]
pub struct AttachOut {
    /// Link name (echoed).
    pub name: String,
    /// Our handle.
    pub handle: u32,
    /// true when we are the receiver.
    pub role_receiver: bool,
    /// Sender settle mode (0 unsettled, 1 settled, 2 mixed).
    pub snd_settle_mode: u8,
    /// Receiver settle mode (0 first, 1 second).
    pub rcv_settle_mode: u8,
    /// Source terminus, or null to refuse the link.
    pub source: Value,
    /// Target terminus, or null to refuse the link.
    pub target: Value,
    /// Initial delivery count (sender role only).
    pub initial_delivery_count: Option<u32>,
    /// Largest message accepted or sent.
    pub max_message_size: u64,
    /// Offered capabilities (at least one symbol).
    pub offered_capabilities: Vec<String>,
    /// Link properties.
    pub properties: Vec<(String, Value)>,
}

/// `attach` (0x12) with all fourteen fields.
pub fn attach(a: &AttachOut) -> Value {
    let offered: Vec<&str> = a.offered_capabilities.iter().map(String::as_str).collect();
    let props = a
        .properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    described(
        0x12,
        vec![
            Value::String(a.name.clone()),
            Value::Uint(a.handle),
            Value::Bool(a.role_receiver),
            Value::Ubyte(a.snd_settle_mode),
            Value::Ubyte(a.rcv_settle_mode),
            a.source.clone(),
            a.target.clone(),
            Value::Null,
            Value::Bool(false),
            opt(a.initial_delivery_count, Value::Uint),
            Value::Ulong(a.max_message_size),
            if offered.is_empty() {
                Value::Null
            } else {
                symbols(&offered)
            },
            Value::Null,
            fields(props),
        ],
    )
}

/// The fields of an outgoing `flow`.
#[derive(Debug, Clone, Copy)]
pub struct FlowOut {
    /// Our view of the peer's next-outgoing-id.
    pub next_incoming_id: u32,
    /// Transfers we accept before the next flow.
    pub incoming_window: u32,
    /// Our next transfer id.
    pub next_outgoing_id: u32,
    /// Transfers we may send.
    pub outgoing_window: u32,
    /// Link state, when the flow concerns a link: (handle, delivery-count, link-credit, available).
    pub link: Option<(u32, u32, u32, u32)>,
    /// Echo request.
    pub echo: bool,
}

/// `flow` (0x13) with all eleven fields.
pub fn flow(f: &FlowOut) -> Value {
    let (handle, count, credit, available) = match f.link {
        Some((h, d, c, a)) => (Value::Uint(h), Value::Uint(d), Value::Uint(c), Value::Uint(a)),
        None => (Value::Null, Value::Null, Value::Null, Value::Null),
    };
    described(
        0x13,
        vec![
            Value::Uint(f.next_incoming_id),
            Value::Uint(f.incoming_window),
            Value::Uint(f.next_outgoing_id),
            Value::Uint(f.outgoing_window),
            handle,
            count,
            credit,
            available,
            Value::Bool(false),
            Value::Bool(f.echo),
            Value::Null,
        ],
    )
}

/// `transfer` (0x14) with all eleven fields (the payload follows it in the frame).
pub fn transfer(handle: u32, delivery: Option<(u32, &[u8])>, settled: bool, more: bool) -> Value {
    let (id, tag) = match delivery {
        Some((id, tag)) => (Value::Uint(id), Value::Binary(tag.to_vec().into())),
        None => (Value::Null, Value::Null),
    };
    described(
        0x14,
        vec![
            Value::Uint(handle),
            id,
            tag,
            Value::Uint(0),
            Value::Bool(settled),
            Value::Bool(more),
            Value::Null,
            Value::Null,
            Value::Bool(false),
            Value::Bool(false),
            Value::Bool(false),
        ],
    )
}

/// Delivery outcome we report on a disposition.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `accepted` (0x24).
    Accepted,
    /// `rejected` (0x25) with an error.
    Rejected(AmqpError),
}

/// `disposition` (0x15) as the receiver, settling `first..=last`.
pub fn disposition(first: u32, last: u32, outcome: &Outcome) -> Value {
    let state = match outcome {
        Outcome::Accepted => described(0x24, vec![]),
        Outcome::Rejected(e) => described(0x25, vec![e.to_value()]),
    };
    described(
        0x15,
        vec![
            Value::Bool(true),
            Value::Uint(first),
            Value::Uint(last),
            Value::Bool(true),
            state,
            Value::Bool(false),
        ],
    )
}

/// `detach` (0x16).
pub fn detach(handle: u32, closed: bool, error: Option<&AmqpError>) -> Value {
    described(
        0x16,
        vec![Value::Uint(handle), Value::Bool(closed), error_value(error)],
    )
}

/// `end` (0x17).
pub fn end(error: Option<&AmqpError>) -> Value {
    described(0x17, vec![error_value(error)])
}

/// `close` (0x18).
pub fn close(error: Option<&AmqpError>) -> Value {
    described(0x18, vec![error_value(error)])
}

/// `sasl-mechanisms` (0x40).
pub fn sasl_mechanisms() -> Value {
    described(0x40, vec![symbols(&["ANONYMOUS", "PLAIN", "MSSBCBS"])])
}

/// `sasl-outcome` (0x44): code 0 ok, 1 auth failure.
pub fn sasl_outcome(code: u8) -> Value {
    described(0x44, vec![Value::Ubyte(code), Value::Null])
}

/// Splits a frame body into its performative and payload. The performative's bytes pass the
/// bounded validator ([`crate::wire::codec::value_len`]) before fe2o3's decoder sees them.
///
/// # Errors
/// `amqp:decode-error` naming what is wrong.
pub fn decode_performative(
    body: &[u8],
) -> Result<(fe2o3_amqp_types::performatives::Performative, &[u8]), AmqpError> {
    let bad = |why: String| AmqpError::new(condition::DECODE_ERROR, why);
    let len = crate::wire::codec::value_len(body).map_err(|e| bad(format!("performative: {e}")))?;
    let performative = serde_amqp::from_slice(&body[..len]).map_err(|e| bad(format!("performative: {e}")))?;
    Ok((performative, &body[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codec::value_len;

    /// The list count pyamqp relies on, read straight from the encoding.
    fn list_count(bytes: &[u8]) -> usize {
        assert_eq!(&bytes[..2], &[0x00, 0x53]);
        match bytes[3] {
            0xc0 => bytes[5] as usize,
            0xd0 => u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            0x45 => 0,
            other => panic!("not a list: {other:#x}"),
        }
    }

    #[test]
    fn every_field_is_present() {
        let cases: Vec<(Value, usize)> = vec![
            (open("c", 65536, 60_000), 10),
            (begin(0, 1, 5000, 255), 8),
            (
                attach(&AttachOut {
                    name: "l".into(),
                    handle: 0,
                    role_receiver: true,
                    snd_settle_mode: 2,
                    rcv_settle_mode: 0,
                    source: Value::Null,
                    target: Value::Null,
                    initial_delivery_count: None,
                    max_message_size: 1024,
                    offered_capabilities: vec![],
                    properties: vec![],
                }),
                14,
            ),
            (
                flow(&FlowOut {
                    next_incoming_id: 0,
                    incoming_window: 1,
                    next_outgoing_id: 0,
                    outgoing_window: 1,
                    link: None,
                    echo: false,
                }),
                11,
            ),
            (transfer(0, Some((0, b"t")), true, false), 11),
            (disposition(0, 0, &Outcome::Accepted), 6),
            (detach(0, true, None), 3),
            (end(None), 1),
            (close(None), 1),
        ];
        for (value, count) in cases {
            let bytes = encode(&value).unwrap();
            assert_eq!(value_len(&bytes).unwrap(), bytes.len());
            assert_eq!(list_count(&bytes), count, "{value:?}");
        }
    }

    #[test]
    fn decodes_with_fe2o3_types() {
        use fe2o3_amqp_types::performatives::Performative;
        let bytes = encode(&begin(3, 1, 5000, 255)).unwrap();
        let decoded: Performative = serde_amqp::from_slice(&bytes).unwrap();
        match decoded {
            Performative::Begin(b) => {
                assert_eq!(b.remote_channel, Some(3));
                assert_eq!(b.handle_max.0, 255);
            }
            other => panic!("{other:?}"),
        }
    }
}
