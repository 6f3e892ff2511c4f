//! [`EventDataBatch`]: events gathered for one send, bounded by the size the service accepts.

use crate::amqp::message;
use crate::error::{Error, ErrorKind, Result};
use crate::event::EventData;

/// Where a batch goes and how large it may grow.
///
/// With neither a partition id nor a partition key the service spreads the batches over the
/// partitions (round robin). A partition key sends every batch with that key to the one
/// partition the service's hash of the key picks (the same partition for every SDK).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOptions {
    /// Send to this partition.
    pub partition_id: Option<String>,
    /// Send with this partition key (`x-opt-partition-key`); the service picks the partition.
    pub partition_key: Option<String>,
    /// The most bytes the batch may hold; default and upper bound: the largest message the
    /// service accepts on the link (its attach's `max-message-size`).
    pub max_size_in_bytes: Option<u64>,
}

impl BatchOptions {
    /// Options for a batch to `partition_id`.
    pub fn partition_id(partition_id: impl Into<String>) -> Self {
        BatchOptions {
            partition_id: Some(partition_id.into()),
            ..BatchOptions::default()
        }
    }

    /// Options for a batch sent with `partition_key`.
    pub fn partition_key(partition_key: impl Into<String>) -> Self {
        BatchOptions {
            partition_key: Some(partition_key.into()),
            ..BatchOptions::default()
        }
    }

    /// Refuses a partition id together with a partition key, and an empty id or key, naming
    /// the field.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.partition_id.is_some() && self.partition_key.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "partition_id and partition_key: set one or neither (the service picks a \
                 partition for a key)",
            ));
        }
        if self.partition_id.as_deref() == Some("") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "partition_id must not be empty",
            ));
        }
        if self.partition_key.as_deref() == Some("") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "partition_key must not be empty",
            ));
        }
        if self.max_size_in_bytes == Some(0) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "max_size_in_bytes must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Events for one send, made by
/// [`EventHubClient::create_batch`](crate::EventHubClient::create_batch) and sent by
/// [`EventHubClient::send_batch`](crate::EventHubClient::send_batch).
///
/// # Behavior
/// - [`EventDataBatch::try_add`] encodes the event and adds it when the batch's AMQP message
///   still fits the size limit, else leaves the batch as it was and answers `false`: send this
///   batch and add the event to a new one.
/// - The size counted is the exact size of the batch message as sent (each event's encoding
///   in its data section, and the partition key's annotation).
#[derive(Debug, Clone)]
pub struct EventDataBatch {
    pub(crate) address: String,
    pub(crate) partition_key: Option<String>,
    pub(crate) partition_id: Option<String>,
    pub(crate) encoded: Vec<Vec<u8>>,
    size: u64,
    max_size: u64,
}

impl EventDataBatch {
    pub(crate) fn new(address: String, options: BatchOptions, link_max: u64) -> Self {
        let max_size = options.max_size_in_bytes.map_or(link_max, |m| m.min(link_max));
        let size = message::batch_overhead(options.partition_key.as_deref());
        EventDataBatch {
            address,
            partition_key: options.partition_key,
            partition_id: options.partition_id,
            encoded: Vec::new(),
            size,
            max_size,
        }
    }

    /// Adds `event` if it fits; `Ok(false)` (and the batch unchanged) when it does not.
    ///
    /// # Errors
    /// `InvalidInput` when the event cannot be sent at all: a property that is not a simple
    /// AMQP value, a non-ASCII content type, or an event larger than an empty batch may hold.
    pub fn try_add(&mut self, event: &EventData) -> Result<bool> {
        let encoded = message::encode(event, self.partition_key.as_deref())?;
        let added = message::data_section_size(encoded.len());
        if self.size.saturating_add(added) > self.max_size {
            if self.encoded.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "event of {} bytes (encoded) is larger than a batch may be ({} bytes)",
                        encoded.len(),
                        self.max_size
                    ),
                ));
            }
            return Ok(false);
        }
        self.size += added;
        self.encoded.push(encoded);
        Ok(true)
    }

    /// How many events the batch holds.
    pub fn len(&self) -> usize {
        self.encoded.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// The size of the batch message as it will be sent, in bytes.
    pub fn size_in_bytes(&self) -> u64 {
        self.size
    }

    /// The most bytes the batch may hold.
    pub fn max_size_in_bytes(&self) -> u64 {
        self.max_size
    }

    /// The partition the batch goes to, when it was made for one.
    pub fn partition_id(&self) -> Option<&str> {
        self.partition_id.as_deref()
    }

    /// The partition key the batch is sent with, when it was made with one.
    pub fn partition_key(&self) -> Option<&str> {
        self.partition_key.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::properties::PropertyValue;

    #[test]
    fn options_name_the_field_they_refuse() {
        let both = BatchOptions {
            partition_id: Some("0".into()),
            partition_key: Some("k".into()),
            ..BatchOptions::default()
        };
        let e = both.validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("partition_id and partition_key"), "{e}");
        let e = BatchOptions::partition_key("").validate().unwrap_err();
        assert!(e.to_string().contains("partition_key"), "{e}");
        assert!(BatchOptions::partition_id("3").validate().is_ok());
    }

    /// The size a batch reports is the size of the message sent, byte for byte.
    #[test]
    fn the_counted_size_is_the_encoded_batch_size() {
        for key in [None, Some("tenant-7")] {
            let options = key.map(BatchOptions::partition_key).unwrap_or_default();
            let mut batch = EventDataBatch::new("hub".into(), options, 1 << 20);
            for i in 0..5 {
                let body = vec![b'x'; i * 120];
                let event = EventData::new(body).with_property("i", i as i64);
                assert!(batch.try_add(&event).unwrap());
            }
            let sendable = message::batch(&batch.encoded, key);
            let bytes = serde_amqp::to_vec(&fe2o3_amqp::types::messaging::message::__private::Serializable(
                sendable.message,
            ))
            .unwrap();
            assert_eq!(bytes.len() as u64, batch.size_in_bytes(), "key {key:?}");
        }
    }

    #[test]
    fn a_full_batch_says_so_and_is_unchanged() {
        let mut batch = EventDataBatch::new("hub".into(), BatchOptions::default(), 300);
        let event = EventData::new(vec![0u8; 100]);
        assert!(batch.try_add(&event).unwrap());
        assert!(batch.try_add(&event).unwrap());
        let (len, size) = (batch.len(), batch.size_in_bytes());
        assert!(!batch.try_add(&event).unwrap());
        assert_eq!((batch.len(), batch.size_in_bytes()), (len, size));
        let mut empty = EventDataBatch::new("hub".into(), BatchOptions::default(), 300);
        let e = empty.try_add(&EventData::new(vec![0u8; 400])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let bad = EventData::new("x").with_property(
            "nested",
            PropertyValue::Encoded(
                serde_amqp::to_vec(&fe2o3_amqp::types::primitives::Value::List(vec![])).unwrap(),
            ),
        );
        assert_eq!(empty.try_add(&bad).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(empty.is_empty());
    }
}
