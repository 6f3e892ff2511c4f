//! A load-balancing simulation on a virtual clock: the Processor's own planning function
//! ([`load_balancer::plan`]) over an in-memory ownership table with the contract's claim rules
//! (C3, C4, C5), no AMQP, no sleeping. Hundreds of partitions and dozens of processors run in
//! milliseconds, so the convergence goals are asserted in unit tests and the
//! `load_balancing` example prints every strategy side by side.
//!
//! One [`Simulation::cycle`] is one update interval: every live processor lists the table and
//! sends its claims once. [`Timing::Staggered`] runs them one after another in a random order
//! (jittered timers: each sees the claims made before it in the cycle);
//! [`Timing::SimultaneousStart`] has all of them list first and claim after in the first cycle
//! (processors started at the same instant), staggered after it; [`Timing::Simultaneous`] does
//! so in every cycle (timers in lock-step forever, which the Processor's jitter prevents: the
//! worst case, reported by the example, not a goal).

use std::collections::BTreeMap;
use std::time::Duration;

use eventhubs_store_core::{ETag, Ownership, PartitionScope};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use time::OffsetDateTime;

use super::load_balancer::{self, Inputs, LoadBalancingStrategy};

/// When the processors of one cycle act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// One after another, in a random order.
    Staggered,
    /// All list, then all claim, in every cycle: timers in lock-step forever (the Processor's
    /// jitter prevents it; the worst case).
    Simultaneous,
    /// All list, then all claim in the first cycle (processors started at the same instant);
    /// staggered after it, as the Processor's jittered timers (±10 % of the interval) drift
    /// apart.
    SimultaneousStart,
}

#[derive(Debug, Clone)]
struct Record {
    owner: String,
    etag: u64,
    modified: OffsetDateTime,
}

/// The simulated scope: partitions, processors, the ownership table and the clock.
#[derive(Debug)]
pub struct Simulation {
    scope: PartitionScope,
    partitions: Vec<String>,
    /// Live processors by id.
    processors: Vec<String>,
    table: BTreeMap<String, Record>,
    etags: u64,
    now: OffsetDateTime,
    interval: Duration,
    expiration: Duration,
    strategy: LoadBalancingStrategy,
    timing: Timing,
    rng: StdRng,
    /// The owner of each partition after the last cycle (to count moves).
    last_owners: BTreeMap<String, String>,
    next_id: usize,
    /// Cycles run so far.
    cycles: usize,
}

/// What a scenario measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Cycles until every partition had a live owner (`None`: not within the budget).
    pub cycles_to_owned: Option<usize>,
    /// Cycles until owned and every live processor held floor or ceil of P/N.
    pub cycles_to_balanced: Option<usize>,
    /// Partitions that changed owner until balanced.
    pub moves_to_balance: usize,
    /// Partitions that changed owner in the 20 cycles after balance.
    pub moves_after_balance: usize,
}

impl Simulation {
    /// `processors` processors over `partitions` partitions, none started yet.
    pub fn new(partitions: usize, strategy: LoadBalancingStrategy, timing: Timing, seed: u64) -> Self {
        Simulation {
            scope: PartitionScope::new("sim.servicebus.windows.net", "hub", "$default")
                .unwrap_or_else(|_| unreachable!("a valid literal scope")),
            partitions: (0..partitions).map(|p| p.to_string()).collect(),
            processors: Vec::new(),
            table: BTreeMap::new(),
            etags: 0,
            now: OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
            interval: Duration::from_secs(10),
            expiration: Duration::from_secs(60),
            strategy,
            timing,
            rng: StdRng::seed_from_u64(seed),
            last_owners: BTreeMap::new(),
            next_id: 0,
            cycles: 0,
        }
    }

    /// Starts `n` more processors.
    pub fn join(&mut self, n: usize) {
        for _ in 0..n {
            self.processors.push(format!("p{:04}", self.next_id));
            self.next_id += 1;
        }
    }

    /// Closes one processor: it relinquishes what it owns (C8) and stops.
    pub fn leave(&mut self) {
        if let Some(id) = self.processors.pop() {
            for record in self.table.values_mut() {
                if record.owner == id {
                    record.owner.clear();
                    self.etags += 1;
                    record.etag = self.etags;
                    record.modified = self.now;
                }
            }
        }
    }

    /// Crashes one processor: it stops, relinquishing nothing.
    pub fn crash(&mut self) {
        self.processors.pop();
    }

    fn listing(&self) -> Vec<Ownership> {
        self.table
            .iter()
            .map(|(p, r)| {
                let mut o = Ownership::new(self.scope.clone(), p.clone(), r.owner.clone())
                    .with_etag(Some(ETag::new(r.etag.to_string())));
                o.last_modified_time = Some(r.modified);
                o
            })
            .collect()
    }

    fn plan_for(&mut self, owner: &str, listing: &[Ownership]) -> Vec<Ownership> {
        let inputs = Inputs {
            scope: &self.scope,
            owner_id: owner,
            partition_ids: &self.partitions,
            ownership: listing,
            now: self.now,
            expiration: self.expiration,
            strategy: self.strategy,
        };
        load_balancer::plan(&inputs, &mut self.rng)
    }

    /// Applies claims with the contract's rules: C3 (no etag: only if no record), C4 (etag:
    /// only if it matches); a win gets a fresh etag and the clock's time (C5).
    fn claim(&mut self, claims: &[Ownership]) {
        for claim in claims {
            let current = self.table.get(&claim.partition_id);
            let wins = match (&claim.etag, current) {
                (None, None) => true,
                (Some(etag), Some(record)) => etag.as_str() == record.etag.to_string(),
                _ => false,
            };
            if wins {
                self.etags += 1;
                self.table.insert(
                    claim.partition_id.clone(),
                    Record {
                        owner: claim.owner_id.clone(),
                        etag: self.etags,
                        modified: self.now,
                    },
                );
            }
        }
    }

    /// One update interval.
    pub fn cycle(&mut self) {
        let mut order = self.processors.clone();
        order.shuffle(&mut self.rng);
        let together = match self.timing {
            Timing::Staggered => false,
            Timing::Simultaneous => true,
            Timing::SimultaneousStart => self.cycles == 0,
        };
        self.cycles += 1;
        if together {
            let listing = self.listing();
            let plans: Vec<Vec<Ownership>> =
                order.iter().map(|owner| self.plan_for(owner, &listing)).collect();
            for claims in plans {
                self.claim(&claims);
            }
        } else {
            for owner in order {
                let listing = self.listing();
                let claims = self.plan_for(&owner, &listing);
                self.claim(&claims);
            }
        }
        self.now += self.interval;
    }

    /// The live owner of each partition (a record of a stopped processor counts until it
    /// expires, as it does for the processors).
    fn owners(&self) -> BTreeMap<String, String> {
        let expiry = time::Duration::try_from(self.expiration).unwrap_or(time::Duration::MAX);
        self.table
            .iter()
            .filter(|(_, r)| !r.owner.is_empty() && self.now - r.modified <= expiry)
            .map(|(p, r)| (p.clone(), r.owner.clone()))
            .collect()
    }

    /// Every partition owned by a live processor.
    pub fn all_owned(&self) -> bool {
        let owners = self.owners();
        self.partitions
            .iter()
            .all(|p| owners.get(p).is_some_and(|o| self.processors.contains(o)))
    }

    /// Owned, and every live processor holds floor or ceil of P/N.
    pub fn balanced(&self) -> bool {
        if !self.all_owned() || self.processors.is_empty() {
            return false;
        }
        let owners = self.owners();
        let n = self.processors.len();
        let (floor, ceil) = (self.partitions.len() / n, self.partitions.len().div_ceil(n));
        self.processors.iter().all(|p| {
            let k = owners.values().filter(|o| *o == p).count();
            (floor..=ceil).contains(&k)
        })
    }

    /// Partitions whose owner changed since the last call.
    fn moves(&mut self) -> usize {
        let owners = self.owners();
        let moved = owners
            .iter()
            .filter(|(p, o)| self.last_owners.get(*p).is_some_and(|before| before != *o))
            .count();
        self.last_owners = owners;
        moved
    }

    /// Runs cycles until balanced (at most `budget`), then 20 more; reports.
    pub fn settle(&mut self, budget: usize) -> Report {
        let mut report = Report::default();
        self.moves();
        for cycle in 1..=budget {
            self.cycle();
            report.moves_to_balance += self.moves();
            if report.cycles_to_owned.is_none() && self.all_owned() {
                report.cycles_to_owned = Some(cycle);
            }
            if self.balanced() {
                report.cycles_to_balanced = Some(cycle);
                break;
            }
        }
        if report.cycles_to_balanced.is_some() {
            for _ in 0..20 {
                self.cycle();
                report.moves_after_balance += self.moves();
            }
        }
        report
    }

    /// Cycles, after a crash, until the crashed processor's partitions have live owners again
    /// (the expiration counts: `expiration / interval` cycles at least).
    pub fn failover_cycles(&mut self, budget: usize) -> Option<usize> {
        (1..=budget).find(|_| {
            self.cycle();
            self.all_owned()
        })
    }

    /// The update interval divided into the expiration, in cycles.
    pub fn expiry_cycles(&self) -> usize {
        (self.expiration.as_secs_f64() / self.interval.as_secs_f64()).ceil() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADAPTIVE: LoadBalancingStrategy = LoadBalancingStrategy::Adaptive;

    /// Cold start of N processors together over P partitions: owned within 1 cycle, balanced
    /// within 2, then nothing moves for 20 cycles.
    #[test]
    fn adaptive_cold_starts_own_everything_in_one_cycle_and_balance_in_two() {
        for (n, p) in [(4, 32), (8, 32), (16, 100), (32, 1024)] {
            // Several seeds (cycle orders); fewer for the largest, which is slow unoptimized.
            let seeds = if p > 500 { 2 } else { 5 };
            for seed in 0..seeds {
                let mut sim = Simulation::new(p, ADAPTIVE, Timing::Staggered, seed);
                sim.join(n);
                let r = sim.settle(50);
                assert_eq!(r.cycles_to_owned, Some(1), "{n}x{p} seed {seed}: {r:?}");
                assert!(
                    r.cycles_to_balanced.is_some_and(|c| c <= 2),
                    "{n}x{p} seed {seed}: {r:?}"
                );
                assert_eq!(r.moves_after_balance, 0, "{n}x{p} seed {seed}: {r:?}");
            }
        }
    }

    /// Processors started at the same instant list an empty table together in their first
    /// cycle (the worst start), then their jittered timers drift apart: owned in 1 cycle,
    /// balanced within 2, then nothing moves.
    #[test]
    fn adaptive_simultaneous_starts_own_everything_in_one_cycle_and_balance_in_two() {
        for (n, p) in [(4, 32), (8, 32), (16, 100), (32, 1024)] {
            let seeds = if p > 500 { 2 } else { 5 };
            for seed in 0..seeds {
                let mut sim = Simulation::new(p, ADAPTIVE, Timing::SimultaneousStart, seed);
                sim.join(n);
                let r = sim.settle(50);
                assert_eq!(r.cycles_to_owned, Some(1), "{n}x{p} seed {seed}: {r:?}");
                assert!(
                    r.cycles_to_balanced.is_some_and(|c| c <= 2),
                    "{n}x{p} seed {seed}: {r:?}"
                );
                assert_eq!(r.moves_after_balance, 0, "{n}x{p} seed {seed}: {r:?}");
            }
        }
    }

    /// Joins and leaves: only what must move moves (at most ceil(P/N) per joiner), balanced
    /// within 2 cycles; 4 → 5 on 32 ends balanced (7/7/6/6/6), not 7/7/7/7/4.
    #[test]
    fn adaptive_joins_and_leaves_move_only_what_must_move() {
        for (n, p) in [(4, 32), (8, 32), (16, 100)] {
            let mut sim = Simulation::new(p, ADAPTIVE, Timing::Staggered, 7);
            sim.join(n);
            assert!(sim.settle(10).cycles_to_balanced.is_some());
            sim.join(1);
            let joined = sim.settle(10);
            assert!(
                joined.cycles_to_balanced.is_some_and(|c| c <= 2),
                "{n}x{p} join: {joined:?}"
            );
            assert!(
                joined.moves_to_balance <= p.div_ceil(n + 1),
                "{n}x{p} join: {joined:?}"
            );
            assert_eq!(joined.moves_after_balance, 0, "{n}x{p} join: {joined:?}");
            sim.leave();
            let left = sim.settle(10);
            assert!(
                left.cycles_to_balanced.is_some_and(|c| c <= 2),
                "{n}x{p} leave: {left:?}"
            );
            assert_eq!(left.moves_after_balance, 0, "{n}x{p} leave: {left:?}");
        }
    }

    /// A crashed processor's partitions have owners again at most one cycle after they expire.
    #[test]
    fn adaptive_failover_takes_the_expiry_plus_one_cycle_at_most() {
        for (n, p) in [(4, 32), (16, 100)] {
            let mut sim = Simulation::new(p, ADAPTIVE, Timing::Staggered, 3);
            sim.join(n);
            assert!(sim.settle(10).cycles_to_balanced.is_some());
            sim.crash();
            let cycles = sim.failover_cycles(100);
            assert!(
                cycles.is_some_and(|c| c <= sim.expiry_cycles() + 1),
                "{n}x{p}: {cycles:?} cycles, expiry {}",
                sim.expiry_cycles()
            );
            assert!(sim.settle(10).cycles_to_balanced.is_some_and(|c| c <= 2));
        }
    }

    /// The documented strategies keep their meanings: Balanced claims one partition per cycle.
    #[test]
    fn balanced_takes_a_cycle_per_partition_as_documented() {
        let mut sim = Simulation::new(32, LoadBalancingStrategy::Balanced, Timing::Staggered, 1);
        sim.join(1);
        let r = sim.settle(100);
        assert_eq!(r.cycles_to_owned, Some(32), "{r:?}");
    }
}
