//! The sequential specification of one partition of one scope: its ownership record and its
//! checkpoint, and what each operation may return from a state (C3–C10, C13). The same rules
//! the property check's reference store applies, written as a state machine over observed
//! values: etags the store issued are taken from the history, and a claim whose outcome is
//! unknown leaves an etag and a modification time that a later observation names.

use std::collections::HashSet;

use serde::Serialize;

use super::checker::Model;

/// What an operation on one partition asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// A claim of the partition for `owner` (`""` relinquishes), with the expected etag.
    Claim {
        /// The owner id.
        owner: String,
        /// `None` to create (C3); an etag to update (C4).
        etag: Option<String>,
    },
    /// A checkpoint write, fenced by `fenced_by` when set (C13).
    Checkpoint {
        /// The offset written.
        offset: Option<String>,
        /// The sequence number written.
        sequence_number: Option<i64>,
        /// The owner the write requires.
        fenced_by: Option<String>,
    },
    /// The partition's row of an ownership listing.
    ReadOwnership,
    /// The partition's row of a checkpoint listing.
    ReadCheckpoint,
}

/// An ownership record as the store returned it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Owned {
    /// The owner id.
    pub owner: String,
    /// The etag.
    pub etag: String,
    /// `last_modified_time`, nanoseconds since the Unix epoch (the store's clock).
    pub modified: Option<i128>,
}

/// A checkpoint's values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Values {
    /// Offset.
    pub offset: Option<String>,
    /// Sequence number.
    pub sequence_number: Option<i64>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    /// The claim won: the record the store returned.
    Won(Owned),
    /// The claim lost (left out of the result, C6).
    Lost,
    /// The checkpoint was written.
    Written,
    /// The fenced write was refused: `OwnershipLost` (C13).
    OwnershipLost,
    /// The listing's row (`None`: the partition was not listed).
    Ownership(Option<Owned>),
    /// The listing's row.
    Checkpoint(Option<Values>),
    /// The call failed with a retryable or unavailable error, or timed out: it may or may not
    /// have taken effect.
    Unknown,
    /// The store refused the input as one it cannot store faithfully (`InvalidInput`, C11):
    /// nothing may have been written.
    Refused,
}

/// One operation on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionOp {
    /// What was asked.
    pub input: Input,
    /// What came back.
    pub output: Output,
}

/// The etag of the state's ownership record: one a result or listing named, or one a claim
/// with an unknown outcome left, which no observation has named yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tag {
    Known(String),
    Unnamed,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Record {
    owner: String,
    tag: Tag,
    /// `None` while left by an unknown claim and not observed yet.
    modified: Option<i128>,
}

/// One partition's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct State {
    ownership: Option<Record>,
    /// The latest modification time any won claim had on this path (C5: non-decreasing).
    floor: Option<i128>,
    checkpoint: Option<Values>,
}

/// The partition model, knowing which etags the history's won claims returned (an unnamed
/// etag is never one of them: C5 makes every etag fresh).
#[derive(Debug, Default)]
pub struct PartitionModel {
    /// Etags some won claim of this partition returned.
    pub issued: HashSet<String>,
}

/// Etags the suite makes up for stale claims start with this; no store issues them.
pub const MADE_UP_ETAG_PREFIX: &str = "\"conformance-made-up-";

impl PartitionModel {
    /// Whether an unnamed etag may turn out to be `etag`.
    fn may_name(&self, etag: &str) -> bool {
        !self.issued.contains(etag) && !etag.starts_with(MADE_UP_ETAG_PREFIX)
    }

    /// The states in which a claim expecting `expected` matches the record (C3/C4), with the
    /// record's etag named when it was unnamed.
    fn matching(&self, state: &State, expected: Option<&str>) -> Option<State> {
        match (expected, &state.ownership) {
            (None, None) => Some(state.clone()),
            (Some(e), Some(record)) => match &record.tag {
                Tag::Known(t) if t == e => Some(state.clone()),
                Tag::Unnamed if self.may_name(e) => {
                    let mut named = state.clone();
                    if let Some(r) = named.ownership.as_mut() {
                        r.tag = Tag::Known(e.to_owned());
                    }
                    Some(named)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether a claim expecting `expected` may not match.
    fn may_miss(state: &State, expected: Option<&str>) -> bool {
        match (expected, &state.ownership) {
            (None, None) => false,
            (Some(e), Some(record)) => !matches!(&record.tag, Tag::Known(t) if t == e),
            _ => true,
        }
    }

    /// The state after an observation of the record as `seen`, if it can be the record.
    fn observe(&self, state: &State, seen: &Owned) -> Option<State> {
        let record = state.ownership.as_ref()?;
        if record.owner != seen.owner {
            return None;
        }
        let tag = match &record.tag {
            Tag::Known(t) if *t == seen.etag => Tag::Known(t.clone()),
            Tag::Unnamed if self.may_name(&seen.etag) => Tag::Known(seen.etag.clone()),
            _ => return None,
        };
        let modified = match (record.modified, seen.modified) {
            (Some(a), Some(b)) if a == b => Some(a),
            (Some(_), Some(_)) => return None,
            (None, Some(b)) if state.floor.is_some_and(|f| b < f) => return None,
            (None, b) => b,
            (a, None) => a,
        };
        let mut next = state.clone();
        next.ownership = Some(Record {
            owner: record.owner.clone(),
            tag,
            modified,
        });
        if let Some(m) = modified {
            next.floor = Some(next.floor.map_or(m, |f| f.max(m)));
        }
        Some(next)
    }

    fn fence_holds(state: &State, owner: &str) -> bool {
        state.ownership.as_ref().is_some_and(|r| r.owner == owner)
    }
}

impl Model for PartitionModel {
    type State = State;
    type Op = PartitionOp;

    fn init(&self) -> State {
        State::default()
    }

    fn step(&self, state: &State, op: &PartitionOp) -> Vec<State> {
        match (&op.input, &op.output) {
            (Input::Claim { owner, etag }, Output::Won(won)) => {
                let Some(matched) = self.matching(state, etag.as_deref()) else {
                    return vec![];
                };
                // C5: a fresh etag and a modification time not before any earlier one.
                if won.owner != *owner
                    || matched
                        .ownership
                        .as_ref()
                        .is_some_and(|r| r.tag == Tag::Known(won.etag.clone()))
                    || won.modified.zip(matched.floor).is_some_and(|(m, f)| m < f)
                {
                    return vec![];
                }
                let mut next = matched;
                next.ownership = Some(Record {
                    owner: owner.clone(),
                    tag: Tag::Known(won.etag.clone()),
                    modified: won.modified,
                });
                if let Some(m) = won.modified {
                    next.floor = Some(next.floor.map_or(m, |f| f.max(m)));
                }
                vec![next]
            }
            (Input::Claim { etag, .. }, Output::Lost) => {
                if Self::may_miss(state, etag.as_deref()) {
                    vec![state.clone()]
                } else {
                    vec![]
                }
            }
            (Input::Claim { owner, etag }, Output::Unknown) => {
                let mut out = vec![state.clone()];
                if let Some(mut applied) = self.matching(state, etag.as_deref()) {
                    applied.ownership = Some(Record {
                        owner: owner.clone(),
                        tag: Tag::Unnamed,
                        modified: None,
                    });
                    out.push(applied);
                }
                out
            }
            (
                Input::Checkpoint {
                    offset,
                    sequence_number,
                    fenced_by,
                },
                output,
            ) => {
                let allowed = fenced_by.as_deref().is_none_or(|o| Self::fence_holds(state, o));
                let written = State {
                    checkpoint: Some(Values {
                        offset: offset.clone(),
                        sequence_number: *sequence_number,
                    }),
                    ..state.clone()
                };
                match output {
                    Output::Refused => vec![state.clone()],
                    Output::Written if allowed => vec![written],
                    Output::OwnershipLost if !allowed && fenced_by.is_some() => vec![state.clone()],
                    Output::Unknown if allowed => vec![state.clone(), written],
                    Output::Unknown => vec![state.clone()],
                    _ => vec![],
                }
            }
            (Input::ReadOwnership, Output::Ownership(None)) => {
                if state.ownership.is_none() {
                    vec![state.clone()]
                } else {
                    vec![]
                }
            }
            (Input::ReadOwnership, Output::Ownership(Some(seen))) => {
                self.observe(state, seen).into_iter().collect()
            }
            (Input::ReadCheckpoint, Output::Checkpoint(seen)) => {
                if state.checkpoint == *seen {
                    vec![state.clone()]
                } else {
                    vec![]
                }
            }
            // Refused as unstorable (C11): nothing written.
            (Input::Claim { .. }, Output::Refused) => vec![state.clone()],
            // A listing that failed observed nothing.
            (Input::ReadOwnership | Input::ReadCheckpoint, Output::Unknown) => vec![state.clone()],
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::checker::{Timed, Verdict, check};
    use super::*;

    fn claim(owner: &str, etag: Option<&str>, output: Output) -> PartitionOp {
        PartitionOp {
            input: Input::Claim {
                owner: owner.into(),
                etag: etag.map(str::to_owned),
            },
            output,
        }
    }

    fn won(owner: &str, etag: &str, modified: i128) -> Output {
        Output::Won(Owned {
            owner: owner.into(),
            etag: etag.into(),
            modified: Some(modified),
        })
    }

    fn read(owner: &str, etag: &str, modified: i128) -> PartitionOp {
        PartitionOp {
            input: Input::ReadOwnership,
            output: Output::Ownership(Some(Owned {
                owner: owner.into(),
                etag: etag.into(),
                modified: Some(modified),
            })),
        }
    }

    fn checkpoint(seq: i64, fenced_by: Option<&str>, output: Output) -> PartitionOp {
        PartitionOp {
            input: Input::Checkpoint {
                offset: None,
                sequence_number: Some(seq),
                fenced_by: fenced_by.map(str::to_owned),
            },
            output,
        }
    }

    fn read_checkpoint(seq: Option<i64>) -> PartitionOp {
        PartitionOp {
            input: Input::ReadCheckpoint,
            output: Output::Checkpoint(seq.map(|s| Values {
                offset: None,
                sequence_number: Some(s),
            })),
        }
    }

    fn verdict(ops: Vec<(PartitionOp, u64, Option<u64>)>) -> Verdict {
        let mut model = PartitionModel::default();
        for (op, _, _) in &ops {
            if let Output::Won(w) = &op.output {
                model.issued.insert(w.etag.clone());
            }
        }
        let timed: Vec<_> = ops
            .into_iter()
            .map(|(op, call, ret)| Timed { op, call, ret })
            .collect();
        check(&model, &timed, 1_000_000)
    }

    fn ok(v: &Verdict) -> bool {
        matches!(v, Verdict::Linearizable(_))
    }

    #[test]
    fn claims_create_then_update_by_etag() {
        assert!(ok(&verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (claim("B", Some("e1"), won("B", "e2", 2)), 2, Some(3)),
            (read("B", "e2", 2), 4, Some(5)),
        ])));
        // A create over an existing record cannot win (C3).
        assert!(!ok(&verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (claim("B", None, won("B", "e2", 2)), 2, Some(3)),
        ])));
    }

    #[test]
    fn concurrent_claims_with_one_etag_have_one_winner() {
        let v = verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (claim("B", Some("e1"), won("B", "e2", 5)), 2, Some(10)),
            (claim("C", Some("e1"), won("C", "e3", 6)), 3, Some(9)),
        ]);
        assert!(!ok(&v), "{v:?}");
        assert!(ok(&verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (claim("B", Some("e1"), won("B", "e2", 5)), 2, Some(10)),
            (claim("C", Some("e1"), Output::Lost), 3, Some(9)),
        ])));
    }

    #[test]
    fn owner_ids_and_modification_times_must_match_exactly() {
        assert!(!ok(&verdict(vec![(
            claim("Owner-A", None, won("owner-a", "e1", 1)),
            0,
            Some(1)
        )])));
        assert!(!ok(&verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (read("A", "e1", 2), 2, Some(3)),
        ])));
        // C5: a later claim may not go back in the store's time.
        assert!(!ok(&verdict(vec![
            (claim("A", None, won("A", "e1", 10)), 0, Some(1)),
            (claim("B", Some("e1"), won("B", "e2", 5)), 2, Some(3)),
        ])));
    }

    #[test]
    fn an_unknown_claim_may_have_won_and_a_listing_names_its_etag() {
        // The claim timed out but took effect: a listing shows its owner with a new etag.
        assert!(ok(&verdict(vec![
            (claim("A", None, Output::Unknown), 0, None),
            (read("A", "e9", 3), 10, Some(11)),
            (claim("B", Some("e9"), won("B", "e10", 4)), 12, Some(13)),
        ])));
        // Or it did not take effect.
        assert!(ok(&verdict(vec![
            (claim("A", None, Output::Unknown), 0, None),
            (claim("B", None, won("B", "e1", 4)), 12, Some(13)),
        ])));
        // A lost claim took no effect: a listing cannot show its owner.
        assert!(!ok(&verdict(vec![
            (claim("A", None, Output::Lost), 0, Some(1)),
            (read("A", "e9", 3), 10, Some(11)),
        ])));
        // An unnamed etag is never one another claim returned, nor one the suite made up.
        assert!(!ok(&verdict(vec![
            (claim("A", None, Output::Unknown), 0, None),
            (
                claim("C", Some("\"conformance-made-up-1\""), won("C", "e5", 2)),
                10,
                Some(11)
            ),
        ])));
    }

    #[test]
    fn fenced_checkpoints_need_the_owner_at_their_linearization_point() {
        assert!(ok(&verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (checkpoint(5, Some("A"), Output::Written), 2, Some(3)),
            (read_checkpoint(Some(5)), 4, Some(5)),
        ])));
        // A zombie's write lands after the steal and after the new owner's checkpoint.
        let v = verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (checkpoint(5, Some("A"), Output::Written), 2, Some(20)),
            (claim("B", Some("e1"), won("B", "e2", 2)), 5, Some(6)),
            (checkpoint(9, Some("B"), Output::Written), 7, Some(8)),
            (read_checkpoint(Some(5)), 21, Some(22)),
        ]);
        assert!(!ok(&v), "{v:?}");
        // Refused once the owner changed, and not before.
        assert!(ok(&verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (claim("B", Some("e1"), won("B", "e2", 2)), 2, Some(3)),
            (checkpoint(5, Some("A"), Output::OwnershipLost), 4, Some(5)),
        ])));
        assert!(!ok(&verdict(vec![
            (claim("A", None, won("A", "e1", 1)), 0, Some(1)),
            (checkpoint(5, Some("A"), Output::OwnershipLost), 4, Some(5)),
        ])));
    }

    #[test]
    fn checkpoints_are_unconditional_and_read_back_exactly() {
        assert!(ok(&verdict(vec![
            (checkpoint(1, None, Output::Written), 0, Some(1)),
            (checkpoint(2, None, Output::Unknown), 2, None),
            (read_checkpoint(Some(1)), 3, Some(4)),
            (read_checkpoint(Some(2)), 5, Some(6)),
        ])));
        // A write that vanished.
        assert!(!ok(&verdict(vec![
            (checkpoint(1, None, Output::Written), 0, Some(1)),
            (claim("A", None, won("A", "e1", 1)), 2, Some(3)),
            (read_checkpoint(None), 4, Some(5)),
        ])));
    }
}
