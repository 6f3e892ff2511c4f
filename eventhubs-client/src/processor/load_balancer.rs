//! One load-balancing decision, as a pure function of the ownership records: which claims a
//! processor sends this cycle. `Adaptive` (the default) plans in the `adaptive` module; `Balanced`
//! and `Greedy` follow Go's azeventhubs v2 processor, with relinquished partitions (owner `""`,
//! C8) counted as free:
//!
//! - every cycle re-claims what the processor owns (the heartbeat that keeps it from expiring);
//! - the owners are the distinct owners of live records, plus this processor;
//!   `max = ceil(P / owners)`;
//! - at `max` or above it claims nothing more; one below `max` when `P` does not divide evenly,
//!   it claims one more only if something is free or someone is above `max`;
//! - otherwise `balanced` claims one partition per cycle, `greedy` up to `max`: free ones
//!   (never owned, relinquished or expired) first, chosen at random, stealing only from owners
//!   above `max`.
//!
//! A claim of a partition somebody has a record of carries that record's etag (C4); a claim of a
//! partition nobody ever owned carries none (C3).

use std::collections::BTreeMap;
use std::time::Duration;

use eventhubs_store_core::{Ownership, PartitionScope};
use rand::Rng;
use rand::seq::SliceRandom;
use time::OffsetDateTime;

/// How a processor claims partitions it does not own yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadBalancingStrategy {
    /// The default: every processor computes the same plan from the listing (target counts
    /// of floor or ceil of P/N, the free and surplus partitions paired with the owners short of
    /// their target), so every partition is owned within one cycle, the split is balanced
    /// within two, only what must move moves, and nothing moves after (see `adaptive`).
    #[default]
    Adaptive,
    /// As in the Go and Python SDKs: one partition per cycle until every processor has its
    /// share; partitions move slowly, one at a time, when processors come and go.
    Balanced,
    /// As in the Go and Python SDKs: as many as its share in one cycle, chosen at random;
    /// faster to start, more partitions move at once.
    Greedy,
}

/// What one decision looks at.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The scope the processor works in.
    pub scope: &'a PartitionScope,
    /// This processor's owner id.
    pub owner_id: &'a str,
    /// The event hub's partitions.
    pub partition_ids: &'a [String],
    /// Every ownership record of the scope, as listed.
    pub ownership: &'a [Ownership],
    /// Now, by the processor's clock.
    pub now: OffsetDateTime,
    /// A record not renewed for this long is expired.
    pub expiration: Duration,
    /// The strategy.
    pub strategy: LoadBalancingStrategy,
}

/// The claims to send: renewals of everything this processor owns, then new claims.
pub fn plan(inputs: &Inputs<'_>, rng: &mut impl Rng) -> Vec<Ownership> {
    if inputs.strategy == LoadBalancingStrategy::Adaptive {
        return super::adaptive::plan(inputs);
    }
    let info = classify(inputs);
    let mut claims: Vec<Ownership> = info.current.iter().map(|o| renewal(o, inputs.owner_id)).collect();
    let mine = info.current.len();
    let claim_more = if mine >= info.max_allowed {
        false
    } else if info.extra_partition_possible && mine + 1 == info.max_allowed {
        !info.free.is_empty() || !info.above_max.is_empty()
    } else {
        true
    };
    if !claim_more {
        return claims;
    }
    let wanted = match inputs.strategy {
        LoadBalancingStrategy::Greedy => info.max_allowed - mine,
        LoadBalancingStrategy::Balanced | LoadBalancingStrategy::Adaptive => 1,
    };
    let mut picked = pick(rng, &info.free, wanted);
    if picked.len() < wanted {
        picked.extend(pick(rng, &info.above_max, wanted - picked.len()));
    }
    claims.extend(picked.into_iter().map(|o| renewal(o, inputs.owner_id)));
    claims
}

/// The ownership records sorted for one decision.
#[derive(Debug, Default)]
struct Classified<'a> {
    /// Live records this processor owns.
    current: Vec<&'a Ownership>,
    /// Partitions anyone may claim: never owned (a fresh record), relinquished or expired.
    free: Vec<Ownership>,
    /// Every live record of an owner that holds more than `max_allowed`.
    above_max: Vec<&'a Ownership>,
    max_allowed: usize,
    extra_partition_possible: bool,
}

fn classify<'a>(inputs: &Inputs<'a>) -> Classified<'a> {
    let mut by_owner: BTreeMap<&str, Vec<&'a Ownership>> = BTreeMap::new();
    by_owner.insert(inputs.owner_id, Vec::new());
    let mut free = Vec::new();
    let partitions: std::collections::HashSet<&str> =
        inputs.partition_ids.iter().map(String::as_str).collect();
    let mut seen = std::collections::HashSet::new();
    for record in inputs.ownership {
        // Only partitions the hub has: a record of a partition that is gone is ignored.
        if !partitions.contains(record.partition_id.as_str()) || !seen.insert(record.partition_id.as_str()) {
            continue;
        }
        if record.owner_id.is_empty() || is_expired(record, inputs.now, inputs.expiration) {
            free.push(record.clone());
        } else {
            by_owner.entry(record.owner_id.as_str()).or_default().push(record);
        }
    }
    for id in inputs.partition_ids {
        if !seen.contains(id.as_str()) {
            free.push(Ownership::new(inputs.scope.clone(), id.clone(), inputs.owner_id));
        }
    }
    let partitions = inputs.partition_ids.len();
    let owners = by_owner.len();
    let extra_partition_possible = !partitions.is_multiple_of(owners);
    let max_allowed = partitions / owners + usize::from(extra_partition_possible);
    let above_max = by_owner
        .iter()
        .filter(|(id, owned)| **id != inputs.owner_id && owned.len() > max_allowed)
        .flat_map(|(_, owned)| owned.iter().copied())
        .collect();
    Classified {
        current: by_owner.remove(inputs.owner_id).unwrap_or_default(),
        free,
        above_max,
        max_allowed,
        extra_partition_possible,
    }
}

/// A record is expired when it was not renewed within `expiration` (or has no time at all).
pub fn is_expired(record: &Ownership, now: OffsetDateTime, expiration: Duration) -> bool {
    record
        .last_modified_time
        .is_none_or(|t| now - t > time::Duration::try_from(expiration).unwrap_or(time::Duration::MAX))
}

/// A claim of `record`'s partition for `owner_id`, with the record's etag (none for a
/// partition never owned).
pub(super) fn renewal(record: &Ownership, owner_id: &str) -> Ownership {
    let claim = Ownership::new(record.scope.clone(), record.partition_id.clone(), owner_id);
    match &record.etag {
        Some(etag) => claim.with_etag(Some(etag.clone())),
        None => claim,
    }
}

/// Up to `count` of `from`, chosen at random.
fn pick<'a, T: std::borrow::Borrow<Ownership>>(
    rng: &mut impl Rng,
    from: &'a [T],
    count: usize,
) -> Vec<&'a Ownership> {
    let mut all: Vec<&Ownership> = from.iter().map(std::borrow::Borrow::borrow).collect();
    all.shuffle(rng);
    all.truncate(count);
    all
}

#[cfg(test)]
mod tests {
    use eventhubs_store_core::ETag;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const EXPIRY: Duration = Duration::from_secs(60);

    fn scope() -> PartitionScope {
        PartitionScope::new("ns.servicebus.windows.net", "hub", "$default").unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_000_000).unwrap()
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| i.to_string()).collect()
    }

    /// A live record of `partition` owned by `owner`, renewed `age` seconds ago.
    fn owned(partition: usize, owner: &str, age: i64) -> Ownership {
        let mut o = Ownership::new(scope(), partition.to_string(), owner)
            .with_etag(Some(ETag::new(format!("e-{partition}-{owner}"))));
        o.last_modified_time = Some(now() - time::Duration::seconds(age));
        o
    }

    fn decide(
        owner: &str,
        partitions: usize,
        records: &[Ownership],
        strategy: LoadBalancingStrategy,
    ) -> Vec<Ownership> {
        let ids = ids(partitions);
        let scope = scope();
        let inputs = Inputs {
            scope: &scope,
            owner_id: owner,
            partition_ids: &ids,
            ownership: records,
            now: now(),
            expiration: EXPIRY,
            strategy,
        };
        plan(&inputs, &mut StdRng::seed_from_u64(7))
    }

    fn partitions_of(claims: &[Ownership]) -> Vec<String> {
        let mut v: Vec<String> = claims.iter().map(|c| c.partition_id.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn balanced_claims_one_free_partition_per_cycle() {
        let claims = decide("a", 4, &[], LoadBalancingStrategy::Balanced);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].owner_id, "a");
        assert_eq!(claims[0].etag, None, "a never-owned partition is created (C3)");
    }

    #[test]
    fn greedy_claims_its_whole_share_at_once() {
        let claims = decide("a", 4, &[], LoadBalancingStrategy::Greedy);
        assert_eq!(partitions_of(&claims), ids(4));
    }

    #[test]
    fn owned_partitions_are_renewed_every_cycle_with_their_etags() {
        let records = [
            owned(0, "a", 10),
            owned(1, "a", 10),
            owned(2, "b", 10),
            owned(3, "b", 10),
        ];
        let claims = decide("a", 4, &records, LoadBalancingStrategy::Balanced);
        assert_eq!(
            partitions_of(&claims),
            vec!["0", "1"],
            "balanced at 2/2: renew only"
        );
        assert!(
            claims
                .iter()
                .all(|c| c.etag.as_ref().is_some_and(|e| e.as_str().ends_with("-a")))
        );
    }

    #[test]
    fn expired_and_relinquished_partitions_are_free_and_claimed_with_their_etag() {
        let mut relinquished = owned(1, "", 1);
        relinquished.owner_id = String::new();
        let records = [owned(0, "b", 61), relinquished];
        let claims = decide("a", 2, &records, LoadBalancingStrategy::Greedy);
        assert_eq!(partitions_of(&claims), vec!["0", "1"]);
        assert!(
            claims.iter().all(|c| c.etag.is_some() && c.owner_id == "a"),
            "C4: the stored etag"
        );
    }

    #[test]
    fn a_newcomer_steals_only_from_owners_above_the_maximum() {
        // b holds all 4: with a, max is 2, so b is above it.
        let records: Vec<Ownership> = (0..4).map(|p| owned(p, "b", 1)).collect();
        let claims = decide("a", 4, &records, LoadBalancingStrategy::Balanced);
        assert_eq!(claims.len(), 1);
        assert!(
            claims[0]
                .etag
                .as_ref()
                .is_some_and(|e| e.as_str().ends_with("-b"))
        );
        // b holds 2 of 4 and c holds 2: a third owner makes max 2 (4/3 rounded up): nobody is
        // above it, nothing is free, a is below max by more than one: it still gets nothing.
        let records = [
            owned(0, "b", 1),
            owned(1, "b", 1),
            owned(2, "c", 1),
            owned(3, "c", 1),
        ];
        let claims = decide("a", 4, &records, LoadBalancingStrategy::Greedy);
        assert!(claims.is_empty(), "{claims:?}");
    }

    #[test]
    fn one_below_max_with_a_remainder_claims_only_what_is_free_or_above_max() {
        // 5 partitions, owners a and b: max 3. a has 2 (one below), b has 3: balanced, stay.
        let records = [
            owned(0, "a", 1),
            owned(1, "a", 1),
            owned(2, "b", 1),
            owned(3, "b", 1),
            owned(4, "b", 1),
        ];
        let claims = decide("a", 5, &records, LoadBalancingStrategy::Greedy);
        assert_eq!(partitions_of(&claims), vec!["0", "1"]);
        // Partition 4 expired: a may take it.
        let records = [
            owned(0, "a", 1),
            owned(1, "a", 1),
            owned(2, "b", 1),
            owned(3, "b", 1),
            owned(4, "b", 90),
        ];
        let claims = decide("a", 5, &records, LoadBalancingStrategy::Balanced);
        assert_eq!(partitions_of(&claims), vec!["0", "1", "4"]);
    }

    #[test]
    fn at_or_above_the_maximum_nothing_more_is_claimed() {
        let records: Vec<Ownership> = (0..4).map(|p| owned(p, "a", 1)).collect();
        let claims = decide("a", 4, &records, LoadBalancingStrategy::Greedy);
        assert_eq!(partitions_of(&claims), ids(4), "renewals only");
    }

    #[test]
    fn records_of_partitions_the_hub_does_not_have_are_ignored() {
        let records = [owned(7, "b", 1)];
        let claims = decide("a", 2, &records, LoadBalancingStrategy::Greedy);
        assert_eq!(
            partitions_of(&claims),
            vec!["0", "1"],
            "b owns nothing that counts"
        );
    }

    #[test]
    fn expiry_is_strictly_after_the_expiration() {
        assert!(!is_expired(&owned(0, "a", 60), now(), EXPIRY));
        assert!(is_expired(&owned(0, "a", 61), now(), EXPIRY));
        let mut never = owned(0, "a", 0);
        never.last_modified_time = None;
        assert!(is_expired(&never, now(), EXPIRY));
    }

    /// Processors that keep deciding on the same records converge to what the rules promise:
    /// every partition owned, nobody above `max = ceil(P / owners)` (so 8 over 2 is exactly
    /// 4/4). They do not promise more: an owner one below `min` stays there while every other
    /// owner sits exactly at `max`, since only owners above `max` are stolen from.
    #[test]
    fn repeated_cycles_converge_to_a_balanced_split() {
        for strategy in [LoadBalancingStrategy::Balanced, LoadBalancingStrategy::Greedy] {
            for (partitions, owners) in [(8usize, 2usize), (8, 3), (32, 5), (3, 4)] {
                let mut store: BTreeMap<String, Ownership> = BTreeMap::new();
                let names: Vec<String> = (0..owners).map(|i| format!("p{i}")).collect();
                let mut rng = StdRng::seed_from_u64(partitions as u64 * 31 + owners as u64);
                for _cycle in 0..(partitions * 4) {
                    for name in &names {
                        let records: Vec<Ownership> = store.values().cloned().collect();
                        let ids = ids(partitions);
                        let scope = scope();
                        let inputs = Inputs {
                            scope: &scope,
                            owner_id: name,
                            partition_ids: &ids,
                            ownership: &records,
                            now: now(),
                            expiration: EXPIRY,
                            strategy,
                        };
                        // Apply the claims as a strict store would (C3/C4).
                        for claim in plan(&inputs, &mut rng) {
                            let stored = store.get(&claim.partition_id);
                            let wins = match stored {
                                None => claim.etag.is_none(),
                                Some(s) => claim.etag.is_some() && s.etag == claim.etag,
                            };
                            if wins {
                                let mut won = claim.clone();
                                won.etag = Some(ETag::new(format!(
                                    "{}-{}",
                                    claim.partition_id,
                                    rng.random::<u64>()
                                )));
                                won.last_modified_time = Some(now());
                                store.insert(claim.partition_id.clone(), won);
                            }
                        }
                    }
                }
                assert_eq!(
                    store.len(),
                    partitions,
                    "{strategy:?} {partitions}/{owners}: every partition owned"
                );
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for o in store.values() {
                    *counts.entry(o.owner_id.as_str()).or_default() += 1;
                }
                let max = partitions.div_ceil(owners);
                assert!(
                    counts.values().all(|&n| n <= max),
                    "{strategy:?} {partitions}/{owners}: someone above {max}: {counts:?}"
                );
                if partitions == 8 && owners == 2 {
                    assert_eq!(
                        counts.values().copied().collect::<Vec<_>>(),
                        vec![4, 4],
                        "{strategy:?}"
                    );
                }
            }
        }
    }
}
