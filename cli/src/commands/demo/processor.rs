//! A simulated event processor for the demo: the load-balancing cycle of DESIGN.md "Processor"
//! (greedy strategy) done through the public store API, with made-up events instead of a hub.
//!
//! Every cycle it renews what it owns (a claim with the etag it holds, C4; a lost renewal means
//! another processor took the partition), counts the active owners, and claims up to its fair
//! share: unowned, relinquished (C8) and expired partitions first, stealing only from owners
//! above the maximum share. Checkpoints are fenced (C13) when the store offers it, so a zombie
//! can never move a checkpoint after losing its partition.
//!
//! When the demo moves to the emulator, `eventhubs-client`'s `Processor` takes this type's place:
//! the orchestration in `demo/mod.rs` only calls [`SimProcessor::cycle`],
//! [`SimProcessor::process`] and [`SimProcessor::close`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ErrorKind, Ownership, PartitionScope, Result,
    SetCheckpointOptions,
};
use rand::Rng;
use time::OffsetDateTime;

use crate::commands::status::{OwnershipState, ownership_state};

/// One simulated processor.
pub struct SimProcessor {
    /// Its owner id.
    pub id: String,
    store: Arc<dyn CheckpointStore>,
    scope: PartitionScope,
    partitions: Vec<String>,
    expiry: Duration,
    /// Partitions it believes it owns, with the record of its last won claim.
    owned: BTreeMap<String, Ownership>,
    /// The last event it processed, per owned partition.
    positions: HashMap<String, i64>,
}

impl SimProcessor {
    /// A processor `id` for `partitions` of `scope`.
    pub fn new(
        id: &str,
        store: Arc<dyn CheckpointStore>,
        scope: PartitionScope,
        partitions: Vec<String>,
        expiry: Duration,
    ) -> Self {
        SimProcessor {
            id: id.to_owned(),
            store,
            scope,
            partitions,
            expiry,
            owned: BTreeMap::new(),
            positions: HashMap::new(),
        }
    }

    /// How many partitions it believes it owns.
    pub fn owned_count(&self) -> usize {
        self.owned.len()
    }

    /// One load-balancing cycle; returns what happened, one line per change.
    ///
    /// # Errors
    /// The store's (a real processor would log and retry next cycle).
    pub async fn cycle(&mut self) -> Result<Vec<String>> {
        let mut notes = self.renew().await?;
        let listed = self.store.list_ownership(&self.scope).await?;
        let now = OffsetDateTime::now_utc();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        counts.insert(self.id.clone(), self.owned.len());
        for o in &listed {
            if o.owner_id != self.id && ownership_state(Some(o), now, self.expiry).0.is_held() {
                *counts.entry(o.owner_id.clone()).or_default() += 1;
            }
        }
        let (min, max) = fair_share(self.partitions.len(), counts.len());
        let mine = self.owned.len();
        let free: Vec<(String, Option<&Ownership>, &'static str)> = self
            .partitions
            .iter()
            .filter(|p| !self.owned.contains_key(*p))
            .filter_map(|p| {
                let record = listed.iter().find(|o| &o.partition_id == p);
                match ownership_state(record, now, self.expiry).0 {
                    OwnershipState::Unowned => Some((p.clone(), None, "new")),
                    OwnershipState::Relinquished => Some((p.clone(), record, "relinquished")),
                    OwnershipState::Expired => Some((p.clone(), record, "expired")),
                    OwnershipState::Owned => None,
                }
            })
            .collect();
        let want = if mine < min {
            min - mine
        } else if mine < max && !free.is_empty() {
            1
        } else {
            0
        };
        let mut wanted: Vec<(Ownership, String)> = free
            .into_iter()
            .take(want)
            .map(|(p, record, why)| (self.claim_of(&p, record), why.to_owned()))
            .collect();
        if wanted.len() < want && mine < min {
            wanted.extend(self.steals(&listed, &counts, max, want - wanted.len(), now));
        }
        if !wanted.is_empty() {
            notes.extend(self.claim(wanted).await?);
        }
        Ok(notes)
    }

    fn claim_of(&self, partition: &str, record: Option<&Ownership>) -> Ownership {
        Ownership::new(self.scope.clone(), partition, &self.id).with_etag(record.and_then(|r| r.etag.clone()))
    }

    /// Partitions to take from owners above `max` (most loaded first).
    fn steals(
        &self,
        listed: &[Ownership],
        counts: &BTreeMap<String, usize>,
        max: usize,
        need: usize,
        now: OffsetDateTime,
    ) -> Vec<(Ownership, String)> {
        let mut load = counts.clone();
        let mut out = Vec::new();
        for _ in 0..need {
            let Some((victim, _)) = load
                .iter()
                .filter(|(owner, n)| **owner != self.id && **n > max)
                .max_by_key(|(_, n)| **n)
                .map(|(o, n)| (o.clone(), *n))
            else {
                break;
            };
            let taken: Vec<&str> = out
                .iter()
                .map(|(o, _): &(Ownership, String)| o.partition_id.as_str())
                .collect();
            let Some(record) = listed.iter().find(|o| {
                o.owner_id == victim
                    && !taken.contains(&o.partition_id.as_str())
                    && ownership_state(Some(o), now, self.expiry).0.is_held()
            }) else {
                break;
            };
            out.push((
                self.claim_of(&record.partition_id, Some(record)),
                format!("stolen from {victim}"),
            ));
            if let Some(n) = load.get_mut(&victim) {
                *n -= 1;
            }
        }
        out
    }

    async fn claim(&mut self, wanted: Vec<(Ownership, String)>) -> Result<Vec<String>> {
        let claims: Vec<Ownership> = wanted.iter().map(|(o, _)| o.clone()).collect();
        let won = self
            .store
            .claim_ownership(&claims, &ClaimOptions::default())
            .await?;
        let checkpoints = self.store.list_checkpoints(&self.scope).await?;
        // Per reason: the partitions won and where each resumes.
        let mut by_reason: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for record in won {
            let why = wanted
                .iter()
                .find(|(o, _)| o.partition_id == record.partition_id)
                .map(|(_, w)| w.clone())
                .unwrap_or_default();
            let resume = checkpoints
                .iter()
                .find(|c| c.partition_id == record.partition_id)
                .and_then(|c| c.sequence_number);
            let entry = by_reason.entry(why).or_default();
            entry.0.push(record.partition_id.clone());
            if let Some(seq) = resume {
                entry.1.push(format!("{}@{seq}", record.partition_id));
            }
            self.positions
                .insert(record.partition_id.clone(), resume.unwrap_or(-1));
            self.owned.insert(record.partition_id.clone(), record);
        }
        Ok(by_reason
            .into_iter()
            .map(|(why, (parts, resumes))| {
                let mut line = format!("claimed {} ({why})", parts.join(" "));
                if !resumes.is_empty() {
                    line.push_str(&format!("; resumes after checkpoints {}", resumes.join(" ")));
                }
                line
            })
            .collect())
    }

    /// Renews everything it owns; partitions whose renewal loses were taken by someone else.
    async fn renew(&mut self) -> Result<Vec<String>> {
        if self.owned.is_empty() {
            return Ok(Vec::new());
        }
        let claims: Vec<Ownership> = self.owned.values().cloned().collect();
        let won = self
            .store
            .claim_ownership(&claims, &ClaimOptions::default())
            .await?;
        let lost: Vec<String> = self
            .owned
            .keys()
            .filter(|p| !won.iter().any(|w| &&w.partition_id == p))
            .cloned()
            .collect();
        for record in won {
            self.owned.insert(record.partition_id.clone(), record);
        }
        for p in &lost {
            self.owned.remove(p);
            self.positions.remove(p);
        }
        Ok(if lost.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "lost {} (its renewal found a newer etag: taken over)",
                lost.join(" ")
            )]
        })
    }

    /// Processes a few made-up events on every owned partition and checkpoints them, fenced
    /// when the store offers it (C13). A refused checkpoint means the partition is gone.
    ///
    /// # Errors
    /// The store's, except `OwnershipLost`, which is reported as a line.
    pub async fn process(&mut self) -> Result<Vec<String>> {
        let fenced = self.store.capabilities().fenced_checkpoints;
        let mut notes = Vec::new();
        let partitions: Vec<String> = self.owned.keys().cloned().collect();
        for p in partitions {
            let position = self.positions.entry(p.clone()).or_insert(-1);
            *position += rand::rng().random_range(5..40);
            let cp = Checkpoint::new(
                self.scope.clone(),
                &p,
                Some((*position * 128).to_string()),
                Some(*position),
            );
            let options = if fenced {
                SetCheckpointOptions::fenced(&self.id)
            } else {
                SetCheckpointOptions::new()
            };
            match self.store.set_checkpoint(&cp, &options).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::OwnershipLost => {
                    notes.push(format!(
                        "checkpoint of partition {p} refused: it no longer owns it (fencing, rule C13)"
                    ));
                    self.owned.remove(&p);
                    self.positions.remove(&p);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(notes)
    }

    /// Shuts down cleanly: relinquishes everything it owns (owner id `""`, C8) so others take
    /// over at once instead of after the expiry.
    ///
    /// # Errors
    /// The store's.
    pub async fn close(&mut self) -> Result<Vec<String>> {
        let release: Vec<Ownership> = self
            .owned
            .values()
            .map(|o| Ownership {
                owner_id: String::new(),
                ..o.clone()
            })
            .collect();
        let won = self
            .store
            .claim_ownership(&release, &ClaimOptions::default())
            .await?;
        let parts: Vec<&str> = won.iter().map(|o| o.partition_id.as_str()).collect();
        let note = format!("relinquished {} and left", parts.join(" "));
        self.owned.clear();
        Ok(vec![note])
    }
}

/// (min, max) partitions per owner: `P / owners`, plus one when there is a remainder.
pub fn fair_share(partitions: usize, owners: usize) -> (usize, usize) {
    let owners = owners.max(1);
    let min = partitions / owners;
    let max = if partitions.is_multiple_of(owners) {
        min
    } else {
        min + 1
    };
    (min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_shares() {
        assert_eq!(fair_share(8, 1), (8, 8));
        assert_eq!(fair_share(8, 2), (4, 4));
        assert_eq!(fair_share(8, 3), (2, 3));
        assert_eq!(fair_share(8, 0), (8, 8));
    }
}
