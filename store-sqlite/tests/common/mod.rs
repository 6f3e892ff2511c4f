//! Child processes for the cross-process tests: the test binary re-runs itself with one
//! `#[ignore]`d entry test selected and an environment variable naming its role. Children speak
//! a line protocol on stdout; libtest's own output is told apart by the `@@ ` marker.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use eventhubs_store_core::PartitionScope;
use eventhubs_store_sqlite::SqliteStore;

/// Environment variable holding the database path; set only in children.
const DB_ENV: &str = "EHSQLITE_TEST_CHILD_DB";

/// Starts this test binary again, running only the ignored test `entry`, with the database
/// path and `envs` in its environment; stdin, stdout and stderr are piped.
pub fn spawn_child(entry: &str, db: &Path, envs: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("path of the test binary");
    Command::new(exe)
        .args([
            entry,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(DB_ENV, db)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child process")
}

/// The protocol part of one line of a child's stdout, if it has one.
pub fn protocol_line(line: &str) -> Option<&str> {
    line.split_once("@@ ").map(|(_, rest)| rest.trim_end())
}

/// Child side: one protocol line, flushed before returning (so a line the parent sees was
/// printed after the acknowledgement it reports).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@ {line}").expect("write to stdout");
    out.flush().expect("flush stdout");
}

/// The one scope every cross-process test uses.
pub fn scope() -> PartitionScope {
    PartitionScope::new("crash.servicebus.windows.net", "Orders", "$Default").unwrap()
}

/// Child side: a runtime and the store opened on the parent's database, or `None` (with a
/// note on stderr) when the `entry` test is run by hand rather than by its parent.
pub fn open_as_child(entry: &str) -> Option<(tokio::runtime::Runtime, SqliteStore)> {
    let Ok(db) = std::env::var(DB_ENV) else {
        eprintln!("{entry} runs only as a child process started by another test of this file");
        return None;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = runtime.block_on(SqliteStore::open(&db)).unwrap();
    Some((runtime, store))
}
