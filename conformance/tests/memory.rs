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

conformance_tests!(MemoryHarness);

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
