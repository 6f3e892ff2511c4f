//! `ehstore conformance URL`: the whole conformance suite (rules C1–C13) against a live store.
//!
//! Every case gets the store opened afresh from the URL and works in a namespace of its own
//! (`conf-<random>-<case>.servicebus.windows.net`), so the cases never see each other's records
//! or the store's real data. Afterwards the checkpoints the cases wrote are deleted (on stores
//! that can list scopes and delete checkpoints); ownership records stay, relinquished or expired,
//! because the contract has no operation that deletes ownership.
//!
//! Exit code 0 only when every case passed or could not apply (`N/A`: e.g. cutting connections,
//! which this command never does to a live store).

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use eventhubs_conformance::{Harness, Instance, Outcome, Report, SetupError, run_all};
use eventhubs_store_core::{BoxError, CheckpointStore, ErrorKind, PartitionScope, Result};

use crate::cli::ConformanceArgs;
use crate::commands::out;
use crate::open::{OpenOptions, open_store_with};
use crate::redact::redact_url;

/// A harness over a store URL: every case opens the store anew.
pub struct UrlHarness {
    url: String,
    options: OpenOptions,
    name: String,
    reopenable: bool,
    deleted: Arc<AtomicUsize>,
}

impl UrlHarness {
    /// A harness for `url`, named `name` in reports. `reopenable` is false for `memory:`, whose
    /// every opening is a new, empty store.
    pub fn new(url: &str, options: OpenOptions, name: String, reopenable: bool) -> Self {
        UrlHarness {
            url: url.to_owned(),
            options,
            name,
            reopenable,
            deleted: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Checkpoints deleted by the cleanups so far.
    pub fn deleted_checkpoints(&self) -> usize {
        self.deleted.load(Ordering::Relaxed)
    }
}

struct UrlInstance {
    url: String,
    options: OpenOptions,
    store: Arc<dyn CheckpointStore>,
    reopenable: bool,
    scopes_before: HashSet<PartitionScope>,
    deleted: Arc<AtomicUsize>,
}

#[async_trait]
impl Harness for UrlHarness {
    fn name(&self) -> &str {
        &self.name
    }

    async fn setup(&self) -> std::result::Result<Box<dyn Instance>, SetupError> {
        let store = open_store_with(&self.url, &self.options).await.map_err(|e| {
            if e.kind() == ErrorKind::Unavailable {
                SetupError::unreachable(e.to_string(), "start the server or correct the URL")
            } else {
                SetupError::failed(e)
            }
        })?;
        let scopes_before = if store.capabilities().list_scopes {
            store.list_scopes().await?.into_iter().collect()
        } else {
            HashSet::new()
        };
        Ok(Box::new(UrlInstance {
            url: self.url.clone(),
            options: self.options.clone(),
            store,
            reopenable: self.reopenable,
            scopes_before,
            deleted: self.deleted.clone(),
        }))
    }
}

/// A namespace the suite made (`Ctx` names them `…conf-<run>-<case>.servicebus.windows.net`).
fn is_suite_namespace(namespace: &str) -> bool {
    namespace.contains("conf-") && namespace.ends_with(".servicebus.windows.net")
}

#[async_trait]
impl Instance for UrlInstance {
    fn store(&self) -> Arc<dyn CheckpointStore> {
        self.store.clone()
    }

    async fn reopen(&self) -> std::result::Result<Option<Arc<dyn CheckpointStore>>, BoxError> {
        if !self.reopenable {
            return Ok(None);
        }
        Ok(Some(open_store_with(&self.url, &self.options).await?))
    }

    async fn cleanup(self: Box<Self>) -> std::result::Result<(), BoxError> {
        let caps = self.store.capabilities();
        if !(caps.list_scopes && caps.delete_checkpoint) {
            return Ok(());
        }
        for scope in self.store.list_scopes().await? {
            if self.scopes_before.contains(&scope) || !is_suite_namespace(scope.namespace()) {
                continue;
            }
            for cp in self.store.list_checkpoints(&scope).await? {
                if self.store.delete_checkpoint(&scope, &cp.partition_id).await? {
                    self.deleted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

/// Per rule, in the suite's order: (rules, passed, total). Cases not applicable to the store
/// count in neither.
pub fn per_rule(report: &Report) -> Vec<(&'static str, usize, usize)> {
    let mut rules: Vec<(&'static str, usize, usize)> = Vec::new();
    for case in &report.cases {
        let i = match rules.iter().position(|r| r.0 == case.rules) {
            Some(i) => i,
            None => {
                rules.push((case.rules, 0, 0));
                rules.len() - 1
            }
        };
        match case.outcome {
            Outcome::NotApplicable(_) => {}
            Outcome::Passed => {
                rules[i].1 += 1;
                rules[i].2 += 1;
            }
            _ => rules[i].2 += 1,
        }
    }
    rules
}

/// Runs `ehstore conformance`.
///
/// # Errors
/// A store that cannot be opened (checked once before the cases run).
pub async fn run(args: ConformanceArgs) -> Result<ExitCode> {
    let options = args.store.write();
    let probe = open_store_with(&args.store.url, &options).await?;
    let backend = probe.backend_name();
    let reopenable = probe.capabilities().durable;
    drop(probe);
    let name = format!("{backend} ({})", redact_url(&args.store.url));
    let harness = UrlHarness::new(&args.store.url, options, name, reopenable);
    let mut history = eventhubs_conformance::HistoryConfig::current();
    history.clients = args.history_clients as usize;
    history.ops_per_client = args.history_ops as usize;
    history.histories = args.histories as usize;
    if args.history_out.is_some() {
        history.out.clone_from(&args.history_out);
    }
    history.install();
    let filter = args.filter.clone().unwrap_or_default().to_lowercase();
    let report = run_all(&harness, &|case: &str| case.contains(&filter)).await;
    out(&report.to_string());
    out("per rule:");
    for (rules, passed, total) in per_rule(&report) {
        let verdict = match (passed, total) {
            (_, 0) => "not applicable",
            (p, t) if p == t => "ok",
            _ => "FAILED",
        };
        out(&format!("  {rules:<10} {passed}/{total} {verdict}"));
    }
    out(&format!(
        "cleanup: deleted {} checkpoint(s) the cases wrote",
        harness.deleted_checkpoints()
    ));
    if report.cases.is_empty() {
        out(&format!("no case name contains {filter:?}"));
        return Ok(ExitCode::FAILURE);
    }
    let clean = report.failed() == 0 && report.skipped() == 0;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
