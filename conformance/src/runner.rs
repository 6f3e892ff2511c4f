//! Running cases: one at a time for `#[test]`s ([`run_case_blocking`]) or all of them for a
//! report ([`run_all`]).

use std::collections::HashSet;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;

use crate::cases::{CASES, Case, find};
use crate::context::{Ctx, Failure};
use crate::harness::{Harness, Instance, SetupError};

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// A rule was broken (or the harness failed).
    Failed(Failure),
    /// The backend was unreachable outside CI.
    Skipped(String),
    /// The store or its harness offers nothing this case could check (no second handle to
    /// reopen, no connections to cut); the reason says what. Neither a pass nor a failure.
    NotApplicable(String),
}

/// One case's line in a [`Report`].
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// The case name (`c7_linearizable_claims`).
    pub name: &'static str,
    /// The rules it checks.
    pub rules: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time of setup, case and cleanup.
    pub duration: Duration,
}

/// The result of [`run_all`].
#[derive(Debug, Clone)]
pub struct Report {
    /// The harness's backend name.
    pub backend: String,
    /// One line per case run.
    pub cases: Vec<CaseReport>,
}

impl Report {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.outcome == Outcome::Passed).count()
    }

    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .count()
    }

    /// Cases skipped because the backend was unreachable.
    pub fn skipped(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
            .count()
    }

    /// Cases that could not check their rule on this store (see [`Outcome::NotApplicable`]).
    pub fn not_applicable(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::NotApplicable(_)))
            .count()
    }

    /// True when nothing failed.
    pub fn is_success(&self) -> bool {
        self.failed() == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance of {}:", self.backend)?;
        for c in &self.cases {
            let ms = c.duration.as_millis();
            match &c.outcome {
                Outcome::Passed => writeln!(f, "  PASS  {:<8} {} ({ms} ms)", c.rules, c.name)?,
                Outcome::Skipped(why) => writeln!(f, "  SKIP  {:<8} {}: {why}", c.rules, c.name)?,
                Outcome::Failed(fail) => writeln!(f, "  FAIL  {:<8} {}: {fail}", c.rules, c.name)?,
                Outcome::NotApplicable(why) => writeln!(f, "  N/A   {:<8} {}: {why}", c.rules, c.name)?,
            }
        }
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )?;
        match self.not_applicable() {
            0 => Ok(()),
            n => write!(f, ", {n} not applicable"),
        }
    }
}

/// Runs one case against a fresh instance from `harness`: setup, body, cleanup (always).
/// A panic inside the body is reported as a failure, not propagated.
pub async fn run_one(harness: &dyn Harness, case: &Case) -> CaseReport {
    let started = Instant::now();
    let outcome = match harness.setup().await {
        Err(SetupError::Unreachable {
            reason,
            how_to_enable,
        }) => Outcome::Skipped(format!(
            "{} unreachable: {reason}; to enable: {how_to_enable}",
            harness.name()
        )),
        Err(SetupError::Failed(e)) => Outcome::Failed(Failure::new("harness", format!("setup failed: {e}"))),
        Ok(instance) => run_on_instance(case, instance).await,
    };
    CaseReport {
        name: case.name,
        rules: case.rules,
        outcome,
        duration: started.elapsed(),
    }
}

async fn run_on_instance(case: &Case, instance: Box<dyn Instance>) -> Outcome {
    let shared = Arc::new(instance);
    let ctx = Ctx::new(shared.clone(), case.name);
    let body = AssertUnwindSafe((case.run)(&ctx)).catch_unwind().await;
    let not_applicable = ctx.take_not_applicable();
    drop(ctx);
    let mut outcome = match body {
        Ok(Ok(())) => not_applicable.map_or(Outcome::Passed, Outcome::NotApplicable),
        Ok(Err(failure)) => Outcome::Failed(failure),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            Outcome::Failed(Failure::new("harness", format!("the case panicked: {what}")))
        }
    };
    match Arc::try_unwrap(shared) {
        Ok(instance) => {
            if let Err(e) = instance.cleanup().await
                && outcome == Outcome::Passed
            {
                outcome = Outcome::Failed(Failure::new("harness", format!("cleanup failed: {e}")));
            }
        }
        Err(_) => {
            if outcome == Outcome::Passed {
                outcome = Outcome::Failed(Failure::new(
                    "harness",
                    "a case kept the instance alive; cleanup skipped",
                ));
            }
        }
    }
    outcome
}

/// Runs every case whose name passes `filter` and returns the report. Needs a multi-thread
/// tokio runtime (the model case uses `block_in_place`).
pub async fn run_all(harness: &dyn Harness, filter: &dyn Fn(&str) -> bool) -> Report {
    let mut cases = Vec::new();
    for case in CASES.iter().filter(|c| filter(c.name)) {
        cases.push(run_one(harness, case).await);
    }
    Report {
        backend: harness.name().to_string(),
        cases,
    }
}

/// Runs the case called `name` as a `#[test]`: panics with the rule and message when it fails.
/// When the backend is unreachable it prints one loud skip line per backend and returns, unless
/// `CI=true`, where an unreachable backend is a failure.
///
/// This is what [`crate::conformance_tests!`] calls; it builds its own multi-thread runtime.
#[allow(clippy::panic)] // a failing test must panic: that is how the test harness sees it
pub fn run_case_blocking(harness: &dyn Harness, name: &str) {
    let Some(case) = find(name) else {
        panic!("no conformance case named {name:?}");
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a tokio runtime: {e}"),
    };
    let report = runtime.block_on(run_one(harness, case));
    match report.outcome {
        Outcome::Passed => {}
        // "Not applicable" is not "passed": a harness leaves such a case out (`except`).
        Outcome::NotApplicable(why) => panic!(
            "{} could not check its rule against {}: {why}. If this harness cannot take it, leave \
             it out: conformance_tests!(HARNESS, except: [{}])",
            case.name,
            harness.name(),
            case.name
        ),
        Outcome::Failed(failure) => panic!("{} failed against {}: {failure}", case.name, harness.name()),
        Outcome::Skipped(why) => fail_in_ci_or_skip_loudly(harness.name(), &why),
    }
}

/// The project's one rule for a backend a test cannot reach: with `CI=true` the test fails
/// (panics); otherwise one loud line per backend and process says why and how to enable it, and
/// the caller skips. Backends' own integration tests call this too, so every skip looks alike.
pub fn skip_unless_ci(backend: &str, why: &str, how_to_enable: &str) {
    fail_in_ci_or_skip_loudly(backend, &format!("{why}; to enable: {how_to_enable}"));
}

#[allow(clippy::panic)] // a failing test must panic: that is how the test harness sees it
fn fail_in_ci_or_skip_loudly(backend: &str, why: &str) {
    if in_ci() {
        panic!("{backend} could not run with CI=true: {why}");
    }
    skip_line_once(backend, why);
}

/// True when `CI` is set to `true` (or `1`): unreachable backends then fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn skip_line_once(backend: &str, why: &str) {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let Ok(mut seen) = SEEN.lock() else { return };
    if seen.get_or_insert_with(HashSet::new).insert(backend.to_string()) {
        eprintln!("\n!!!!!!!! SKIPPING {backend} tests: {why} (with CI=true this is a failure) !!!!!!!!\n");
    }
}
