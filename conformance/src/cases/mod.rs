//! The named cases, one function per rule (several for some), and the registry [`CASES`].

pub mod checkpoint;
pub mod claim;
pub mod durability;
pub mod fencing;
pub mod history;
pub mod isolation;
pub mod names;
pub mod outage;
pub mod race;

use futures::future::BoxFuture;

use crate::context::{CaseResult, Ctx};

/// A case body.
pub type CaseFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, CaseResult>;

/// One named case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name, also the test name the [`crate::conformance_tests!`] macro generates.
    pub name: &'static str,
    /// The rules it checks, e.g. `"C7"`.
    pub rules: &'static str,
    /// The body.
    pub run: CaseFn,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Case({} [{}])", self.name, self.rules)
    }
}

macro_rules! case {
    ($rules:literal, $path:path, $name:ident) => {
        Case {
            name: stringify!($name),
            rules: $rules,
            run: |ctx| Box::pin($path(ctx)),
        }
    };
}

/// Every case, in report order. [`crate::conformance_tests!`] lists the same names; a unit test
/// keeps the two in step.
pub const CASES: &[Case] = &[
    case!(
        "C1",
        isolation::c1_names_are_case_insensitive,
        c1_names_are_case_insensitive
    ),
    case!("C2", isolation::c2_scopes_are_isolated, c2_scopes_are_isolated),
    case!(
        "C3",
        claim::c3_create_only_when_absent,
        c3_create_only_when_absent
    ),
    case!(
        "C4",
        claim::c4_update_requires_matching_etag,
        c4_update_requires_matching_etag
    ),
    case!(
        "C5",
        claim::c5_won_claim_returns_fresh_etag,
        c5_won_claim_returns_fresh_etag
    ),
    case!(
        "C5",
        claim::c5_last_modified_time_from_store_clock,
        c5_last_modified_time_from_store_clock
    ),
    case!(
        "C6",
        claim::c6_batch_claims_win_or_lose_individually,
        c6_batch_claims_win_or_lose_individually
    ),
    case!("C7", race::c7_linearizable_claims, c7_linearizable_claims),
    case!(
        "C7",
        race::c7_linearizable_claims_across_handles,
        c7_linearizable_claims_across_handles
    ),
    case!(
        "C8",
        claim::c8_relinquish_lists_empty_owner,
        c8_relinquish_lists_empty_owner
    ),
    case!(
        "C9",
        checkpoint::c9_checkpoint_values_round_trip,
        c9_checkpoint_values_round_trip
    ),
    case!(
        "C9",
        checkpoint::c9_checkpoint_needs_offset_or_sequence_number,
        c9_checkpoint_needs_offset_or_sequence_number
    ),
    case!(
        "C10",
        checkpoint::c10_checkpoints_and_ownership_are_independent,
        c10_checkpoints_and_ownership_are_independent
    ),
    case!(
        "C11",
        names::c11_invalid_input_writes_nothing,
        c11_invalid_input_writes_nothing
    ),
    case!(
        "C11",
        names::c11_hostile_names_round_trip_or_are_refused,
        c11_hostile_names_round_trip_or_are_refused
    ),
    case!(
        "C12",
        durability::c12_writes_survive_reopen,
        c12_writes_survive_reopen
    ),
    case!(
        "C12",
        outage::c12_acknowledged_writes_survive_cut_connections,
        c12_acknowledged_writes_survive_cut_connections
    ),
    case!(
        "C13",
        fencing::c13_fenced_checkpoint_requires_current_owner,
        c13_fenced_checkpoint_requires_current_owner
    ),
    case!(
        "C1,C10",
        durability::tools_delete_checkpoint_and_list_scopes,
        tools_delete_checkpoint_and_list_scopes
    ),
    case!(
        "C3-C10,C13",
        crate::model::model_random_sequences_match_reference,
        model_random_sequences_match_reference
    ),
    case!(
        "C3-C10,C13",
        history::c7_concurrent_histories_are_linearizable,
        c7_concurrent_histories_are_linearizable
    ),
];

/// Looks a case up by name.
pub fn find(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}
