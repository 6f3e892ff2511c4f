//! The Event Hubs checkpoint-store contract as executable, named test cases.
//!
//! Every rule of the contract (C1–C13, documented on
//! [`eventhubs_store_core::CheckpointStore`]) has at least one case here, named after it
//! (`c7_linearizable_claims`, `c11_invalid_input_writes_nothing`, …), plus a property-based
//! model check that replays random operation sequences against the store and against
//! [`eventhubs_store_core::InMemoryStore`] and compares every step.
//!
//! # Running the suite against your own store
//!
//! Implement [`Harness`] (hands out a fresh, isolated store per case) and [`Instance`] (the
//! store, how to reopen it, how to clean up), then call [`conformance_tests!`] from your crate's
//! `tests/conformance.rs`. It expands to one `#[test]` per case, so `cargo test c7` runs only the
//! C7 cases:
//!
//! ```
//! use std::sync::Arc;
//! use eventhubs_conformance::{Harness, Instance, SetupError, conformance_tests};
//! use eventhubs_store_core::{CheckpointStore, InMemoryStore};
//!
//! struct MemoryHarness;
//! struct MemoryInstance(InMemoryStore);
//!
//! #[async_trait::async_trait]
//! impl Harness for MemoryHarness {
//!     fn name(&self) -> &str {
//!         "memory"
//!     }
//!     async fn setup(&self) -> Result<Box<dyn Instance>, SetupError> {
//!         Ok(Box::new(MemoryInstance(InMemoryStore::new())))
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl Instance for MemoryInstance {
//!     fn store(&self) -> Arc<dyn CheckpointStore> {
//!         Arc::new(self.0.clone())
//!     }
//! }
//!
//! conformance_tests!(MemoryHarness);
//! # fn main() {}
//! ```
//!
//! Tools run the suite programmatically with [`run_all`] and print the [`Report`]. The
//! [`measure`] module times claims and checkpoints the same way for every store (benches, not
//! tests).
//!
//! Knobs (environment): `EVENTHUBS_CONFORMANCE_RACE_ROUNDS` (default 10 rounds of 32 racers per
//! C7 case), `EVENTHUBS_CONFORMANCE_PROPTEST_CASES` (default 32 sequences), `CI=true` (an
//! unreachable backend fails instead of skipping).

pub mod cases;
mod context;
mod harness;
pub mod linearizability;
pub mod measure;
mod model;
mod runner;

pub use cases::{CASES, Case};
pub use context::{CaseResult, Ctx, Failure};
pub use harness::{Harness, Instance, SetupError};
pub use linearizability::history::HistoryConfig;
pub use model::proptest_cases;
pub use runner::{CaseReport, Outcome, Report, in_ci, run_all, run_case_blocking, run_one, skip_unless_ci};

/// Generates one `#[test]` per conformance case, named after the case, running it against the
/// harness expression (evaluated afresh in every test).
///
/// ```ignore
/// eventhubs_conformance::conformance_tests!(MyHarness::from_env());
/// // A harness that cannot take some cases (e.g. no connections to cut) leaves them out: they
/// // show as `ignored` in `cargo test`, never as a pass.
/// eventhubs_conformance::conformance_tests!(MyHarness::from_env(), except: [
///     c12_acknowledged_writes_survive_cut_connections,
/// ]);
/// ```
///
/// A case that finds it cannot check its rule against the harness (it would be "not
/// applicable" in [`run_all`]'s report) fails its test and asks to be listed in `except`: in
/// `cargo test`, "not applicable" is never reported as "ok".
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!($harness, except: []);
    };
    ($harness:expr, except: [$($except:ident),* $(,)?]) => {
        $crate::conformance_tests!(@define ($) $harness; [$($except),*]);
    };
    (@define ($d:tt) $harness:expr; [$($except:ident),*]) => {
        macro_rules! __eventhubs_conformance_case {
            $(
                ($except) => {
                    #[test]
                    #[ignore = "left out for this harness: it cannot check this rule"]
                    fn $except() {
                        $crate::run_case_blocking(&$harness, stringify!($except));
                    }
                };
            )*
            ($d name:ident) => {
                #[test]
                fn $d name() {
                    $crate::run_case_blocking(&$harness, stringify!($d name));
                }
            };
        }
        $crate::conformance_tests!(@cases;
            c1_names_are_case_insensitive,
            c2_scopes_are_isolated,
            c3_create_only_when_absent,
            c4_update_requires_matching_etag,
            c5_won_claim_returns_fresh_etag,
            c5_last_modified_time_from_store_clock,
            c6_batch_claims_win_or_lose_individually,
            c7_linearizable_claims,
            c7_linearizable_claims_across_handles,
            c8_relinquish_lists_empty_owner,
            c9_checkpoint_values_round_trip,
            c9_checkpoint_needs_offset_or_sequence_number,
            c10_checkpoints_and_ownership_are_independent,
            c11_invalid_input_writes_nothing,
            c11_hostile_names_round_trip_or_are_refused,
            c12_writes_survive_reopen,
            c12_acknowledged_writes_survive_cut_connections,
            c13_fenced_checkpoint_requires_current_owner,
            tools_delete_checkpoint_and_list_scopes,
            model_random_sequences_match_reference,
            c7_concurrent_histories_are_linearizable,
        );
    };
    (@cases; $($name:ident),* $(,)?) => {
        $(
            __eventhubs_conformance_case!($name);
        )*

        /// The macro's list and the suite's registry name the same cases.
        #[test]
        fn conformance_macro_lists_every_case() {
            let listed: &[&str] = &[$(stringify!($name)),*];
            let registered: Vec<&str> = $crate::CASES.iter().map(|c| c.name).collect();
            assert_eq!(listed, registered.as_slice(), "conformance_tests! is out of step with CASES");
        }
    };
}

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
