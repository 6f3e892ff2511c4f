//! The whole suite against the reference store, through the macro a third party uses.

use std::sync::Arc;

use eventhubs_conformance::{Harness, Instance, SetupError, conformance_tests};
use eventhubs_store_core::{BoxError, CheckpointStore, InMemoryStore};

struct MemoryHarness;
struct MemoryInstance(InMemoryStore);

#[async_trait::async_trait]
impl Harness for MemoryHarness {
    fn name(&self) -> &str {
        "memory"
    }
    async fn setup(&self) -> Result<Box<dyn Instance>, SetupError> {
        Ok(Box::new(MemoryInstance(InMemoryStore::new())))
    }
}

#[async_trait::async_trait]
impl Instance for MemoryInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        Arc::new(self.0.clone())
    }
    // A clone shares the data: a second handle, not a restart (the store declares durable: false).
    async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        Ok(Some(Arc::new(self.0.clone())))
    }
}

// Left out: the memory store cannot be restarted (a clone shares its data, so a "reopen" proves
// nothing), has no connection to cut, and is the model the random sequences are compared with.
conformance_tests!(MemoryHarness, except: [
    c12_writes_survive_reopen,
    c12_acknowledged_writes_survive_cut_connections,
    model_random_sequences_match_reference,
]);

/// A harness that cannot cut connections gets `N/A` for the outage case, never a pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outage_case_is_not_applicable_without_interrupt() {
    let report = eventhubs_conformance::run_all(&MemoryHarness, &|name| {
        name == "c12_acknowledged_writes_survive_cut_connections"
    })
    .await;
    assert_eq!(report.not_applicable(), 1, "{report}");
    assert_eq!(report.passed(), 0, "{report}");
    assert!(report.is_success(), "{report}");
    assert!(
        report
            .to_string()
            .ends_with("0 passed, 0 failed, 0 skipped, 1 not applicable"),
        "{report}"
    );
}

/// In `cargo test`, a case that cannot check its rule fails and asks to be left out: "not
/// applicable" never shows as "ok".
#[test]
#[should_panic(
    expected = "leave it out: conformance_tests!(HARNESS, except: [c12_acknowledged_writes_survive_cut_connections])"
)]
fn a_case_that_cannot_apply_fails_its_test_instead_of_passing() {
    eventhubs_conformance::run_case_blocking(
        &MemoryHarness,
        "c12_acknowledged_writes_survive_cut_connections",
    );
}
