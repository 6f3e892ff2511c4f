//! Events sent and received, and where a receiver starts.

use std::collections::BTreeMap;

use time::OffsetDateTime;

/// An event to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventData {
    /// The body (one AMQP data section).
    pub body: Vec<u8>,
    /// Application properties (string values).
    pub properties: BTreeMap<String, String>,
}

impl EventData {
    /// An event with `body` and no properties.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        EventData {
            body: body.into(),
            properties: BTreeMap::new(),
        }
    }

    /// Adds an application property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }
}

/// An event as a partition receiver hands it out, with the service's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Application properties whose values are strings.
    pub properties: BTreeMap<String, String>,
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
    /// The first event enqueued after this time.
    EnqueuedTime(OffsetDateTime),
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
