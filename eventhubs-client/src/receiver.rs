//! [`PartitionReceiver`]: reads one partition of a consumer group.

use std::sync::Arc;
use std::time::Duration;

use fe2o3_amqp::Receiver;
use fe2o3_amqp::link::DetachError;
use fe2o3_amqp::link::receiver::CreditMode;
use fe2o3_amqp::types::definitions::Fields;
use fe2o3_amqp::types::messaging::{Body, FilterSet, Source};
use fe2o3_amqp::types::primitives::{Symbol, Value};
use serde_amqp::described::Described;
use serde_amqp::descriptor::Descriptor;
use tracing::Instrument;

use crate::amqp::errors::amqp_error;
use crate::amqp::message::{last_enqueued, received};
use crate::client::EventHubClient;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{LastEnqueuedEventProperties, ReceivedEvent, StartPosition};
use crate::retry::timed;

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
    /// How many events the link may have in flight (its credit). 0 asks for events only
    /// while [`PartitionReceiver::receive`] waits: each call grants credit for the events it
    /// asks for and drains what is left when it returns (events already on the way are kept
    /// for the next call), so nothing is read ahead between calls.
    pub prefetch: u32,
    /// Ask the service for the partition's last enqueued event with every event (its runtime
    /// metric): see [`PartitionReceiver::last_enqueued_event_properties`]. Default `false`, as
    /// in the official SDKs.
    pub track_last_enqueued_event_properties: bool,
}

impl Default for ReceiverOptions {
    /// Start at latest, no owner level, prefetch 300.
    fn default() -> Self {
        ReceiverOptions {
            start: StartPosition::Latest,
            owner_level: None,
            prefetch: 300,
            track_last_enqueued_event_properties: false,
        }
    }
}

/// The capability asking for the partition's runtime metric with every event.
const RUNTIME_METRIC: &str = "com.microsoft:enable-receiver-runtime-metric";

/// Decides, before every attach after the first, whether the receiver may attach again
/// (a Processor's partition client refuses once its ownership is gone).
pub(crate) type AttachGuard = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// A receiver on one partition of a consumer group.
///
/// It recovers by itself: when its link is detached or its connection drops (anything the
/// classifier calls retryable), it attaches again through the client's recovering connection,
/// starting right after the last event it returned, so nothing is lost and the receiver itself
/// adds no duplicates.
pub struct PartitionReceiver {
    client: EventHubClient,
    partition_id: String,
    consumer_group: String,
    options: ReceiverOptions,
    /// The link and the connection generation it was attached on; `None` between a failure
    /// and the next attach.
    link: Option<(u64, Receiver)>,
    /// The last event returned: (offset, sequence number). A new link starts after it.
    last: Option<(String, i64)>,
    /// An error met after events were already taken in the same call: returned next.
    pending: Option<Error>,
    /// Links attached again after a failure.
    recoveries: u64,
    guard: Option<AttachGuard>,
    /// The partition's last enqueued event, as the last event received reported it.
    last_enqueued: Option<LastEnqueuedEventProperties>,
    /// With prefetch 0: the link holds credit granted by the current `receive` call.
    credited: bool,
}

impl std::fmt::Debug for PartitionReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReceiver")
            .field("partition_id", &self.partition_id)
            .field("consumer_group", &self.consumer_group)
            .field("options", &self.options)
            .field("last", &self.last)
            .field("recoveries", &self.recoveries)
            .finish()
    }
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
        StartPosition::EnqueuedTime { time, inclusive } => {
            let ms = crate::properties::millis(*time);
            format!("amqp.annotation.x-opt-enqueued-time {} '{ms}'", op(*inclusive))
        }
    })
}

impl PartitionReceiver {
    /// Opens the receiver: resolves `Latest` to the partition's last sequence number (so a
    /// recovery before the first event loses nothing either), then attaches, retrying as the
    /// client's options say.
    pub(crate) async fn open(
        client: EventHubClient,
        consumer_group: &str,
        partition_id: &str,
        mut options: ReceiverOptions,
    ) -> Result<Self> {
        selector(&options.start)?;
        if options.start == StartPosition::Latest {
            let properties = client.partition_properties(partition_id).await?;
            options.start = StartPosition::SequenceNumber {
                sequence_number: properties.last_enqueued_sequence_number,
                inclusive: false,
            };
        }
        let mut receiver = PartitionReceiver {
            client,
            partition_id: partition_id.to_owned(),
            consumer_group: consumer_group.to_owned(),
            options,
            link: None,
            last: None,
            pending: None,
            recoveries: 0,
            last_enqueued: None,
            guard: None,
            credited: false,
        };
        let retry = receiver.client.retry_options().clone();
        let mut attempt = 0;
        loop {
            match receiver.attach().await {
                Ok(()) => return Ok(receiver),
                Err(e) if e.is_retryable() && attempt < retry.max_retries => {
                    let delay = retry.delay(attempt, &mut rand::rng());
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets the check every later attach must pass.
    pub(crate) fn set_attach_guard(&mut self, guard: AttachGuard) {
        self.guard = Some(guard);
    }

    /// Where a new link starts: after the last event returned, else where the receiver was
    /// opened.
    pub fn resume_position(&self) -> StartPosition {
        match &self.last {
            Some((offset, _)) => StartPosition::Offset {
                offset: offset.clone(),
                inclusive: false,
            },
            None => self.options.start.clone(),
        }
    }

    /// How many retryable link failures (detach, dropped connection, timeout) this receiver
    /// has recovered from (or is recovering from) by attaching a new link.
    pub fn recoveries(&self) -> u64 {
        self.recoveries
    }

    /// One attach of a new link on the client's current connection, at the resume position.
    async fn attach(&mut self) -> Result<()> {
        let address = format!(
            "{}/ConsumerGroups/{}/Partitions/{}",
            self.client.event_hub(),
            self.consumer_group,
            self.partition_id
        );
        let expression = selector(&self.resume_position())?;
        let span = tracing::debug_span!(
            "eventhubs.attach_receiver",
            address = %address,
            selector = %expression,
            owner_level = ?self.options.owner_level
        );
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
            .credit_mode(match self.options.prefetch {
                0 => CreditMode::Manual,
                prefetch => CreditMode::Auto(prefetch),
            });
        if self.options.track_last_enqueued_event_properties {
            builder = builder.add_desired_capabilities(RUNTIME_METRIC);
        }
        if let Some(level) = self.options.owner_level {
            let mut properties = Fields::new();
            properties.insert(Symbol::from(EPOCH), Value::Long(level));
            builder = builder.properties(properties);
        }
        let mut amqp = self.client.session().await?;
        let generation = amqp.generation;
        let attach = async {
            builder
                .attach(&mut amqp.session)
                .await
                .map_err(|e| amqp_error(&format!("attach receiver to {address}"), e))
        };
        let attached = timed("attach receiver", self.client.retry_options().try_timeout, attach)
            .instrument(span)
            .await;
        drop(amqp);
        match attached {
            Ok(receiver) => {
                tracing::debug!(partition = %self.partition_id, generation, "receiver attached");
                self.link = Some((generation, receiver));
                self.credited = false;
                Ok(())
            }
            Err(e) => Err(self.client.failed(generation, e).await),
        }
    }

    /// The partition's last enqueued event as of the last event received, when the receiver
    /// was opened with [`ReceiverOptions::track_last_enqueued_event_properties`]; `None`
    /// before the first event (or without tracking). How far this receiver is behind the
    /// partition: `last_enqueued.sequence_number − last received sequence number`.
    pub fn last_enqueued_event_properties(&self) -> Option<&LastEnqueuedEventProperties> {
        self.last_enqueued.as_ref()
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
    /// arrived (may be empty). Accepts (settles) what it returns.
    ///
    /// # Behavior
    /// - A retryable failure (link detached, connection dropped, step timed out) is recovered
    ///   here: events already taken are returned first, and the next link starts after the
    ///   last event returned. With no event in hand the call backs off and attaches again, up
    ///   to the client's `max_retries` times in a row.
    /// - An event that cannot be read (no sequence number or offset) is settled and returned
    ///   as an error, after the events before it; the events after it come with the next call.
    /// - amqp-value and amqp-sequence bodies are events too: see [`ReceivedEvent::body_type`].
    ///
    /// # Errors
    /// [`ErrorKind::OwnerLevelConflict`] once another receiver took the partition;
    /// `Unavailable` after the retries; `Closed` once the client was closed.
    pub async fn receive(&mut self, max: usize, wait: Duration) -> Result<Vec<ReceivedEvent>> {
        let span = tracing::debug_span!(
            "eventhubs.receive",
            partition = %self.partition_id,
            group = %self.consumer_group,
            max
        );
        async {
            if let Some(e) = self.pending.take() {
                return Err(e);
            }
            let retry = self.client.retry_options().clone();
            let deadline = tokio::time::Instant::now() + wait;
            let mut events = Vec::new();
            let mut attempt = 0;
            while events.len() < max {
                let failure = match self.link.as_mut() {
                    None => {
                        let attached = match &self.guard {
                            Some(guard) => guard(),
                            None => Ok(()),
                        };
                        match attached {
                            Ok(()) => self.attach().await.err(),
                            Err(e) => Some(e),
                        }
                    }
                    Some((generation, link)) if self.options.prefetch == 0 && !self.credited => {
                        let wanted = u32::try_from(max - events.len()).unwrap_or(u32::MAX);
                        match link.set_credit(wanted).await {
                            Ok(()) => {
                                self.credited = true;
                                None
                            }
                            Err(e) => {
                                let generation = *generation;
                                self.link = None;
                                let e = amqp_error(&format!("grant credit on partition {}", self.partition_id), e);
                                Some(self.client.failed(generation, e).await)
                            }
                        }
                    }
                    Some((generation, link)) => {
                        let limit = if events.is_empty() {
                            deadline.saturating_duration_since(tokio::time::Instant::now())
                        } else {
                            LINGER
                        };
                        let Ok(delivery) = tokio::time::timeout(limit, link.recv::<Body<Value>>()).await
                        else {
                            break;
                        };
                        match delivery {
                            Ok(delivery) => {
                                let event = received(&self.partition_id, delivery.message());
                                if let Some(latest) = last_enqueued(delivery.message()) {
                                    self.last_enqueued = Some(latest);
                                }
                                // A failed accept means the link is gone; the event is in hand
                                // all the same, and the next link starts after it.
                                if let Err(e) = link.accept(&delivery).await {
                                    tracing::debug!(error = %e, "settling an event failed; the link is replaced");
                                    self.link = None;
                                }
                                match event {
                                    Ok(event) => {
                                        self.last = Some((event.offset.clone(), event.sequence_number));
                                        events.push(event);
                                        None
                                    }
                                    Err(e) if events.is_empty() => return Err(e),
                                    Err(e) => {
                                        self.pending = Some(e);
                                        break;
                                    }
                                }
                            }
                            Err(e) => {
                                let generation = *generation;
                                self.link = None;
                                let e = amqp_error(&format!("receive from partition {}", self.partition_id), e);
                                Some(self.client.failed(generation, e).await)
                            }
                        }
                    }
                };
                let Some(e) = failure else { continue };
                self.link = None;
                // A link closed under us (not by us) is worth a new one while the client lives.
                let retryable = !self.client.is_closed()
                    && (e.is_retryable() || e.kind() == ErrorKind::Closed);
                if !retryable {
                    if events.is_empty() {
                        return Err(e);
                    }
                    self.pending = Some(e);
                    break;
                }
                // Recovered by the next attach (in this call or the next one).
                self.recoveries += 1;
                if !events.is_empty() {
                    break;
                }
                if attempt >= retry.max_retries {
                    return Err(e);
                }
                let delay = retry.delay(attempt, &mut rand::rng());
                tracing::debug!(partition = %self.partition_id, attempt, error = %e, ?delay, "receiver recovering");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            if self.options.prefetch == 0
                && self.credited
                && let Some((_, link)) = self.link.as_mut()
            {
                // Take back the credit left: what the service sent meanwhile stays in the
                // link's buffer for the next call.
                self.credited = false;
                if let Err(e) = link.drain().await {
                    tracing::debug!(error = %e, "draining the credit failed; the link is replaced");
                    self.link = None;
                }
            }
            tracing::debug!(count = events.len(), "received");
            Ok(events)
        }
        .instrument(span)
        .await
    }

    /// Detaches the link. A link the service already took away closes without error.
    ///
    /// # Errors
    /// The link's error on detach.
    pub async fn close(self) -> Result<()> {
        let span = tracing::debug_span!("eventhubs.close_receiver", partition = %self.partition_id);
        let Some((_, link)) = self.link else {
            return Ok(());
        };
        match link.close().instrument(span).await {
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
            s(StartPosition::EnqueuedTime {
                time: t,
                inclusive: false
            }),
            "amqp.annotation.x-opt-enqueued-time > '1700000000000'"
        );
        assert_eq!(
            s(StartPosition::EnqueuedTime {
                time: t,
                inclusive: true
            }),
            "amqp.annotation.x-opt-enqueued-time >= '1700000000000'"
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
            StartPosition::EnqueuedTime {
                time: t,
                inclusive: true,
            },
        ] {
            assert!(
                eventhubs_emulator::link::filter::parse_selector(&s(p.clone())).is_ok(),
                "{p:?}"
            );
        }
    }
}
