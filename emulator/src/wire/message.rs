//! AMQP messages: splitting into sections, Event Hubs batches, annotations, request/response.

use serde_amqp::described::Described;
use serde_amqp::descriptor::Descriptor;
use serde_amqp::primitives::{OrderedMap, Symbol, Timestamp};
use serde_amqp::value::Value;

use super::codec::{CodecError, descriptor_code, value_len};
use super::performative::described;

/// Message format of an Event Hubs batch: each Data section holds one encoded message.
pub const BATCH_MESSAGE_FORMAT: u32 = 0x8001_3700;

/// Section descriptor codes (AMQP 1.0, 3.2).
pub mod section {
    /// header
    pub const HEADER: u64 = 0x70;
    /// delivery-annotations
    pub const DELIVERY_ANNOTATIONS: u64 = 0x71;
    /// message-annotations
    pub const MESSAGE_ANNOTATIONS: u64 = 0x72;
    /// properties
    pub const PROPERTIES: u64 = 0x73;
    /// application-properties
    pub const APPLICATION_PROPERTIES: u64 = 0x74;
    /// data
    pub const DATA: u64 = 0x75;
    /// amqp-value
    pub const AMQP_VALUE: u64 = 0x77;
}

/// Annotation keys the service stamps on every event.
pub mod annotation {
    /// Sequence number (long).
    pub const SEQUENCE_NUMBER: &str = "x-opt-sequence-number";
    /// Offset (string).
    pub const OFFSET: &str = "x-opt-offset";
    /// Enqueued time (timestamp).
    pub const ENQUEUED_TIME: &str = "x-opt-enqueued-time";
    /// Partition key (string).
    pub const PARTITION_KEY: &str = "x-opt-partition-key";
}

/// One section: its descriptor code and its complete encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// Descriptor code (0x70..=0x78).
    pub code: u64,
    /// The whole described value.
    pub bytes: &'a [u8],
}

/// Splits an encoded message into sections, checking each is a complete described value.
pub fn split_sections(mut bytes: &[u8]) -> Result<Vec<Section<'_>>, CodecError> {
    let mut sections = Vec::new();
    while !bytes.is_empty() {
        let len = value_len(bytes)?;
        let code = descriptor_code(bytes).ok_or(CodecError::Unexpected("message section without a code"))?;
        if !(0x70..=0x78).contains(&code) {
            return Err(CodecError::Unexpected("unknown message section"));
        }
        sections.push(Section {
            code,
            bytes: &bytes[..len],
        });
        bytes = &bytes[len..];
    }
    Ok(sections)
}

/// The value inside a described section.
pub fn section_value(section: &Section<'_>) -> Result<Value, CodecError> {
    match serde_amqp::from_slice::<Value>(section.bytes) {
        Ok(Value::Described(d)) => Ok(d.value),
        Ok(_) => Err(CodecError::Unexpected("section is not described")),
        Err(_) => Err(CodecError::Unexpected("section does not decode")),
    }
}

/// The bytes of a Data section's binary.
pub fn data_section_bytes<'a>(section: &Section<'a>) -> Result<&'a [u8], CodecError> {
    // 0x00, descriptor (0x53 0x75 or a ulong), then vbin8 / vbin32.
    let desc_len = value_len(&section.bytes[1..])?;
    let body = section.bytes.get(1 + desc_len..).ok_or(CodecError::Truncated)?;
    match body.first() {
        Some(0xa0) => body.get(2..).ok_or(CodecError::Truncated),
        Some(0xb0) => body.get(5..).ok_or(CodecError::Truncated),
        _ => Err(CodecError::Unexpected("data section is not binary")),
    }
}

/// The individual event messages of a transfer: the Data sections of a batch, or the message.
pub fn event_messages(payload: &[u8], message_format: u32) -> Result<Vec<&[u8]>, CodecError> {
    if message_format != BATCH_MESSAGE_FORMAT {
        split_sections(payload)?;
        return Ok(vec![payload]);
    }
    let sections = split_sections(payload)?;
    let mut events = Vec::new();
    for s in sections.iter().filter(|s| s.code == section::DATA) {
        let inner = data_section_bytes(s)?;
        split_sections(inner)?;
        events.push(inner);
    }
    Ok(events)
}

/// The message annotations of an encoded message, as a map (empty when absent).
pub fn message_annotations(message: &[u8]) -> Result<OrderedMap<Value, Value>, CodecError> {
    for s in split_sections(message)? {
        if s.code == section::MESSAGE_ANNOTATIONS {
            return match section_value(&s)? {
                Value::Map(map) => Ok(map),
                _ => Err(CodecError::Unexpected("message annotations are not a map")),
            };
        }
    }
    Ok(OrderedMap::new())
}

/// The `x-opt-partition-key` annotation of a message, if it carries one.
pub fn partition_key(annotations: &OrderedMap<Value, Value>) -> Option<String> {
    match annotations.get(&Value::Symbol(Symbol::from(annotation::PARTITION_KEY))) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// What the service stamps on a stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Sequence number.
    pub sequence_number: i64,
    /// Offset.
    pub offset: u64,
    /// Enqueued time, ms since the Unix epoch.
    pub enqueued_ms: i64,
    /// Partition key the event was sent with.
    pub partition_key: Option<String>,
}

/// A stored event ready to deliver: `head` (header section) and `tail` (message annotations with
/// the service's stamps, then the sender's remaining sections). Delivery annotations, when a
/// receiver asks for runtime metrics, go between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The header section, if the sender sent one.
    pub head: Vec<u8>,
    /// Message annotations and everything after.
    pub tail: Vec<u8>,
}

/// Re-encodes an event message with the service's annotations merged into its own.
pub fn stamp_event(message: &[u8], stamp: &Stamp) -> Result<EncodedEvent, CodecError> {
    let sections = split_sections(message)?;
    let mut head = Vec::new();
    let mut annotations = OrderedMap::new();
    let mut rest = Vec::with_capacity(message.len());
    for s in &sections {
        match s.code {
            section::HEADER => head.extend_from_slice(s.bytes),
            section::DELIVERY_ANNOTATIONS => {}
            section::MESSAGE_ANNOTATIONS => {
                if let Value::Map(map) = section_value(s)? {
                    annotations = map;
                }
            }
            _ => rest.extend_from_slice(s.bytes),
        }
    }
    let sym = |s: &str| Value::Symbol(Symbol::from(s));
    if let Some(key) = &stamp.partition_key {
        annotations.insert(sym(annotation::PARTITION_KEY), Value::String(key.clone()));
    }
    annotations.insert(
        sym(annotation::SEQUENCE_NUMBER),
        Value::Long(stamp.sequence_number),
    );
    annotations.insert(sym(annotation::OFFSET), Value::String(stamp.offset.to_string()));
    annotations.insert(
        sym(annotation::ENQUEUED_TIME),
        Value::Timestamp(Timestamp::from_milliseconds(stamp.enqueued_ms)),
    );
    let mut tail = encode_section(section::MESSAGE_ANNOTATIONS, Value::Map(annotations))?;
    tail.extend_from_slice(&rest);
    Ok(EncodedEvent { head, tail })
}

/// Encodes one described section.
pub fn encode_section(code: u64, value: Value) -> Result<Vec<u8>, CodecError> {
    let section = Value::Described(Box::new(Described {
        descriptor: Descriptor::Code(code),
        value,
    }));
    serde_amqp::to_vec(&section).map_err(|_| CodecError::Unexpected("value does not encode"))
}

/// A request on `$cbs` or `$management`.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `properties.message-id` (echoed as the response's correlation-id).
    pub message_id: Value,
    /// `properties.reply-to`, if any.
    pub reply_to: Option<String>,
    /// Application properties with string keys.
    pub application_properties: Vec<(String, Value)>,
    /// The amqp-value body.
    pub body: Value,
}

impl Request {
    /// An application property by name.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.application_properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// An application property that is a string (or symbol).
    pub fn string_property(&self, name: &str) -> Option<&str> {
        match self.property(name)? {
            Value::String(s) => Some(s),
            Value::Symbol(s) => Some(&s.0),
            _ => None,
        }
    }
}

/// Decodes a request message.
pub fn parse_request(message: &[u8]) -> Result<Request, CodecError> {
    let mut request = Request {
        message_id: Value::Null,
        ..Request::default()
    };
    for s in split_sections(message)? {
        match s.code {
            section::PROPERTIES => {
                if let Value::List(fields) = section_value(&s)? {
                    request.message_id = fields.first().cloned().unwrap_or(Value::Null);
                    request.reply_to = match fields.get(4) {
                        Some(Value::String(s)) => Some(s.clone()),
                        _ => None,
                    };
                }
            }
            section::APPLICATION_PROPERTIES => {
                if let Value::Map(map) = section_value(&s)? {
                    for (k, v) in map {
                        match k {
                            Value::String(k) => request.application_properties.push((k, v)),
                            Value::Symbol(k) => request.application_properties.push((k.0, v)),
                            _ => {}
                        }
                    }
                }
            }
            section::AMQP_VALUE => request.body = section_value(&s)?,
            _ => {}
        }
    }
    Ok(request)
}

/// Longest `status-description` sent: descriptions may quote what the client sent, and a
/// response waits in memory until the client gives credit.
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn truncate_text(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}

/// Encodes a response: correlation-id, status in application properties, amqp-value body.
/// The description is cut to [`MAX_DESCRIPTION_LEN`] bytes.
pub fn encode_response(
    correlation_id: &Value,
    status: i32,
    description: &str,
    error_condition: Option<&str>,
    body: Value,
) -> Result<Vec<u8>, CodecError> {
    let properties = vec![
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        correlation_id.clone(),
    ];
    let mut app = OrderedMap::new();
    app.insert(Value::String("status-code".into()), Value::Int(status));
    app.insert(
        Value::String("status-description".into()),
        Value::String(truncate_text(description, MAX_DESCRIPTION_LEN).into_owned()),
    );
    if let Some(condition) = error_condition {
        app.insert(
            Value::String("error-condition".into()),
            Value::Symbol(Symbol::from(condition)),
        );
    }
    let mut out = serde_amqp::to_vec(&described(section::PROPERTIES, properties))
        .map_err(|_| CodecError::Unexpected("properties do not encode"))?;
    out.extend(encode_section(section::APPLICATION_PROPERTIES, Value::Map(app))?);
    out.extend(encode_section(section::AMQP_VALUE, body)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate_text("short", 10), "short");
        let long = "é".repeat(100);
        let cut = truncate_text(&long, 11);
        assert!(cut.len() <= 11, "{cut}");
        assert!(cut.ends_with('…'));
        let response =
            encode_response(&Value::Ulong(1), 401, &"x".repeat(100_000), None, Value::Null).unwrap();
        assert!(response.len() < MAX_DESCRIPTION_LEN + 200, "{}", response.len());
    }

    use super::*;

    fn data_section(bytes: &[u8]) -> Vec<u8> {
        encode_section(section::DATA, Value::Binary(bytes.to_vec().into())).unwrap()
    }

    #[test]
    fn batch_is_split_into_events() {
        let inner1 = data_section(b"one");
        let inner2 = data_section(b"two");
        let mut outer = encode_section(section::MESSAGE_ANNOTATIONS, Value::Map(OrderedMap::new())).unwrap();
        outer.extend(data_section(&inner1));
        outer.extend(data_section(&inner2));
        let events = event_messages(&outer, BATCH_MESSAGE_FORMAT).unwrap();
        assert_eq!(events, vec![inner1.as_slice(), inner2.as_slice()]);
        assert_eq!(event_messages(&inner1, 0).unwrap(), vec![inner1.as_slice()]);
        assert!(event_messages(&[0x00, 0x53], 0).is_err());
    }

    #[test]
    fn stamp_merges_annotations() {
        let mut ann = OrderedMap::new();
        ann.insert(
            Value::Symbol(Symbol::from("x-opt-partition-key")),
            Value::String("k".into()),
        );
        ann.insert(Value::Symbol(Symbol::from("mine")), Value::Int(1));
        let mut msg = encode_section(section::MESSAGE_ANNOTATIONS, Value::Map(ann)).unwrap();
        msg.extend(data_section(b"body"));
        let found = message_annotations(&msg).unwrap();
        assert_eq!(partition_key(&found).as_deref(), Some("k"));
        let stamped = stamp_event(
            &msg,
            &Stamp {
                sequence_number: 7,
                offset: 42,
                enqueued_ms: 1000,
                partition_key: Some("k".into()),
            },
        )
        .unwrap();
        assert!(stamped.head.is_empty());
        let sections = split_sections(&stamped.tail).unwrap();
        assert_eq!(sections.len(), 2);
        let map = message_annotations(&stamped.tail).unwrap();
        assert_eq!(
            map.get(&Value::Symbol(Symbol::from("mine"))),
            Some(&Value::Int(1))
        );
        assert_eq!(
            map.get(&Value::Symbol(Symbol::from("x-opt-sequence-number"))),
            Some(&Value::Long(7))
        );
        assert_eq!(
            map.get(&Value::Symbol(Symbol::from("x-opt-offset"))),
            Some(&Value::String("42".into()))
        );
    }

    #[test]
    fn request_round_trip() {
        let response = encode_response(&Value::Ulong(9), 200, "OK", None, Value::Int(1)).unwrap();
        let parsed = parse_request(&response).unwrap();
        assert_eq!(parsed.property("status-code"), Some(&Value::Int(200)));
        assert_eq!(parsed.body, Value::Int(1));
    }
}
