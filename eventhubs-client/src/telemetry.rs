//! The client's metrics, through the [`metrics`] facade: free when no recorder is installed,
//! exported by whichever recorder the application installs (Prometheus, OpenTelemetry, …).
//! Names follow the OpenTelemetry messaging conventions (`messaging.eventhubs.*`, attributes
//! `messaging.destination.name`, `messaging.consumer.group.name`,
//! `messaging.destination.partition.id`); a Prometheus exporter turns the dots into underscores.
//!
//! | name | kind | unit | attributes | what |
//! |---|---|---|---|---|
//! | `messaging.eventhubs.events.received` | counter | events | hub, group, partition | events a partition client handed to the application |
//! | `messaging.eventhubs.checkpoints` | counter | checkpoints | hub, group, partition, `outcome` (`ok`, `error`) | checkpoint writes |
//! | `messaging.eventhubs.checkpoint.duration` | histogram | seconds | hub, group, partition | time of one checkpoint write |
//! | `messaging.eventhubs.ownership.claims` | counter | claims | hub, group, `outcome` (`won`, `lost`) | claims of partitions the processor did not own |
//! | `messaging.eventhubs.partitions.owned` | gauge | partitions | hub, group, `owner` | partitions the processor owns after its last cycle |
//! | `messaging.eventhubs.partitions.lost` | counter | partitions | hub, group, `reason` | partitions lost (stolen, expired, released, shutdown) |
//! | `messaging.eventhubs.receive.lag` | gauge | events | hub, group, partition | the partition's last enqueued sequence number − the last one handed to the application (from the receiver's runtime metric) |
//! | `messaging.eventhubs.reconnects` | counter | connections | `messaging.destination.name` | connections opened again after one broke |

use std::time::Duration;

/// Events a partition client handed to the application.
pub const EVENTS_RECEIVED: &str = "messaging.eventhubs.events.received";
/// Checkpoint writes, by outcome.
pub const CHECKPOINTS: &str = "messaging.eventhubs.checkpoints";
/// Time of one checkpoint write, in seconds.
pub const CHECKPOINT_DURATION: &str = "messaging.eventhubs.checkpoint.duration";
/// Claims of partitions the processor did not own, by outcome.
pub const CLAIMS: &str = "messaging.eventhubs.ownership.claims";
/// Partitions the processor owns after its last cycle.
pub const PARTITIONS_OWNED: &str = "messaging.eventhubs.partitions.owned";
/// Partitions lost, by reason.
pub const PARTITIONS_LOST: &str = "messaging.eventhubs.partitions.lost";
/// The partition's last enqueued sequence number − the last one handed to the application.
pub const RECEIVE_LAG: &str = "messaging.eventhubs.receive.lag";
/// Connections opened again after one broke.
pub const RECONNECTS: &str = "messaging.eventhubs.reconnects";

/// The event hub attribute.
pub const HUB: &str = "messaging.destination.name";
/// The consumer group attribute.
pub const GROUP: &str = "messaging.consumer.group.name";
/// The partition attribute.
pub const PARTITION: &str = "messaging.destination.partition.id";

/// Describes every metric once (units and help texts for exporters that show them).
pub fn describe() {
    metrics::describe_counter!(
        EVENTS_RECEIVED,
        metrics::Unit::Count,
        "Events a partition client handed to the application"
    );
    metrics::describe_counter!(CHECKPOINTS, metrics::Unit::Count, "Checkpoint writes, by outcome");
    metrics::describe_histogram!(
        CHECKPOINT_DURATION,
        metrics::Unit::Seconds,
        "Time of one checkpoint write"
    );
    metrics::describe_counter!(
        CLAIMS,
        metrics::Unit::Count,
        "Claims of partitions the processor did not own, by outcome"
    );
    metrics::describe_gauge!(
        PARTITIONS_OWNED,
        metrics::Unit::Count,
        "Partitions the processor owns after its last cycle"
    );
    metrics::describe_counter!(
        PARTITIONS_LOST,
        metrics::Unit::Count,
        "Partitions lost, by reason"
    );
    metrics::describe_gauge!(
        RECEIVE_LAG,
        metrics::Unit::Count,
        "Events enqueued after the last one handed to the application"
    );
    metrics::describe_counter!(
        RECONNECTS,
        metrics::Unit::Count,
        "Connections opened again after one broke"
    );
}

/// One partition client's metrics, registered once when it is handed out: recording on the
/// receive and checkpoint paths then builds no key and allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct PartitionMetrics {
    received: metrics::Counter,
    receive_lag: metrics::Gauge,
    checkpoints_ok: metrics::Counter,
    checkpoints_failed: metrics::Counter,
    checkpoint_duration: metrics::Histogram,
}

impl PartitionMetrics {
    pub(crate) fn new(hub: &str, group: &str, partition: &str) -> Self {
        let labels = [
            (HUB, hub.to_owned()),
            (GROUP, group.to_owned()),
            (PARTITION, partition.to_owned()),
        ];
        let outcome = |outcome: &str| {
            let mut with = labels.to_vec();
            with.push(("outcome", outcome.to_owned()));
            metrics::counter!(CHECKPOINTS, &with)
        };
        PartitionMetrics {
            received: metrics::counter!(EVENTS_RECEIVED, &labels),
            receive_lag: metrics::gauge!(RECEIVE_LAG, &labels),
            checkpoints_ok: outcome("ok"),
            checkpoints_failed: outcome("error"),
            checkpoint_duration: metrics::histogram!(CHECKPOINT_DURATION, &labels),
        }
    }

    pub(crate) fn received(&self, events: usize) {
        self.received.increment(events as u64);
    }

    pub(crate) fn receive_lag(&self, events: i64) {
        self.receive_lag.set(events.max(0) as f64);
    }

    pub(crate) fn checkpointed(&self, ok: bool, took: Duration) {
        if ok {
            self.checkpoints_ok.increment(1);
        } else {
            self.checkpoints_failed.increment(1);
        }
        self.checkpoint_duration.record(took.as_secs_f64());
    }
}

/// A processor's cycle: claims won and lost, partitions owned.
pub(crate) fn cycle(hub: &str, group: &str, owner: &str, won: usize, lost: usize, owned: usize) {
    let labels = [(HUB, hub.to_owned()), (GROUP, group.to_owned())];
    metrics::counter!(
        CLAIMS,
        &[
            labels[0].clone(),
            labels[1].clone(),
            ("outcome", "won".to_owned())
        ]
    )
    .increment(won as u64);
    metrics::counter!(
        CLAIMS,
        &[
            labels[0].clone(),
            labels[1].clone(),
            ("outcome", "lost".to_owned())
        ]
    )
    .increment(lost as u64);
    metrics::gauge!(
        PARTITIONS_OWNED,
        &[labels[0].clone(), labels[1].clone(), ("owner", owner.to_owned())]
    )
    .set(owned as f64);
}

/// A partition lost for `reason`.
pub(crate) fn lost(hub: &str, group: &str, reason: &str) {
    metrics::counter!(
        PARTITIONS_LOST,
        &[
            (HUB, hub.to_owned()),
            (GROUP, group.to_owned()),
            ("reason", reason.to_owned())
        ]
    )
    .increment(1);
}

/// A connection opened again after one broke.
pub(crate) fn reconnected(hub: &str) {
    metrics::counter!(RECONNECTS, &[(HUB, hub.to_owned())]).increment(1);
}
