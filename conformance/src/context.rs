//! What a case gets ([`Ctx`]) and what it returns on failure ([`Failure`]).

use std::fmt;
use std::sync::{Arc, Mutex};

use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, Error, Ownership, PartitionScope, SetCheckpointOptions,
};

use crate::harness::Instance;

/// A failed case: the rule it breaks and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The rule, e.g. `"C7"`.
    pub rule: &'static str,
    /// What was expected and what the store did.
    pub message: String,
}

impl Failure {
    /// A failure of `rule`.
    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Failure {
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} broken: {}", self.rule, self.message)
    }
}

/// The outcome of one case body.
pub type CaseResult = Result<(), Failure>;

/// Fails the case with `rule` unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $rule:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::context::Failure::new($rule, format!($($msg)+)));
        }
    };
}
pub(crate) use ensure;

/// Converts a store error met where the call should have worked into a failure of `rule`.
pub(crate) trait OrFail<T> {
    fn or_fail(self, rule: &'static str, what: &str) -> Result<T, Failure>;
}

impl<T> OrFail<T> for Result<T, Error> {
    fn or_fail(self, rule: &'static str, what: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(rule, format!("{what} failed unexpectedly: {e}")))
    }
}

/// Everything a case needs: the store, a second handle factory and names unique to this run.
pub struct Ctx {
    pub(crate) store: Arc<dyn CheckpointStore>,
    pub(crate) instance: Arc<Box<dyn Instance>>,
    pub(crate) namespace: String,
    /// Set by [`Ctx::not_applicable`]: why the case could not check its rule here.
    pub(crate) not_applicable: Mutex<Option<String>>,
}

impl Ctx {
    pub(crate) fn new(instance: Arc<Box<dyn Instance>>, case: &str) -> Self {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let short: String = case.chars().take(24).collect();
        Ctx {
            store: instance.store(),
            instance,
            namespace: format!(
                "conf-{}-{}.servicebus.windows.net",
                &run[..12],
                short.replace('_', "-")
            ),
            not_applicable: Mutex::new(None),
        }
    }

    /// Why the case ended without a verdict, if it did.
    pub(crate) fn take_not_applicable(&self) -> Option<String> {
        self.not_applicable.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Ends the case without a verdict: this store or harness offers nothing the case could
    /// check (no second handle, no connections to cut). Reported as
    /// [`crate::Outcome::NotApplicable`] with `why`, never as a pass.
    pub fn not_applicable(&self, why: impl Into<String>) -> CaseResult {
        if let Ok(mut slot) = self.not_applicable.lock() {
            *slot = Some(why.into());
        }
        Ok(())
    }

    /// The store under test.
    pub fn store(&self) -> &dyn CheckpointStore {
        self.store.as_ref()
    }

    /// A scope in this case's own namespace, so cases never see each other's records even when
    /// they share one store (the CLI runs the suite against a live store that way).
    pub fn scope(&self, hub: &str, group: &str) -> PartitionScope {
        self.scope_in("", hub, group)
    }

    /// A scope in a namespace that starts with `prefix` and then this case's unique suffix.
    pub fn scope_in(&self, prefix: &str, hub: &str, group: &str) -> PartitionScope {
        // Names here are fixed by the suite and valid; a failure is a bug in the suite itself.
        match PartitionScope::new(format!("{prefix}{}", self.namespace), hub, group) {
            Ok(s) => s,
            Err(e) => unreachable_scope(e),
        }
    }

    /// The fully qualified namespace unique to this case.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A second, independent handle on the same data, if the store can be reopened.
    pub async fn reopen(&self) -> Result<Option<Arc<dyn CheckpointStore>>, Failure> {
        self.instance
            .reopen()
            .await
            .map_err(|e| Failure::new("C12", format!("the harness could not reopen the store: {e}")))
    }

    /// Cuts the store's connections from the server side, if the harness can (see
    /// [`Instance::interrupt`]).
    pub async fn interrupt(&self) -> Result<Option<u64>, Failure> {
        self.instance
            .interrupt()
            .await
            .map_err(|e| Failure::new("harness", format!("the harness could not cut connections: {e}")))
    }

    /// Claims a batch and fails with `rule` if the store errors.
    pub async fn claim(&self, rule: &'static str, claims: &[Ownership]) -> Result<Vec<Ownership>, Failure> {
        self.store
            .claim_ownership(claims, &ClaimOptions::default())
            .await
            .or_fail(rule, "claim_ownership")
    }

    /// Lists ownership sorted by partition id.
    pub async fn ownership(
        &self,
        rule: &'static str,
        scope: &PartitionScope,
    ) -> Result<Vec<Ownership>, Failure> {
        let mut v = self
            .store
            .list_ownership(scope)
            .await
            .or_fail(rule, "list_ownership")?;
        v.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
        Ok(v)
    }

    /// Lists checkpoints sorted by partition id.
    pub async fn checkpoints(
        &self,
        rule: &'static str,
        scope: &PartitionScope,
    ) -> Result<Vec<Checkpoint>, Failure> {
        let mut v = self
            .store
            .list_checkpoints(scope)
            .await
            .or_fail(rule, "list_checkpoints")?;
        v.sort_by(|a, b| a.partition_id.cmp(&b.partition_id));
        Ok(v)
    }

    /// Writes a checkpoint unconditionally and fails with `rule` if the store errors.
    pub async fn set_checkpoint(&self, rule: &'static str, cp: &Checkpoint) -> Result<(), Failure> {
        self.store
            .set_checkpoint(cp, &SetCheckpointOptions::default())
            .await
            .or_fail(rule, "set_checkpoint")
    }
}

#[allow(clippy::panic)]
fn unreachable_scope(e: Error) -> ! {
    panic!("conformance suite bug: a fixed scope name is invalid: {e}")
}
