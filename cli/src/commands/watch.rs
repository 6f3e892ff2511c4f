//! `ehstore status --connection-string … --watch [INTERVAL]`: the status with the hub's side,
//! sampled again and again, with per-partition consume and ingest rates from successive
//! samples and verdicts judged over a window of samples, as Burrow judges Kafka consumer
//! groups (no lag thresholds):
//!
//! - `rewound`: the checkpoint moved backwards since the last sample (a reset, a migration);
//! - `lost_to_retention`: the checkpoint is older than the oldest retained event;
//! - `caught_up`: nothing retained waits;
//! - `unowned_with_lag`: events wait and no processor owns the partition;
//! - `stalled`: owned, events wait, and the checkpoint has not moved for `--stall-after`;
//! - `behind`: owned, the checkpoint moves, but the lag grew across the window;
//! - `catching_up`: owned, the checkpoint moves, and the lag did not grow across the window.
//!
//! A terminal gets the table redrawn in place; a pipe gets one table per sample (`--json`: one
//! JSON line per sample). `--samples N` stops after N samples; Ctrl-C stops cleanly.

use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::lag::LagState;
use super::status::ScopeStatus;
use crate::duration::format_duration;
use crate::table::{Align, Table};

/// One sample of one partition.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    checkpoint: Option<i64>,
    last: i64,
    lag: i64,
}

/// What the watch remembers of one partition.
#[derive(Debug, Default)]
struct History {
    samples: VecDeque<Sample>,
    /// When the checkpoint was last seen to change (or first seen).
    checkpoint_moved_at: Option<Instant>,
}

/// Rates and the judged verdict of one partition at one sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Judged {
    /// Checkpointed events per second since the last sample.
    pub consume_per_s: Option<f64>,
    /// Enqueued events per second since the last sample.
    pub ingest_per_s: Option<f64>,
    /// The verdict over the window.
    pub verdict: LagState,
}

/// The samples of every partition of one scope.
#[derive(Debug)]
pub struct Watch {
    window: usize,
    stall_after: Duration,
    partitions: BTreeMap<String, History>,
}

impl Watch {
    /// A watch judging over `window` samples (at least 2), stalled after `stall_after`.
    pub fn new(window: usize, stall_after: Duration) -> Self {
        Watch {
            window: window.max(2),
            stall_after,
            partitions: BTreeMap::new(),
        }
    }

    /// Takes one sample of `status` (collected with the hub's side) taken at `at`, and judges
    /// every partition: the verdicts replace the single-sample ones in `status`.
    pub fn sample(&mut self, status: &mut ScopeStatus, at: Instant) -> BTreeMap<String, Judged> {
        let mut judged = BTreeMap::new();
        for p in &mut status.partitions {
            let Some(lag) = p.lag.as_mut() else { continue };
            let history = self.partitions.entry(p.partition_id.clone()).or_default();
            let sample = Sample {
                at,
                checkpoint: p.sequence_number,
                last: lag.last_enqueued_sequence_number,
                lag: lag.lag_events,
            };
            let previous = history.samples.back().copied();
            if previous.is_none_or(|prev| prev.checkpoint != sample.checkpoint) {
                history.checkpoint_moved_at = Some(at);
            }
            history.samples.push_back(sample);
            while history.samples.len() > self.window {
                history.samples.pop_front();
            }
            let verdict = judge(
                &history.samples,
                history.checkpoint_moved_at.unwrap_or(at),
                lag.lag_state,
                p.state.is_held(),
                self.stall_after,
            );
            lag.lag_state = verdict;
            let per_s = |a: i64, b: i64, prev: Sample| {
                let dt = at.saturating_duration_since(prev.at).as_secs_f64();
                (dt > 0.0).then(|| (a - b).max(0) as f64 / dt)
            };
            let consume_per_s = previous.and_then(|prev| match (sample.checkpoint, prev.checkpoint) {
                (Some(now), Some(before)) => per_s(now, before, prev),
                _ => None,
            });
            let ingest_per_s = previous.and_then(|prev| per_s(sample.last, prev.last, prev));
            judged.insert(
                p.partition_id.clone(),
                Judged {
                    consume_per_s,
                    ingest_per_s,
                    verdict,
                },
            );
        }
        judged
    }
}

/// The verdict of one partition over its window of samples (newest last).
fn judge(
    samples: &VecDeque<Sample>,
    checkpoint_moved_at: Instant,
    single: LagState,
    owned: bool,
    stall_after: Duration,
) -> LagState {
    let Some(newest) = samples.back() else {
        return single;
    };
    let previous = samples.len().checked_sub(2).and_then(|i| samples.get(i));
    if let (Some(prev), Some(now)) = (previous.and_then(|p| p.checkpoint), newest.checkpoint)
        && now < prev
    {
        return LagState::Rewound;
    }
    if single == LagState::LostToRetention {
        return single;
    }
    if newest.lag == 0 {
        return LagState::CaughtUp;
    }
    if !owned {
        return LagState::UnownedWithLag;
    }
    if newest.at.saturating_duration_since(checkpoint_moved_at) >= stall_after {
        return LagState::Stalled;
    }
    match samples.front() {
        Some(oldest) if samples.len() >= 2 && newest.lag <= oldest.lag => LagState::CatchingUp,
        _ => LagState::Behind,
    }
}

/// The watch table of one sample: lag, lag time, rates and verdict per partition, and a total
/// line.
pub fn render(status: &ScopeStatus, judged: &BTreeMap<String, Judged>, sample: u64) -> String {
    let mut table = Table::new(&[
        ("PARTITION", Align::Left),
        ("OWNER", Align::Left),
        ("CHECKPOINT", Align::Right),
        ("LAST", Align::Right),
        ("LAG", Align::Right),
        ("LAG TIME", Align::Right),
        ("CONSUMED/S", Align::Right),
        ("INGESTED/S", Align::Right),
        ("VERDICT", Align::Left),
    ]);
    let rate = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}"));
    let (mut lag, mut consumed, mut ingested) = (0i64, 0.0, 0.0);
    for p in &status.partitions {
        let (Some(l), Some(j)) = (&p.lag, judged.get(&p.partition_id)) else {
            continue;
        };
        lag += l.lag_events;
        consumed += j.consume_per_s.unwrap_or(0.0);
        ingested += j.ingest_per_s.unwrap_or(0.0);
        table.row(vec![
            p.partition_id.clone(),
            match p.owner_id.as_deref() {
                None | Some("") => "-".to_owned(),
                Some(o) if p.state.is_held() => o.to_owned(),
                Some(o) => format!("({o})"),
            },
            p.sequence_number.map_or_else(|| "-".into(), |s| s.to_string()),
            l.last_enqueued_sequence_number.to_string(),
            l.lag_events.to_string(),
            l.lag_ms
                .map_or_else(|| "?".into(), |ms| format_duration(Duration::from_millis(ms))),
            rate(j.consume_per_s),
            rate(j.ingest_per_s),
            j.verdict.as_str().to_owned(),
        ]);
    }
    format!(
        "{}/{}/{} sample {sample}: lag {lag} event(s), consuming {consumed:.1}/s, ingesting {ingested:.1}/s\n{}",
        status.namespace,
        status.event_hub,
        status.consumer_group,
        table.render(2)
    )
}

/// Whether to redraw in place (a terminal) or print samples one after another.
pub fn redraw() -> bool {
    std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(u64, Option<i64>, i64)]) -> VecDeque<Sample> {
        let start = Instant::now();
        points
            .iter()
            .map(|&(secs, checkpoint, lag)| Sample {
                at: start + Duration::from_secs(secs),
                checkpoint,
                last: 100,
                lag,
            })
            .collect()
    }

    fn at(s: &VecDeque<Sample>, i: usize) -> Instant {
        s[i].at
    }

    #[test]
    fn verdicts_follow_the_window_not_thresholds() {
        let stall = Duration::from_secs(60);
        // The checkpoint went back: rewound, whatever else holds.
        let s = samples(&[(0, Some(50), 50), (5, Some(20), 80)]);
        assert_eq!(
            judge(&s, at(&s, 1), LagState::Behind, true, stall),
            LagState::Rewound
        );
        // Nothing waits.
        let s = samples(&[(0, Some(90), 10), (5, Some(100), 0)]);
        assert_eq!(
            judge(&s, at(&s, 1), LagState::CaughtUp, true, stall),
            LagState::CaughtUp
        );
        // Events wait, nobody owns the partition.
        let s = samples(&[(0, Some(90), 10), (5, Some(90), 10)]);
        assert_eq!(
            judge(&s, at(&s, 0), LagState::UnownedWithLag, false, stall),
            LagState::UnownedWithLag
        );
        // Owned, lag, the checkpoint unchanged for longer than stall_after: stalled.
        let s = samples(&[(0, Some(90), 10), (61, Some(90), 12)]);
        assert_eq!(
            judge(&s, at(&s, 0), LagState::Behind, true, stall),
            LagState::Stalled
        );
        // Owned, moving, lag growing across the window: behind.
        let s = samples(&[(0, Some(10), 10), (5, Some(20), 15), (10, Some(30), 20)]);
        assert_eq!(
            judge(&s, at(&s, 2), LagState::Behind, true, stall),
            LagState::Behind
        );
        // Owned, moving, lag shrinking: catching up.
        let s = samples(&[(0, Some(10), 30), (5, Some(25), 20), (10, Some(40), 10)]);
        assert_eq!(
            judge(&s, at(&s, 2), LagState::Behind, true, stall),
            LagState::CatchingUp
        );
        // Loss to retention outranks lag.
        let s = samples(&[(0, Some(1), 10), (5, Some(1), 10)]);
        assert_eq!(
            judge(&s, at(&s, 0), LagState::LostToRetention, true, stall),
            LagState::LostToRetention
        );
    }
}
