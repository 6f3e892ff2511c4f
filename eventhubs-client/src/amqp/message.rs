//! Event <-> AMQP message conversion.

use fe2o3_amqp::link::delivery::Sendable;
use fe2o3_amqp::types::messaging::annotations::OwnedKey;
use fe2o3_amqp::types::messaging::message::__private::Serializable;
use fe2o3_amqp::types::messaging::{
    ApplicationProperties, Batch, Body, Data, Message, MessageAnnotations, Properties,
};
use fe2o3_amqp::types::primitives::{Binary, Symbol, Value};
use time::OffsetDateTime;

use crate::amqp::errors::{Failure, classify};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{BodyType, EventData, LastEnqueuedEventProperties, ReceivedEvent};
use crate::properties::{MessageId, PropertyValue, time_from_ms};

/// The message format of an Event Hubs batch: each data section is one encoded message.
pub(crate) const BATCH_FORMAT: u32 = 0x8001_3700;

/// The annotation naming an event's partition key.
pub(crate) const PARTITION_KEY: &str = "x-opt-partition-key";

/// One event as an AMQP message with a single data section: its application properties in
/// their AMQP types, message id, content type and correlation id, and the partition key as the
/// `x-opt-partition-key` annotation (as the official SDKs send it).
///
/// # Errors
/// `InvalidInput` naming the property that is not a simple AMQP value.
pub(crate) fn single(event: &EventData, partition_key: Option<&str>) -> Result<Message<Data>> {
    let mut builder = Message::builder();
    if !event.properties.is_empty() {
        let mut app = ApplicationProperties::builder();
        for (key, value) in &event.properties {
            app = app.insert(key.clone(), value.to_simple(key)?);
        }
        builder = builder.application_properties(app.build());
    }
    if event.message_id.is_some() || event.content_type.is_some() || event.correlation_id.is_some() {
        let mut properties = Properties::builder();
        if let Some(id) = &event.message_id {
            properties = properties.message_id(id.to_amqp());
        }
        if let Some(content_type) = &event.content_type {
            if !content_type.is_ascii() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("content_type {content_type:?}: an AMQP content type is an ASCII symbol"),
                ));
            }
            properties = properties.content_type(Symbol::from(content_type.as_str()));
        }
        if let Some(id) = &event.correlation_id {
            properties = properties.correlation_id(id.to_amqp());
        }
        builder = builder.properties(properties.build());
    }
    if let Some(key) = partition_key {
        builder = builder.message_annotations(key_annotation(key));
    }
    Ok(builder.data(Binary::from(event.body.clone())).build())
}

/// The message annotations carrying a partition key.
pub(crate) fn key_annotation(key: &str) -> MessageAnnotations {
    MessageAnnotations::builder()
        .insert(
            OwnedKey::Symbol(Symbol::from(PARTITION_KEY)),
            Value::String(key.to_owned()),
        )
        .build()
}

/// One event encoded as a message of a batch (a data section of the batch message).
///
/// # Errors
/// As [`single`]; `Protocol` if the encoder fails.
pub(crate) fn encode(event: &EventData, partition_key: Option<&str>) -> Result<Vec<u8>> {
    serde_amqp::to_vec(&Serializable(single(event, partition_key)?)).map_err(|e| {
        Error::new(
            classify(&Failure::Protocol),
            format!("encoding an event of a batch: {e}"),
        )
    })
}

/// Encoded events as one batch message (format [`BATCH_FORMAT`]); the partition key, when
/// there is one, is on the batch message as well as on each event (the service reads the
/// batch's).
pub(crate) fn batch(encoded: &[Vec<u8>], partition_key: Option<&str>) -> Sendable<Batch<Data>> {
    let sections = encoded
        .iter()
        .map(|e| Data(Binary::from(e.clone())))
        .collect::<Vec<_>>();
    let mut builder = Message::builder();
    if let Some(key) = partition_key {
        builder = builder.message_annotations(key_annotation(key));
    }
    Sendable::builder()
        .message(builder.data_batch(sections).build())
        .message_format(BATCH_FORMAT)
        .build()
}

/// Bytes a data section holding `len` bytes adds to a message: the section's descriptor
/// (3 bytes), the binary's constructor and length (2 bytes up to 255, else 5), the bytes.
pub(crate) fn data_section_size(len: usize) -> u64 {
    let header = if len <= 255 { 2 } else { 5 };
    3 + header + len as u64
}

/// Bytes the batch message spends besides its data sections: the partition key's annotations.
pub(crate) fn batch_overhead(partition_key: Option<&str>) -> u64 {
    partition_key.map_or(0, |key| {
        serde_amqp::to_vec(&key_annotation(key)).map_or(u64::MAX, |b| b.len() as u64)
    })
}

fn protocol(message: String) -> Error {
    Error::new(classify(&Failure::Protocol), message)
}

fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Long(v) => Some(*v),
        Value::Int(v) => Some(i64::from(*v)),
        Value::Uint(v) => Some(i64::from(*v)),
        Value::Ulong(v) => i64::try_from(*v).ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A timestamp value as a time.
pub(crate) fn timestamp(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::Timestamp(t) => time_from_ms(t.milliseconds()),
        other => as_i64(other).and_then(time_from_ms),
    }
}

/// The partition's last enqueued event from a delivery's annotations (the runtime metric a
/// receiver asks for), if the delivery carries it.
pub(crate) fn last_enqueued(message: &Message<Body<Value>>) -> Option<LastEnqueuedEventProperties> {
    let annotations = message.delivery_annotations.as_ref()?;
    let get = |key: &str| annotations.0.get(&OwnedKey::Symbol(Symbol::from(key)));
    let sequence_number = get("last_enqueued_sequence_number").and_then(as_i64)?;
    let offset = match get("last_enqueued_offset") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => as_i64(other).map(|v| v.to_string()),
        None => None,
    };
    Some(LastEnqueuedEventProperties {
        sequence_number,
        offset,
        enqueued_time: get("last_enqueued_time_utc").and_then(timestamp),
        retrieval_time: get("runtime_info_retrieval_time_utc").and_then(timestamp),
    })
}

/// A delivered message as a [`ReceivedEvent`] of `partition_id`.
pub(crate) fn received(partition_id: &str, message: &Message<Body<Value>>) -> Result<ReceivedEvent> {
    let annotation = |key: &str| {
        message
            .message_annotations
            .as_ref()
            .and_then(|a| a.0.get(&OwnedKey::Symbol(Symbol::from(key))))
    };
    let sequence_number = annotation("x-opt-sequence-number")
        .and_then(as_i64)
        .ok_or_else(|| protocol("event without x-opt-sequence-number".into()))?;
    let offset = match annotation("x-opt-offset") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => as_i64(other)
            .map(|v| v.to_string())
            .ok_or_else(|| protocol(format!("x-opt-offset {other:?} is unreadable")))?,
        None => return Err(protocol("event without x-opt-offset".into())),
    };
    let enqueued_time = annotation("x-opt-enqueued-time")
        .and_then(timestamp)
        .ok_or_else(|| protocol("event without a readable x-opt-enqueued-time".into()))?;
    let partition_key = match annotation("x-opt-partition-key") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let encode = |what: &str, value: &Value| {
        serde_amqp::to_vec(value).map_err(|e| {
            protocol(format!(
                "event {sequence_number}: cannot encode its {what} body: {e}"
            ))
        })
    };
    let (body, body_type) = match &message.body {
        Body::Data(sections) => (
            sections.iter().flat_map(|d| d.0.iter().copied()).collect(),
            BodyType::Data,
        ),
        Body::Value(v) => match &v.0 {
            Value::Binary(b) => (b.to_vec(), BodyType::Value),
            Value::String(s) => (s.clone().into_bytes(), BodyType::Value),
            other => (encode("amqp-value", other)?, BodyType::EncodedValue),
        },
        Body::Sequence(sections) => {
            let mut bytes = Vec::new();
            for section in sections {
                bytes.extend(encode("amqp-sequence", &Value::List(section.0.clone()))?);
            }
            (bytes, BodyType::Sequence)
        }
        Body::Empty => (Vec::new(), BodyType::Data),
    };
    let properties = message
        .application_properties
        .as_ref()
        .map(|a| {
            a.0.iter()
                .map(|(k, v)| (k.clone(), PropertyValue::from_simple(v)))
                .collect()
        })
        .unwrap_or_default();
    let mut system_properties: std::collections::BTreeMap<String, PropertyValue> = message
        .message_annotations
        .as_ref()
        .map(|a| {
            a.0.iter()
                .map(|(k, v)| {
                    let key = match k {
                        OwnedKey::Symbol(s) => s.0.clone(),
                        OwnedKey::Ulong(n) => n.to_string(),
                    };
                    (key, PropertyValue::from_amqp(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let amqp = message.properties.as_ref();
    if let Some(p) = amqp {
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                system_properties.insert(key.to_owned(), PropertyValue::from_amqp(&value));
            }
        };
        put("user-id", p.user_id.clone().map(Value::Binary));
        put("to", p.to.clone().map(Value::String));
        put("subject", p.subject.clone().map(Value::String));
        put("reply-to", p.reply_to.clone().map(Value::String));
        put("content-encoding", p.content_encoding.clone().map(Value::Symbol));
        put(
            "absolute-expiry-time",
            p.absolute_expiry_time.clone().map(Value::Timestamp),
        );
        put("creation-time", p.creation_time.clone().map(Value::Timestamp));
        put("group-id", p.group_id.clone().map(Value::String));
        put("group-sequence", p.group_sequence.map(Value::Uint));
        put(
            "reply-to-group-id",
            p.reply_to_group_id.clone().map(Value::String),
        );
    }
    Ok(ReceivedEvent {
        partition_id: partition_id.to_owned(),
        body,
        body_type,
        properties,
        message_id: amqp.and_then(|p| p.message_id.as_ref()).map(MessageId::from_amqp),
        content_type: amqp.and_then(|p| p.content_type.as_ref()).map(|s| s.0.clone()),
        correlation_id: amqp
            .and_then(|p| p.correlation_id.as_ref())
            .map(MessageId::from_amqp),
        system_properties,
        sequence_number,
        offset,
        enqueued_time,
        partition_key,
    })
}

#[cfg(test)]
mod tests {
    use fe2o3_amqp::types::messaging::{AmqpSequence, AmqpValue, MessageAnnotations};

    use super::*;

    fn message(body: Body<Value>, annotated: bool) -> Message<Body<Value>> {
        let mut annotations = MessageAnnotations::builder();
        if annotated {
            annotations = annotations
                .insert(
                    OwnedKey::Symbol(Symbol::from("x-opt-sequence-number")),
                    Value::Long(7),
                )
                .insert(
                    OwnedKey::Symbol(Symbol::from("x-opt-offset")),
                    Value::String("700".into()),
                )
                .insert(
                    OwnedKey::Symbol(Symbol::from("x-opt-enqueued-time")),
                    Value::Timestamp(fe2o3_amqp::types::primitives::Timestamp::from_milliseconds(1)),
                );
        }
        Message::builder()
            .message_annotations(annotations.build())
            .body(body)
            .build()
    }

    #[test]
    fn amqp_value_and_sequence_bodies_are_events_too() {
        let text = received(
            "0",
            &message(Body::Value(AmqpValue(Value::String("hi".into()))), true),
        )
        .unwrap();
        assert_eq!(
            (text.body.as_slice(), text.body_type),
            (&b"hi"[..], BodyType::Value)
        );
        let map = Value::List(vec![Value::Int(1), Value::Bool(true)]);
        let value = received("0", &message(Body::Value(AmqpValue(map.clone())), true)).unwrap();
        assert_eq!(value.body_type, BodyType::EncodedValue);
        assert_eq!(serde_amqp::from_slice::<Value>(&value.body).unwrap(), map);
        let sequence = received(
            "0",
            &message(
                Body::Sequence(vec![AmqpSequence(vec![Value::Int(5)])].into()),
                true,
            ),
        )
        .unwrap();
        assert_eq!(sequence.body_type, BodyType::Sequence);
        assert_eq!(
            serde_amqp::from_slice::<Value>(&sequence.body).unwrap(),
            Value::List(vec![Value::Int(5)])
        );
        assert_eq!((sequence.sequence_number, sequence.offset.as_str()), (7, "700"));
    }

    #[test]
    fn an_event_without_its_annotations_is_an_error_naming_what_is_missing() {
        let e = received("0", &message(Body::Empty, false)).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Protocol);
        assert!(e.to_string().contains("x-opt-sequence-number"), "{e}");
    }
}
