//! Events sent and received, and where a receiver starts.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::properties::{MessageId, PropertyValue};

/// An event to send.
///
/// ```
/// use eventhubs_client::{EventData, PropertyValue};
/// let event = EventData::new("order 7 paid")
///     .with_message_id("order-7")
///     .with_content_type("text/plain")
///     .with_correlation_id("checkout-31")
///     .with_property("amount", 12.5)
///     .with_property("express", true)
///     .with_property("region", "eu");
/// assert_eq!(event.properties["amount"], PropertyValue::Double(12.5));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventData {
    /// The body (one AMQP data section).
    pub body: Vec<u8>,
    /// Application properties, each in its AMQP type (simple values only: no list or map).
    pub properties: BTreeMap<String, PropertyValue>,
    /// The AMQP message id.
    pub message_id: Option<MessageId>,
    /// The AMQP content type (a MIME type, e.g. `application/json`).
    pub content_type: Option<String>,
    /// The AMQP correlation id.
    pub correlation_id: Option<MessageId>,
}

impl EventData {
    /// An event with `body` and no properties.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        EventData {
            body: body.into(),
            ..EventData::default()
        }
    }

    /// Adds an application property of any simple AMQP type: strings, numbers, booleans,
    /// timestamps ([`time::OffsetDateTime`]), UUIDs, bytes.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<PropertyValue>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Sets the message id.
    pub fn with_message_id(mut self, id: impl Into<MessageId>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<MessageId>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }
}

/// An event as a partition receiver hands it out, with the service's annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// The partition it was read from.
    pub partition_id: String,
    /// The body: the data sections concatenated, the bytes of a binary or string amqp-value,
    /// or the AMQP encoding of any other amqp-value or of the amqp-sequence sections (see
    /// [`ReceivedEvent::body_type`]).
    pub body: Vec<u8>,
    /// Which AMQP body section the event carried: events sent by other clients may use an
    /// amqp-value or amqp-sequence body, and are delivered like any other.
    pub body_type: BodyType,
    /// Application properties, each in the AMQP type it was sent as.
    pub properties: BTreeMap<String, PropertyValue>,
    /// The AMQP message id, when the sender set one.
    pub message_id: Option<MessageId>,
    /// The AMQP content type, when the sender set one.
    pub content_type: Option<String>,
    /// The AMQP correlation id, when the sender set one.
    pub correlation_id: Option<MessageId>,
    /// System properties, as the official SDKs expose them: every message annotation (the
    /// service's `x-opt-sequence-number`, `x-opt-offset`, `x-opt-enqueued-time`,
    /// `x-opt-partition-key`, and any other the sender or service set) and the AMQP
    /// properties other than the three above that the message carries (`user-id`, `to`,
    /// `subject`, `reply-to`, `content-encoding`, `absolute-expiry-time`, `creation-time`,
    /// `group-id`, `group-sequence`, `reply-to-group-id`).
    pub system_properties: BTreeMap<String, PropertyValue>,
    /// `x-opt-sequence-number`.
    pub sequence_number: i64,
    /// `x-opt-offset`, opaque (geo-replicated hubs use non-numeric offsets).
    pub offset: String,
    /// `x-opt-enqueued-time`.
    pub enqueued_time: OffsetDateTime,
    /// `x-opt-partition-key`, when the event was sent with one.
    pub partition_key: Option<String>,
}

/// The AMQP body section an event was sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BodyType {
    /// One or more data sections (what every SDK sends by default), or no body.
    #[default]
    Data,
    /// An amqp-value section holding binary or a string: `body` is its bytes.
    Value,
    /// An amqp-value section holding anything else: `body` is the value's AMQP encoding.
    EncodedValue,
    /// amqp-sequence sections: `body` is the AMQP encoding of each section, one after another.
    Sequence,
}

/// Where a partition receiver starts reading.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// The oldest event the partition retains.
    Earliest,
    /// Only events enqueued after the receiver attached.
    #[default]
    Latest,
    /// At (inclusive) or after (exclusive) the event with this offset.
    Offset {
        /// The offset, as the service gave it.
        offset: String,
        /// Include the event at `offset` itself.
        inclusive: bool,
    },
    /// At (inclusive) or after (exclusive) the event with this sequence number.
    SequenceNumber {
        /// The sequence number.
        sequence_number: i64,
        /// Include the event with `sequence_number` itself.
        inclusive: bool,
    },
    /// The first event enqueued at (inclusive) or after (exclusive) this time (millisecond
    /// precision, as the service keeps it).
    EnqueuedTime {
        /// The time.
        time: OffsetDateTime,
        /// Include events enqueued at exactly `time`.
        inclusive: bool,
    },
}

/// The partition's last enqueued event, as the service reported it with an event received by a
/// receiver that asked for it (its runtime metric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastEnqueuedEventProperties {
    /// The last enqueued event's sequence number.
    pub sequence_number: i64,
    /// Its offset.
    pub offset: Option<String>,
    /// When it was enqueued.
    pub enqueued_time: Option<OffsetDateTime>,
    /// When the service read these properties.
    pub retrieval_time: Option<OffsetDateTime>,
}
