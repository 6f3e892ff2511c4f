//! The hub's side of `ehstore status --connection-string`: per partition, how far the consumer
//! group's checkpoint is behind the newest event, in events and in time, and what a person
//! should make of it.
//!
//! Event Hubs keeps no consumer state: the checkpoint is in the store, the hub knows its
//! retained range (`beginning_sequence_number` to `last_enqueued_sequence_number`). From both:
//! - the next event to process is the one after the checkpoint (or the oldest retained one when
//!   there is no checkpoint: every retained event counts);
//! - events between the checkpoint and the oldest retained event are **lost to retention**;
//! - **lag in events** counts the retained events from the next one to process to the newest;
//! - **lag in time** is exact: one small receive reads the enqueued time of the first
//!   unprocessed event, and the lag is how long ago it was enqueued.

use std::time::Duration;

use eventhubs_client::{EventHubClient, PartitionProperties, ReceiverOptions, StartPosition};
use eventhubs_store_core::Checkpoint;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::status::OwnershipState;

/// How long the one receive of the first unprocessed event may wait.
const FIRST_EVENT_WAIT: Duration = Duration::from_secs(5);

/// What a person should make of a partition's lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LagState {
    /// Nothing retained is left to process.
    CaughtUp,
    /// Events wait, and a processor owns the partition.
    Behind,
    /// Events wait, and no processor owns the partition: nobody will process them.
    UnownedWithLag,
    /// The checkpoint is older than the oldest retained event: the events between are gone.
    LostToRetention,
    /// (`--watch`) Owned, events wait, and the checkpoint has not moved for `--stall-after`.
    Stalled,
    /// (`--watch`) The checkpoint moved backwards since the last sample.
    Rewound,
    /// (`--watch`) Owned, the checkpoint moves, and the lag did not grow across the window.
    CatchingUp,
}

impl LagState {
    /// The word shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            LagState::CaughtUp => "caught up",
            LagState::Behind => "behind",
            LagState::UnownedWithLag => "unowned with lag",
            LagState::LostToRetention => "lost to retention",
            LagState::Stalled => "stalled",
            LagState::Rewound => "rewound",
            LagState::CatchingUp => "catching up",
        }
    }
}

/// One partition's lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    /// The oldest retained event's sequence number (the newest + 1 when none is retained).
    pub beginning_sequence_number: i64,
    /// The newest event's sequence number (-1 when none was ever sent).
    pub last_enqueued_sequence_number: i64,
    /// When the newest event was enqueued (RFC 3339).
    pub last_enqueued_time: Option<String>,
    /// Retained events not processed yet.
    pub lag_events: i64,
    /// How long ago the first unprocessed event was enqueued, in milliseconds (0 when caught
    /// up; `None` when it could not be read).
    pub lag_ms: Option<u64>,
    /// Events the checkpoint never reached and the hub no longer retains.
    pub lost_to_retention: i64,
    /// The verdict.
    pub lag_state: LagState,
    /// Why `lag_ms` is missing, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_time_error: Option<String>,
}

/// Where processing stands in a partition's retained range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    /// The oldest retained sequence number (newest + 1 when empty).
    pub first_retained: i64,
    /// The newest sequence number (-1 when none was ever sent).
    pub last: i64,
}

impl Range {
    pub(crate) fn of(p: &PartitionProperties) -> Self {
        let first_retained = if p.is_empty {
            p.last_enqueued_sequence_number + 1
        } else {
            p.beginning_sequence_number
        };
        Range {
            first_retained,
            last: p.last_enqueued_sequence_number,
        }
    }

    /// `(first unprocessed sequence number, lag in events, lost to retention)` when the next
    /// event to process is `next` (`None`: no checkpoint, every retained event counts).
    pub(crate) fn lag(self, next: Option<i64>) -> (i64, i64, i64) {
        let next = next.unwrap_or(self.first_retained);
        let lost = (self.first_retained - next).max(0);
        let start = next.max(self.first_retained);
        let lag = (self.last - start + 1).max(0);
        (start, lag, lost)
    }
}

/// The verdict for a lag of `lag` events with `lost` lost, with the ownership in `owned`.
pub(crate) fn verdict(lag: i64, lost: i64, ownership: OwnershipState) -> LagState {
    if lost > 0 {
        LagState::LostToRetention
    } else if lag == 0 {
        LagState::CaughtUp
    } else if ownership.is_held() {
        LagState::Behind
    } else {
        LagState::UnownedWithLag
    }
}

/// One partition's lag against the hub: its properties, and one receive of the first
/// unprocessed event for the exact lag in time.
///
/// # Errors
/// The hub's, when its properties cannot be read.
pub async fn partition_lag(
    client: &EventHubClient,
    consumer_group: &str,
    partition_id: &str,
    checkpoint: Option<&Checkpoint>,
    ownership: OwnershipState,
) -> eventhubs_client::Result<PartitionLag> {
    let properties = client.partition_properties(partition_id).await?;
    let range = Range::of(&properties);
    let next = match checkpoint {
        None => None,
        Some(c) => match (c.sequence_number, &c.offset) {
            (Some(seq), _) => Some(seq + 1),
            // An offset-only checkpoint: the event after it says where processing stands.
            (None, Some(offset)) => {
                let start = StartPosition::Offset {
                    offset: offset.clone(),
                    inclusive: false,
                };
                match first_event(client, consumer_group, partition_id, start).await {
                    Ok(Some((seq, _))) => Some(seq),
                    Ok(None) => Some(range.last + 1),
                    Err(_) => None,
                }
            }
            (None, None) => None,
        },
    };
    let (start, lag_events, lost) = range.lag(next);
    let (lag_ms, lag_time_error) = if lag_events == 0 {
        (Some(0), None)
    } else {
        let at = StartPosition::SequenceNumber {
            sequence_number: start,
            inclusive: true,
        };
        let key = (
            client.fully_qualified_namespace().to_owned(),
            client.event_hub().to_owned(),
            partition_id.to_owned(),
            start,
        );
        let found = match enqueued_times().get(&key) {
            Some(enqueued) => Ok(Some((start, enqueued))),
            None => first_event(client, consumer_group, partition_id, at).await,
        };
        match found {
            Ok(Some((sequence_number, enqueued))) => {
                if sequence_number == start {
                    enqueued_times().insert(key, enqueued);
                }
                let age = OffsetDateTime::now_utc() - enqueued;
                let ms = u64::try_from(age.whole_milliseconds()).unwrap_or(0);
                (Some(ms), None)
            }
            Ok(None) => (
                None,
                Some("the first unprocessed event did not arrive in time".to_owned()),
            ),
            Err(e) => (None, Some(e.to_string())),
        }
    };
    Ok(PartitionLag {
        beginning_sequence_number: range.first_retained,
        last_enqueued_sequence_number: range.last,
        last_enqueued_time: properties
            .last_enqueued_time
            .and_then(|t| t.format(&Rfc3339).ok()),
        lag_events,
        lag_ms,
        lost_to_retention: lost,
        lag_state: verdict(lag_events, lost, ownership),
        lag_time_error,
    })
}

/// (namespace, hub, partition, sequence number) → enqueued time.
type EventKey = (String, String, String, i64);

/// Enqueued times already read: an event's enqueued time never changes, so a `--watch` or a
/// KEDA collection whose checkpoint has not moved reads the first unprocessed event once, not
/// at every sample. Bounded: emptied when it reaches [`ENQUEUED_TIMES_MAX`] entries.
#[derive(Debug, Default)]
struct EnqueuedTimes(std::sync::Mutex<std::collections::HashMap<EventKey, OffsetDateTime>>);

const ENQUEUED_TIMES_MAX: usize = 100_000;

impl EnqueuedTimes {
    fn get(&self, key: &EventKey) -> Option<OffsetDateTime> {
        crate::commands::lock(&self.0).get(key).copied()
    }

    fn insert(&self, key: EventKey, enqueued: OffsetDateTime) {
        let mut map = crate::commands::lock(&self.0);
        if map.len() >= ENQUEUED_TIMES_MAX {
            map.clear();
        }
        map.insert(key, enqueued);
    }
}

fn enqueued_times() -> &'static EnqueuedTimes {
    static TIMES: std::sync::OnceLock<EnqueuedTimes> = std::sync::OnceLock::new();
    TIMES.get_or_init(EnqueuedTimes::default)
}

/// The sequence number and enqueued time of the first event at `start`, if one arrives.
async fn first_event(
    client: &EventHubClient,
    consumer_group: &str,
    partition_id: &str,
    start: StartPosition,
) -> eventhubs_client::Result<Option<(i64, OffsetDateTime)>> {
    let options = ReceiverOptions {
        start,
        owner_level: None,
        prefetch: 1,
        ..ReceiverOptions::default()
    };
    let mut receiver = client
        .open_receiver(consumer_group, partition_id, options)
        .await?;
    let events = receiver.receive(1, FIRST_EVENT_WAIT).await;
    let _ = receiver.close().await;
    Ok(events?.first().map(|e| (e.sequence_number, e.enqueued_time)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first_retained: i64, last: i64) -> Range {
        Range { first_retained, last }
    }

    #[test]
    fn lag_counts_retained_events_after_the_checkpoint() {
        // Retained 0..=9, checkpoint at 4: 5..=9 wait.
        assert_eq!(range(0, 9).lag(Some(5)), (5, 5, 0));
        // Caught up.
        assert_eq!(range(0, 9).lag(Some(10)), (10, 0, 0));
        // No checkpoint: every retained event counts.
        assert_eq!(range(3, 9).lag(None), (3, 7, 0));
        // Checkpoint at 1, oldest retained 6: 2..=5 are gone, 6..=9 wait.
        assert_eq!(range(6, 9).lag(Some(2)), (6, 4, 4));
        // Nothing ever sent.
        assert_eq!(range(0, -1).lag(None), (0, 0, 0));
        // Everything expired after the checkpoint at 4 was written: 5..=9 gone, none waits.
        assert_eq!(range(10, 9).lag(Some(5)), (10, 0, 5));
    }

    #[test]
    fn the_verdict_puts_loss_first_then_lag_then_who_owns() {
        assert_eq!(verdict(0, 0, OwnershipState::Owned), LagState::CaughtUp);
        assert_eq!(verdict(0, 0, OwnershipState::Unowned), LagState::CaughtUp);
        assert_eq!(verdict(5, 0, OwnershipState::Owned), LagState::Behind);
        assert_eq!(verdict(5, 0, OwnershipState::Expired), LagState::UnownedWithLag);
        assert_eq!(
            verdict(5, 0, OwnershipState::Relinquished),
            LagState::UnownedWithLag
        );
        assert_eq!(verdict(0, 3, OwnershipState::Owned), LagState::LostToRetention);
    }
}
