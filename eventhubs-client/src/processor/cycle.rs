//! The background loop and one load-balancing cycle: renew, claim, hand out new partitions
//! (starting after their checkpoints), mark lost ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventhubs_store_core::{Checkpoint, Ownership};
use rand::Rng;
use time::OffsetDateTime;

use super::partition_client::PartitionClient;
use super::{Inner, Owned, load_balancer, relinquish};
use crate::error::{Error, ErrorKind, Result};
use crate::event::StartPosition;
use crate::receiver::ReceiverOptions;

impl Inner {
    pub(super) async fn run(self: Arc<Self>) {
        let mut closed = self.closed.subscribe();
        loop {
            let pause = {
                let mut state = self.state.lock().await;
                jittered(self.options.update_interval, &mut state.rng)
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = closed.wait_for(|c| *c) => return,
            }
            if let Err(e) = self.cycle().await {
                tracing::warn!(owner = %self.owner_id, error = %e, "load-balancing cycle failed; trying again next interval");
            }
        }
    }

    /// One load-balancing cycle: renew, claim, hand out new partitions, drop lost ones.
    #[tracing::instrument(level = "debug", skip(self), fields(owner = %self.owner_id, scope = %self.scope))]
    pub(super) async fn cycle(&self) -> Result<()> {
        let partition_ids = self.client.properties().await?.partition_ids;
        let listed = self.store.list_ownership(&self.scope).await?;
        let mut state = self.state.lock().await;
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
        let released: Vec<String> = state
            .owned
            .iter()
            .filter(|(_, o)| o.released.load(Ordering::SeqCst))
            .map(|(id, _)| id.clone())
            .collect();
        for claim in &mut claims {
            if released.contains(&claim.partition_id) {
                *claim = relinquish(claim);
            }
        }
        let won = self.store.claim_ownership(&claims, &Default::default()).await?;
        let mut now_owned: BTreeMap<String, Ownership> = BTreeMap::new();
        for record in won {
            if record.owner_id == self.owner_id {
                now_owned.insert(record.partition_id.clone(), record);
            }
        }
        // Lost: owned before, not won now (someone else renewed or took it), or released.
        let gone: Vec<String> = state
            .owned
            .keys()
            .filter(|id| !now_owned.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(o) = state.owned.remove(&id) {
                o.lost.store(true, Ordering::SeqCst);
                tracing::info!(partition = %id, "partition lost or released");
            }
        }
        let fresh: Vec<String> = now_owned
            .keys()
            .filter(|id| !state.owned.contains_key(*id))
            .cloned()
            .collect();
        for (id, record) in &now_owned {
            if let Some(o) = state.owned.get_mut(id) {
                o.record = record.clone();
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let checkpoints = self.store.list_checkpoints(&self.scope).await?;
        for id in fresh {
            let Some(record) = now_owned.remove(&id) else {
                continue;
            };
            let start = start_after(checkpoints.iter().find(|c| c.partition_id == id))
                .unwrap_or_else(|| self.options.start.clone());
            let options = ReceiverOptions {
                start,
                owner_level: self.options.owner_level,
                prefetch: self.options.prefetch,
            };
            let receiver = match self
                .client
                .open_receiver(&self.consumer_group, &id, options)
                .await
            {
                Ok(receiver) => receiver,
                Err(e) => {
                    // Still owned in the store: the next cycle renews it and tries again.
                    tracing::warn!(partition = %id, error = %e, "could not open the partition; retrying next cycle");
                    continue;
                }
            };
            let lost = Arc::new(AtomicBool::new(false));
            let released = Arc::new(AtomicBool::new(false));
            let client = PartitionClient {
                receiver,
                store: Arc::clone(&self.store),
                scope: self.scope.clone(),
                owner_id: self.owner_id.clone(),
                fenced: self.store.capabilities().fenced_checkpoints,
                lost: Arc::clone(&lost),
                released: Arc::clone(&released),
            };
            state.owned.insert(
                id.clone(),
                Owned {
                    record,
                    lost,
                    released,
                },
            );
            tracing::info!(partition = %id, "partition claimed");
            if self.ready_tx.send(client).is_err() {
                return Err(Error::new(ErrorKind::Closed, "the processor was dropped"));
            }
        }
        Ok(())
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

/// `interval` ±10 %.
fn jittered(interval: Duration, rng: &mut impl Rng) -> Duration {
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
