//! The background loop and one load-balancing cycle: renew, claim, hand out new partitions
//! (starting after their checkpoints) and dropped ones again, mark lost and expired ones.
//!
//! Faults never stop the loop: a failed cycle is reported to the application and tried again
//! with the client's backoff (capped at the update interval); meanwhile the partitions already
//! owned keep being read until their last renewal expires.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use eventhubs_store_core::{Checkpoint, Ownership};
use rand::Rng;
use time::OffsetDateTime;

use super::events::{LossReason, ProcessorEvent};
use super::lease::Lease;
use super::partition_client::{PartitionClient, Target};
use super::{Inner, load_balancer, relinquish};
use crate::error::{Error, ErrorKind, Result};
use crate::event::StartPosition;
use crate::receiver::ReceiverOptions;
use crate::telemetry::PartitionMetrics;

impl Inner {
    pub(super) async fn run(self: Arc<Self>) {
        let mut closed = self.closed.subscribe();
        let mut failures = 0u32;
        loop {
            let pause = {
                let mut state = self.state.lock().await;
                match failures {
                    // A cycle right after another owner's record expires: a crashed processor's
                    // partitions move at its expiry, not up to an interval later.
                    0 => {
                        let interval = jittered(self.options.update_interval, &mut state.rng);
                        state.next_expiry.map_or(interval, |at| {
                            interval.min(at.saturating_duration_since(Instant::now()) + EXPIRY_SLACK)
                        })
                    }
                    n => self
                        .client
                        .retry_options()
                        .delay(n - 1, &mut state.rng)
                        .min(self.options.update_interval),
                }
            };
            let next = tokio::time::Instant::now() + pause;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => break,
                    _ = self.wake.notified() => {
                        if let Err(e) = self.hand_out(Vec::new(), Instant::now()).await {
                            self.report(None, &e);
                        }
                    }
                    _ = async { drop(closed.wait_for(|c| *c).await) } => return,
                }
            }
            match self.cycle().await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.report(None, &e);
                }
            }
            self.expire_overdue().await;
        }
    }

    /// Stops reading partitions whose last renewal has expired (the store could not be
    /// reached for the whole expiration): others may own them now.
    async fn expire_overdue(&self) {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let overdue: Vec<String> = state
            .owned
            .iter()
            .filter(|(_, lease)| now >= lease.expires())
            .map(|(id, _)| id.clone())
            .collect();
        for id in overdue {
            if let Some(lease) = state.owned.remove(&id) {
                self.lose(&id, &lease, LossReason::Expired);
            }
        }
    }

    /// One load-balancing cycle: renew, claim, hand out new and dropped partitions, drop lost
    /// ones. While the hub cannot be reached the partition ids of the last successful read
    /// are used, so renewals go on.
    #[tracing::instrument(level = "debug", skip(self), fields(owner = %self.owner_id, scope = %self.scope))]
    pub(super) async fn cycle(&self) -> Result<()> {
        // Once the ids are known, the hub gets one interval to answer (the client retries
        // inside it): a hub that is down must not hold up the renewals.
        let known = !self.state.lock().await.partition_ids.is_empty();
        let properties = if known {
            tokio::time::timeout(self.options.update_interval, self.client.properties())
                .await
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Unavailable,
                        "event hub properties: no answer within the update interval",
                    ))
                })
        } else {
            self.client.properties().await
        };
        let partition_ids = match properties {
            Ok(properties) => {
                self.state.lock().await.partition_ids = properties.partition_ids.clone();
                properties.partition_ids
            }
            Err(e) => {
                let known = self.state.lock().await.partition_ids.clone();
                if known.is_empty() {
                    return Err(e);
                }
                self.report(None, &e);
                known
            }
        };
        let listed = self.store.list_ownership(&self.scope).await?;
        let mut state = self.state.lock().await;
        state.next_expiry = next_expiry(&listed, &self.owner_id, self.options.partition_expiration);
        let inputs = load_balancer::Inputs {
            scope: &self.scope,
            owner_id: &self.owner_id,
            partition_ids: &partition_ids,
            ownership: &listed,
            now: OffsetDateTime::now_utc(),
            expiration: self.options.partition_expiration,
            strategy: self.options.strategy,
        };
        let mut claims = load_balancer::plan(&inputs, &mut state.rng);
        // Partitions whose client was closed are given up instead of renewed.
        for claim in &mut claims {
            if state
                .owned
                .get(&claim.partition_id)
                .is_some_and(|lease| lease.released.load(Ordering::SeqCst))
            {
                *claim = relinquish(claim);
            }
        }
        let started = Instant::now();
        let won = self.store.claim_ownership(&claims, &Default::default()).await?;
        let expires = started + self.options.partition_expiration;
        let now_owned: BTreeSet<String> = won
            .into_iter()
            .filter(|record| record.owner_id == self.owner_id)
            .map(|record| record.partition_id)
            .collect();
        let acquired: Vec<&String> = claims
            .iter()
            .filter(|c| !c.owner_id.is_empty() && !state.owned.contains_key(&c.partition_id))
            .map(|c| &c.partition_id)
            .collect();
        let won_new = acquired.iter().filter(|id| now_owned.contains(**id)).count();
        crate::telemetry::cycle(
            self.client.event_hub(),
            &self.consumer_group,
            &self.owner_id,
            won_new,
            acquired.len() - won_new,
            now_owned.len(),
        );
        // Lost: owned before, not won now (someone else renewed or took it), or released.
        let gone: Vec<String> = state
            .owned
            .keys()
            .filter(|id| !now_owned.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(lease) = state.owned.remove(&id) {
                let reason = if lease.released.load(Ordering::SeqCst) {
                    LossReason::Released
                } else {
                    LossReason::Stolen
                };
                self.lose(&id, &lease, reason);
            }
        }
        let mut fresh = Vec::new();
        for id in now_owned {
            match state.owned.get(&id) {
                // Its link was stolen, yet the store says it is still ours: whoever stole the
                // link does not own it. Read it again.
                Some(lease) if lease.lost().is_some() => {
                    state.owned.remove(&id);
                    fresh.push(id);
                }
                Some(lease) => lease.renewed(expires),
                None => fresh.push(id),
            }
        }
        drop(state);
        self.hand_out(fresh, expires).await
    }

    /// Hands out a partition client for each newly won partition in `fresh` and for each owned
    /// partition whose client was dropped, starting after the checkpoint. Each receiver is
    /// opened in a task of its own, so a slow or hung attach never holds up the cycles (and
    /// with them the renewals of every other partition); the partition is owned, and renewed,
    /// from now on. One that cannot be opened is relinquished (C8), never kept owned and unread.
    async fn hand_out(&self, fresh: Vec<String>, expires: Instant) -> Result<()> {
        let mut state = self.state.lock().await;
        if *self.closed.borrow() {
            return Ok(());
        }
        let dropped: Vec<(String, Arc<Lease>)> = state
            .owned
            .iter()
            .filter(|(_, lease)| lease.dropped.load(Ordering::SeqCst) && lease.lost().is_none())
            .map(|(id, lease)| (id.clone(), Arc::clone(lease)))
            .collect();
        if fresh.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        // The dropped clients' background checkpoints land before the checkpoints are read,
        // so their partitions start again after the last one queued.
        for (id, lease) in &dropped {
            if let Err(e) = lease.writes.flush().await {
                self.report(Some(id), &e);
            }
        }
        let dropped = dropped.into_iter().map(|(id, lease)| (id, lease.expires()));
        let checkpoints = self.store.list_checkpoints(&self.scope).await?;
        let to_open = fresh.into_iter().map(|id| (id, expires)).chain(dropped);
        for (id, expires) in to_open {
            let start = start_after(checkpoints.iter().find(|c| c.partition_id == id))
                .or_else(|| self.options.partition_start.get(&id).cloned())
                .unwrap_or_else(|| self.options.start.clone());
            let lease = Arc::new(Lease::new(&id, expires));
            state.owned.insert(id.clone(), Arc::clone(&lease));
            if let Some(inner) = self.weak.upgrade() {
                tokio::spawn(async move { inner.open(id, start, lease).await });
            }
        }
        Ok(())
    }

    /// Opens one partition's receiver and hands its client out; relinquishes the partition when
    /// it cannot be opened.
    async fn open(self: Arc<Self>, id: String, start: StartPosition, lease: Arc<Lease>) {
        let options = ReceiverOptions {
            start: start.clone(),
            owner_level: self.options.owner_level,
            prefetch: self.options.prefetch,
            track_last_enqueued_event_properties: self.options.track_last_enqueued_event_properties,
        };
        let mut receiver = match self
            .client
            .open_receiver(&self.consumer_group, &id, options)
            .await
        {
            Ok(receiver) => receiver,
            Err(e) => {
                self.report(Some(&id), &e);
                {
                    let mut state = self.state.lock().await;
                    if state.owned.get(&id).is_some_and(|l| Arc::ptr_eq(l, &lease)) {
                        state.owned.remove(&id);
                    }
                }
                self.lose(&id, &lease, LossReason::Released);
                self.give_up(&id).await;
                return;
            }
        };
        if lease.lost().is_some() || *self.closed.borrow() {
            let _ = receiver.close().await;
            return;
        }
        let guard = Arc::clone(&lease);
        receiver.set_attach_guard(Arc::new(move || guard.ensure_owned()));
        let client = PartitionClient {
            receiver: Some(receiver),
            scope: self.scope.clone(),
            start,
            background_interval: self.options.background_checkpoint_interval,
            last_received: None,
            target: Arc::new(Target {
                store: Arc::clone(&self.store),
                partition_id: id.clone(),
                owner_id: self.owner_id.clone(),
                fenced: self.store.capabilities().fenced_checkpoints,
                lease: Arc::clone(&lease),
                processor: self.weak.clone(),
                metrics: PartitionMetrics::new(self.client.event_hub(), &self.consumer_group, &id),
            }),
        };
        lease.handed.store(true, Ordering::SeqCst);
        tracing::info!(partition = %id, "partition handed out");
        if self.ready_tx.send(client).is_ok() {
            let _ = self
                .events
                .send(ProcessorEvent::PartitionInitialized { partition_id: id });
        }
    }

    /// Relinquishes a partition this processor cannot read (C8), so another one can: with the
    /// etag the store lists now (the cycles renewed it while the open was tried).
    async fn give_up(&self, partition_id: &str) {
        let record = match self.store.list_ownership(&self.scope).await {
            Ok(listed) => listed
                .into_iter()
                .find(|o| o.partition_id == partition_id && o.owner_id == self.owner_id),
            Err(e) => {
                self.report(Some(partition_id), &Error::from(e));
                None
            }
        };
        let Some(record) = record else { return };
        if let Err(e) = self
            .store
            .claim_ownership(&[relinquish(&record)], &Default::default())
            .await
        {
            self.report(Some(partition_id), &Error::from(e));
        }
    }
}

/// Where to start after `checkpoint`: after its offset, else after its sequence number.
fn start_after(checkpoint: Option<&Checkpoint>) -> Option<StartPosition> {
    let checkpoint = checkpoint?;
    match (&checkpoint.offset, checkpoint.sequence_number) {
        (Some(offset), _) => Some(StartPosition::Offset {
            offset: offset.clone(),
            inclusive: false,
        }),
        (None, Some(sequence_number)) => Some(StartPosition::SequenceNumber {
            sequence_number,
            inclusive: false,
        }),
        (None, None) => None,
    }
}

/// How long after another owner's record expires the extra cycle runs (clock skew between the
/// store and this process, and the record's own rounding, e.g. blob's whole seconds).
const EXPIRY_SLACK: Duration = Duration::from_millis(50);

/// When the first live record of another owner expires, if one does, by this process's clock.
fn next_expiry(listed: &[Ownership], owner_id: &str, expiration: Duration) -> Option<Instant> {
    let now = OffsetDateTime::now_utc();
    listed
        .iter()
        .filter(|o| !o.owner_id.is_empty() && o.owner_id != owner_id)
        .filter_map(|o| {
            let expires = o.last_modified_time? + expiration;
            let left = expires - now;
            (left > time::Duration::ZERO).then(|| Instant::now() + left.unsigned_abs())
        })
        .min()
}

/// `interval` ±10 %.
pub(super) fn jittered(interval: Duration, rng: &mut impl Rng) -> Duration {
    interval.mul_f64(rng.random_range(0.9..=1.1))
}

#[cfg(test)]
mod tests {
    use eventhubs_store_core::PartitionScope;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("ns.servicebus.windows.net", "hub", "$default").unwrap()
    }

    #[test]
    fn a_checkpoint_starts_after_its_offset_then_its_sequence_number() {
        let both = Checkpoint::new(scope(), "0", Some("1024".into()), Some(7));
        assert_eq!(
            start_after(Some(&both)),
            Some(StartPosition::Offset {
                offset: "1024".into(),
                inclusive: false
            })
        );
        let seq = Checkpoint::new(scope(), "0", None, Some(7));
        assert_eq!(
            start_after(Some(&seq)),
            Some(StartPosition::SequenceNumber {
                sequence_number: 7,
                inclusive: false
            })
        );
        assert_eq!(start_after(None), None);
    }

    #[test]
    fn the_next_cycle_is_due_when_another_owners_record_expires() {
        let record = |owner: &str, age: i64| {
            let mut o = Ownership::new(scope(), "0", owner);
            o.last_modified_time = Some(OffsetDateTime::now_utc() - time::Duration::seconds(age));
            o
        };
        let expiry = Duration::from_secs(60);
        let due = next_expiry(&[record("other", 50), record("other", 10)], "me", expiry).unwrap();
        let left = due.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(8) && left <= Duration::from_secs(10),
            "{left:?}"
        );
        assert_eq!(
            next_expiry(&[record("me", 50)], "me", expiry),
            None,
            "its own records renew"
        );
        assert_eq!(next_expiry(&[record("", 50)], "me", expiry), None, "relinquished");
        assert_eq!(
            next_expiry(&[record("other", 61)], "me", expiry),
            None,
            "already expired"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(10), &mut rng);
            assert!(
                d >= Duration::from_secs(9) && d <= Duration::from_secs(11),
                "{d:?}"
            );
        }
    }
}
