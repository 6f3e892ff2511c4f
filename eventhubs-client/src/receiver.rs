//! [`PartitionReceiver`]: reads one partition of a consumer group.

use std::time::Duration;

use fe2o3_amqp::Receiver;
use fe2o3_amqp::link::receiver::CreditMode;
use fe2o3_amqp::link::{DetachError, RecvError};
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::definitions::Fields;
use fe2o3_amqp::types::messaging::{Body, FilterSet, Source};
use fe2o3_amqp::types::primitives::{Symbol, Value};
use serde_amqp::described::Described;
use serde_amqp::descriptor::Descriptor;
use tracing::Instrument;

use crate::amqp::errors::amqp_error;
use crate::amqp::message::received;
use crate::client::EventHubClient;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{ReceivedEvent, StartPosition};

/// The filter the service reads the start position from.
const SELECTOR_FILTER: &str = "apache.org:selector-filter:string";
/// The link property carrying the owner level.
const EPOCH: &str = "com.microsoft:epoch";
/// After the first event, how long `receive` waits for each further one.
const LINGER: Duration = Duration::from_millis(5);

/// How a partition receiver starts and how much it prefetches.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// Where to start reading.
    pub start: StartPosition,
    /// The owner level (`com.microsoft:epoch`): a receiver with an equal or higher level
    /// takes the partition away from this one.
    pub owner_level: Option<i64>,
    /// How many events the link may have in flight (link credit, at least 1).
    pub prefetch: u32,
}

impl Default for ReceiverOptions {
    /// Start at latest, no owner level, prefetch 300.
    fn default() -> Self {
        ReceiverOptions {
            start: StartPosition::Latest,
            owner_level: None,
            prefetch: 300,
        }
    }
}

/// A receiver on one partition of a consumer group.
#[derive(Debug)]
pub struct PartitionReceiver {
    receiver: Receiver,
    partition_id: String,
    consumer_group: String,
    /// The client whose connection carries the link: a link lives as long as its connection,
    /// so the receiver keeps it open even when every other handle of the client is dropped.
    _client: EventHubClient,
}

/// The selector expression for a start position.
pub(crate) fn selector(start: &StartPosition) -> Result<String> {
    const OFFSET: &str = "amqp.annotation.x-opt-offset";
    let op = |inclusive: bool| if inclusive { ">=" } else { ">" };
    Ok(match start {
        StartPosition::Earliest => format!("{OFFSET} > '-1'"),
        StartPosition::Latest => format!("{OFFSET} > '@latest'"),
        StartPosition::Offset { offset, inclusive } => {
            if offset.is_empty() || offset.contains(['\'', '"']) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("start offset {offset:?} must be non-empty and unquoted"),
                ));
            }
            format!("{OFFSET} {} '{offset}'", op(*inclusive))
        }
        StartPosition::SequenceNumber {
            sequence_number,
            inclusive,
        } => format!(
            "amqp.annotation.x-opt-sequence-number {} {sequence_number}",
            op(*inclusive)
        ),
        StartPosition::EnqueuedTime(time) => {
            let ms = time.unix_timestamp_nanos() / 1_000_000;
            format!("amqp.annotation.x-opt-enqueued-time > '{ms}'")
        }
    })
}

impl PartitionReceiver {
    pub(crate) async fn attach(
        client: EventHubClient,
        session: &mut SessionHandle<()>,
        consumer_group: &str,
        partition_id: &str,
        options: ReceiverOptions,
    ) -> Result<Self> {
        let address = format!(
            "{}/ConsumerGroups/{consumer_group}/Partitions/{partition_id}",
            client.event_hub()
        );
        let expression = selector(&options.start)?;
        let span = tracing::debug_span!(
            "eventhubs.attach_receiver",
            address = %address,
            selector = %expression,
            owner_level = ?options.owner_level
        );
        async {
            let mut filters = FilterSet::new();
            filters.insert(
                Symbol::from(SELECTOR_FILTER),
                Value::Described(Box::new(Described {
                    descriptor: Descriptor::Name(Symbol::from(SELECTOR_FILTER)),
                    value: Value::String(expression.clone()),
                })),
            );
            let source = Source::builder().address(address.clone()).filter(filters).build();
            let mut builder = Receiver::builder()
                .name(format!("receiver-{address}-{}", uuid::Uuid::new_v4()))
                .source(source)
                .target(format!("eventhubs-client-{}", uuid::Uuid::new_v4()))
                .credit_mode(CreditMode::Auto(options.prefetch.max(1)));
            if let Some(level) = options.owner_level {
                let mut properties = Fields::new();
                properties.insert(Symbol::from(EPOCH), Value::Long(level));
                builder = builder.properties(properties);
            }
            let receiver = builder
                .attach(session)
                .await
                .map_err(|e| amqp_error(&format!("attach receiver to {address}"), e))?;
            tracing::debug!("receiver attached");
            Ok(PartitionReceiver {
                receiver,
                partition_id: partition_id.to_owned(),
                consumer_group: consumer_group.to_owned(),
                _client: client,
            })
        }
        .instrument(span)
        .await
    }

    /// The partition this receiver reads.
    pub fn partition_id(&self) -> &str {
        &self.partition_id
    }

    /// The consumer group this receiver reads for.
    pub fn consumer_group(&self) -> &str {
        &self.consumer_group
    }

    /// Up to `max` events; waits at most `wait` for the first one, then returns what has
    /// arrived (may be empty). Accepts (settles) what it returns. Fails with
    /// [`ErrorKind::OwnerLevelConflict`] once another receiver took the partition.
    pub async fn receive(&mut self, max: usize, wait: Duration) -> Result<Vec<ReceivedEvent>> {
        let span = tracing::debug_span!(
            "eventhubs.receive",
            partition = %self.partition_id,
            group = %self.consumer_group,
            max
        );
        async {
            let mut events = Vec::new();
            while events.len() < max {
                let limit = if events.is_empty() { wait } else { LINGER };
                let Ok(delivery) = tokio::time::timeout(limit, self.receiver.recv::<Body<Value>>()).await
                else {
                    break;
                };
                let delivery = delivery.map_err(|e: RecvError| {
                    amqp_error(&format!("receive from partition {}", self.partition_id), e)
                })?;
                let event = received(&self.partition_id, delivery.message());
                self.receiver
                    .accept(&delivery)
                    .await
                    .map_err(|e| amqp_error("settle an event", e))?;
                events.push(event?);
            }
            tracing::debug!(count = events.len(), "received");
            Ok(events)
        }
        .instrument(span)
        .await
    }

    /// Detaches the link. A link the service already took away closes without error.
    pub async fn close(self) -> Result<()> {
        let span = tracing::debug_span!("eventhubs.close_receiver", partition = %self.partition_id);
        match self.receiver.close().instrument(span).await {
            Ok(())
            | Err(
                DetachError::IllegalState
                | DetachError::ClosedByRemote
                | DetachError::RemoteDetachedWithError(_)
                | DetachError::RemoteClosedWithError(_),
            ) => Ok(()),
            Err(e) => Err(amqp_error("close receiver", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_what_the_service_reads() {
        let s = |p: StartPosition| selector(&p).unwrap();
        assert_eq!(s(StartPosition::Earliest), "amqp.annotation.x-opt-offset > '-1'");
        assert_eq!(
            s(StartPosition::Latest),
            "amqp.annotation.x-opt-offset > '@latest'"
        );
        assert_eq!(
            s(StartPosition::Offset {
                offset: "12".into(),
                inclusive: true
            }),
            "amqp.annotation.x-opt-offset >= '12'"
        );
        assert_eq!(
            s(StartPosition::SequenceNumber {
                sequence_number: 5,
                inclusive: false
            }),
            "amqp.annotation.x-opt-sequence-number > 5"
        );
        let t = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            s(StartPosition::EnqueuedTime(t)),
            "amqp.annotation.x-opt-enqueued-time > '1700000000000'"
        );
        assert_eq!(
            selector(&StartPosition::Offset {
                offset: "1' or '1".into(),
                inclusive: true
            })
            .unwrap_err()
            .kind(),
            ErrorKind::InvalidInput
        );
        for p in [
            StartPosition::Earliest,
            StartPosition::Latest,
            StartPosition::Offset {
                offset: "7".into(),
                inclusive: false,
            },
            StartPosition::SequenceNumber {
                sequence_number: 3,
                inclusive: true,
            },
            StartPosition::EnqueuedTime(t),
        ] {
            assert!(
                eventhubs_emulator::link::filter::parse_selector(&s(p.clone())).is_ok(),
                "{p:?}"
            );
        }
    }
}
