//! The `Adaptive` strategy (the default): every partition owned within one cycle, balanced
//! within two, and then nothing moves.
//!
//! From one listing every processor computes the same plan:
//! 1. a target count per owner: its current count clamped to `[floor, ceil]` of `P / owners`,
//!    then the fewest owners moved between floor and ceil so the targets add up to `P` (so a
//!    balanced split is left as it is, and `4 → 5` processors on 32 partitions ends 7/7/6/6/6);
//! 2. the partitions that must move: the free ones (never owned, relinquished, expired), then
//!    each owner's surplus over its target, chosen by a stable hash of the partition id;
//! 3. the takers: each owner below its target, as many times as it is short, in owner-id order.
//!
//! Moving partitions are paired with takers in order, and a processor claims exactly the ones
//! paired with itself. Processors that list the same records therefore claim disjoint
//! partitions: no lost races, no thrash. A processor that sees no other owner (the first to
//! start) takes every free partition, so nothing waits for a second cycle.

use std::collections::{BTreeMap, HashSet};

use eventhubs_store_core::Ownership;

use super::load_balancer::{Inputs, is_expired, renewal};

/// The claims of one `Adaptive` cycle: renewals of what this processor owns, then the
/// partitions the plan pairs with it.
pub(super) fn plan(inputs: &Inputs<'_>) -> Vec<Ownership> {
    let mut by_owner: BTreeMap<&str, Vec<&Ownership>> = BTreeMap::new();
    by_owner.insert(inputs.owner_id, Vec::new());
    let mut free: Vec<Ownership> = Vec::new();
    let partitions: HashSet<&str> = inputs.partition_ids.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    for record in inputs.ownership {
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
    let counts: BTreeMap<&str, usize> = by_owner.iter().map(|(o, v)| (*o, v.len())).collect();
    let targets = targets(inputs.partition_ids.len(), &counts);

    // What moves: free partitions, then each owner's surplus, in a stable order. A processor
    // that owns nothing is invisible to the others, and others like it may be planning at the
    // same instant: it orders by a hash salted with its own id, so such newcomers mostly pick
    // different partitions instead of racing for the same ones.
    let salt = if counts[inputs.owner_id] == 0 {
        inputs.owner_id
    } else {
        ""
    };
    let key = |partition: &str| stable_hash(salt, partition);
    free.sort_by_key(|o| (key(&o.partition_id), o.partition_id.clone()));
    let mut moving: Vec<&Ownership> = free.iter().collect();
    for (owner, records) in &by_owner {
        let surplus = records.len().saturating_sub(targets[owner]);
        if surplus > 0 {
            let mut records = records.clone();
            records.sort_by_key(|o| (std::cmp::Reverse(key(&o.partition_id)), o.partition_id.clone()));
            moving.extend(records.into_iter().take(surplus));
        }
    }
    // Who takes them, in owner order.
    let takers = by_owner
        .keys()
        .flat_map(|owner| std::iter::repeat_n(*owner, targets[owner].saturating_sub(counts[owner])));

    let mut claims: Vec<Ownership> = by_owner[inputs.owner_id]
        .iter()
        .map(|o| renewal(o, inputs.owner_id))
        .collect();
    claims.extend(
        moving
            .into_iter()
            .zip(takers)
            .filter(|(_, taker)| *taker == inputs.owner_id)
            .map(|(record, _)| renewal(record, inputs.owner_id)),
    );
    claims
}

/// Target counts: current counts clamped to `[floor, ceil]`, then the fewest owners moved
/// between the two so the targets add up to `partitions`. Ties go by count, then owner id, so
/// every processor computes the same targets from the same listing.
fn targets<'a>(partitions: usize, counts: &BTreeMap<&'a str, usize>) -> BTreeMap<&'a str, usize> {
    let owners = counts.len().max(1);
    let floor = partitions / owners;
    let ceil = floor + usize::from(!partitions.is_multiple_of(owners));
    let mut targets: BTreeMap<&str, usize> = counts
        .iter()
        .map(|(o, k)| (*o, (*k).clamp(floor, ceil)))
        .collect();
    let sum: usize = targets.values().sum();
    if sum > partitions {
        // Lower the owners at ceil holding the fewest.
        let mut at_ceil: Vec<(&str, usize)> = targets
            .iter()
            .filter(|(_, t)| **t == ceil && ceil > floor)
            .map(|(o, _)| (*o, counts[o]))
            .collect();
        at_ceil.sort_by_key(|(o, k)| (*k, *o));
        for (o, _) in at_ceil.into_iter().take(sum - partitions) {
            targets.insert(o, floor);
        }
    } else if sum < partitions {
        // Raise the owners at floor holding the most.
        let mut at_floor: Vec<(&str, usize)> = targets
            .iter()
            .filter(|(_, t)| **t == floor && ceil > floor)
            .map(|(o, _)| (*o, counts[o]))
            .collect();
        at_floor.sort_by_key(|(o, k)| (std::cmp::Reverse(*k), *o));
        for (o, _) in at_floor.into_iter().take(partitions - sum) {
            targets.insert(o, ceil);
        }
    }
    targets
}

/// FNV-1a of `salt` then the partition id: the same on every processor and every run.
fn stable_hash(salt: &str, partition_id: &str) -> u64 {
    salt.bytes()
        .chain(std::iter::once(0))
        .chain(partition_id.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts<'a>(pairs: &[(&'a str, usize)]) -> BTreeMap<&'a str, usize> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_balanced_split_is_its_own_target() {
        let c = counts(&[("a", 7), ("b", 7), ("c", 6), ("d", 6), ("e", 6)]);
        assert_eq!(targets(32, &c), c);
        let c = counts(&[("a", 8), ("b", 8), ("c", 8), ("d", 8)]);
        assert_eq!(targets(32, &c), c);
    }

    #[test]
    fn a_joiner_gets_its_share_and_the_fewest_owners_give() {
        let t = targets(32, &counts(&[("a", 8), ("b", 8), ("c", 8), ("d", 8), ("e", 0)]));
        assert_eq!(t.values().sum::<usize>(), 32);
        assert!(t.values().all(|n| (6..=7).contains(n)), "{t:?}");
        assert_eq!(t["e"], 6, "the joiner takes floor: fewer partitions move");
        // 7/7/7/7/4 (what Balanced settles at) is not balanced: e must get to 6.
        let t = targets(32, &counts(&[("a", 7), ("b", 7), ("c", 7), ("d", 7), ("e", 4)]));
        assert_eq!((t["e"], t.values().sum::<usize>()), (6, 32), "{t:?}");
    }

    #[test]
    fn the_hash_is_stable() {
        // FNV-1a 64 test vectors ("" and "a"), with the salt's separator byte in front.
        let fnv = |bytes: &[u8]| {
            bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            })
        };
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("", "a"), fnv(b"\x00a"));
        assert_eq!(stable_hash("p1", "7"), fnv(b"p1\x007"));
        assert_ne!(stable_hash("p1", "7"), stable_hash("p2", "7"));
    }
}
