//! Tests with several OS processes on one store root: C7 across processes (`race`) and C12
//! under `kill -9` (`crash`).
//!
//! This binary is its own child: the parent tests run it again with `EVENTHUBS_FILE_TEST_CHILD`
//! set to a role, so no extra binary target is needed. It has no libtest harness (`harness =
//! false` in Cargo.toml) but accepts the usual name filters, `--exact` and `--list`.
//!
//! Knobs: `RACE_ROUNDS` (default 200), `CRASH_ROUNDS` (default 300; e.g. `CRASH_ROUNDS=5000` for
//! a long run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

mod crash;
mod race;

use std::process::ExitCode;
use std::time::Instant;

use eventhubs_store_core::PartitionScope;

/// Set in a child process to the role it plays.
pub const CHILD_ENV: &str = "EVENTHUBS_FILE_TEST_CHILD";
/// The store root a child opens.
pub const ROOT_ENV: &str = "EVENTHUBS_FILE_TEST_ROOT";

type TestFn = fn() -> Result<String, String>;

const TESTS: &[(&str, TestFn)] = &[
    (
        "c7_processes_race_for_one_partition",
        race::c7_processes_race_for_one_partition,
    ),
    (
        "c12_kill_9_loses_no_acknowledged_write",
        crash::c12_kill_9_loses_no_acknowledged_write,
    ),
];

/// The scope every process of these tests uses.
pub fn scope() -> PartitionScope {
    PartitionScope::new("procs.servicebus.windows.net", "hub", "$Default").unwrap()
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tokio runtime for one process's store calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A command running this binary as a child in `role` on the store at `root`.
pub fn child_command(role: &str, root: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD_ENV, role).env(ROOT_ENV, root);
    cmd
}

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        let root = std::path::PathBuf::from(std::env::var(ROOT_ENV).unwrap());
        match role.as_str() {
            "race" => race::child(&root),
            "crash" => crash::child(&root),
            other => panic!("unknown child role {other:?}"),
        }
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        name == f
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--ignored") {
        println!("\nrunning 0 tests (none are ignored)");
        return ExitCode::SUCCESS;
    }
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let started = Instant::now();
        match std::panic::catch_unwind(test) {
            Ok(Ok(summary)) => println!(
                "test {name} ... ok ({summary}; {:.1} s)",
                started.elapsed().as_secs_f64()
            ),
            Ok(Err(why)) => {
                println!("test {name} ... FAILED: {why}");
                failed.push(*name);
            }
            Err(_) => {
                println!("test {name} ... FAILED (panicked, see above)");
                failed.push(*name);
            }
        }
    }
    let passed = selected.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed");
        ExitCode::SUCCESS
    } else {
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed: {failed:?}",
            failed.len()
        );
        ExitCode::FAILURE
    }
}
