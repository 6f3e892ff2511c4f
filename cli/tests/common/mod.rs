//! Helpers of the end-to-end tests: run the `ehstore` binary, write sample files, reach the
//! optional servers (loud skip outside CI, failure with CI=true).

#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

/// Environment variables every `ehstore` started by this test binary gets (connection strings
/// stay off the command line, as users are told to do).
static CHILD_ENV: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Adds a variable to the environment of every later `ehstore` child.
pub fn child_env(var: &str, value: &str) {
    CHILD_ENV.lock().unwrap().push((var.to_owned(), value.to_owned()));
}

/// The binary under test.
pub fn ehstore() -> Command {
    let mut cmd = Command::cargo_bin("ehstore").expect("the ehstore binary is built");
    cmd.env_remove("EHSTORE_NAMESPACE")
        .env_remove("EHSTORE_EVENT_HUB")
        .env_remove("EVENTHUBS_CONNECTION_STRING");
    for (k, v) in CHILD_ENV.lock().unwrap().iter() {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `ehstore args…` and returns the output, whatever the exit code.
pub fn run(args: &[&str]) -> Output {
    ehstore().args(args).output().expect("ehstore runs")
}

/// Runs `ehstore args…`, asserts success and returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "ehstore {args:?} failed: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs `ehstore args…`, asserts a non-zero exit and returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        !out.status.success(),
        "ehstore {args:?} should fail; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

pub const NS: &str = "myns.servicebus.windows.net";
pub const HUB: &str = "orders";

/// A sample export: two scopes, opaque and numeric offsets, a missing sequence number, the
/// largest sequence number, and an ownership line.
pub fn sample_export() -> String {
    [
        r#"{"format":"eventhubs-checkpoints","version":1}"#,
        r#"{"kind":"checkpoint","namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"$default","partition_id":"0","offset":"1024","sequence_number":17}"#,
        r#"{"kind":"checkpoint","namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"$default","partition_id":"1","offset":"geo:7:a1b2c3","sequence_number":9223372036854775807}"#,
        r#"{"kind":"checkpoint","namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"$default","partition_id":"2","offset":"4096","sequence_number":null}"#,
        r#"{"kind":"checkpoint","namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"analytics","partition_id":"0","offset":null,"sequence_number":0}"#,
        r#"{"kind":"ownership","namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"$default","partition_id":"0","owner_id":"p-1","etag":"x","last_modified_time":"2026-01-01T00:00:00Z"}"#,
    ]
    .join("\n")
        + "\n"
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// `sqlite:` URL of a new database in `dir`.
pub fn sqlite_url(dir: &Path, name: &str) -> String {
    format!("sqlite:{}", dir.join(name).display())
}

/// Exports every scope of `url` (checkpoints only), the lines sorted.
pub fn export_all(url: &str) -> Vec<String> {
    let text = ok(&["export", url, "--all"]);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// An optional backend is unavailable: one loud line outside CI, a failure with CI=true.
pub fn skip_or_fail(backend: &str, why: &str, how: &str) {
    eventhubs_conformance::skip_unless_ci(backend, why, how);
}

/// Whether something listens on `host:port`.
pub fn reachable(host: &str, port: u16) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let Ok(mut addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok())
}

/// The URL in `env` (or `default`) if its server is reachable; otherwise a loud skip outside
/// CI, a failure with CI=true.
fn server_url(env: &str, default: &str, default_port: u16, backend: &str, how: &str) -> Option<String> {
    let url = std::env::var(env).unwrap_or_else(|_| default.into());
    // A URL that does not parse is a mistake in the environment, never a reason to skip.
    let parsed = url::Url::parse(&url).unwrap_or_else(|e| panic!("{env}={url:?} is not a URL: {e}"));
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    if reachable(&host, parsed.port().unwrap_or(default_port)) {
        Some(url)
    } else {
        skip_or_fail(backend, &format!("nothing listens at {host}"), how);
        None
    }
}

/// The PostgreSQL test URL (EVENTHUBS_TEST_POSTGRES_URL), if its server is reachable.
pub fn postgres_url() -> Option<String> {
    server_url(
        "EVENTHUBS_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
        5432,
        "postgres",
        "start PostgreSQL or set EVENTHUBS_TEST_POSTGRES_URL",
    )
}

/// The Redis test URL (EVENTHUBS_TEST_REDIS_URL), if its server is reachable.
pub fn redis_url() -> Option<String> {
    server_url(
        "EVENTHUBS_TEST_REDIS_URL",
        "redis://127.0.0.1:6379",
        6379,
        "redis",
        "start redis-server or set EVENTHUBS_TEST_REDIS_URL",
    )
}

/// Deletes the Redis keys under `prefix` (best effort, through redis-cli).
pub fn drop_redis_prefix(url: &str, prefix: &str) {
    let keys = std::process::Command::new("redis-cli")
        .args(["-u", url, "--scan", "--pattern", &format!("{prefix}*")])
        .output();
    if let Ok(keys) = keys {
        for key in String::from_utf8_lossy(&keys.stdout).lines() {
            let _ = std::process::Command::new("redis-cli")
                .args(["-u", url, "DEL", key])
                .output();
        }
    }
}

/// A connection string for the Azurite of EVENTHUBS_TEST_AZURITE_BLOB_URL, if set.
#[cfg(feature = "blob")]
pub fn azurite_connection_string() -> Option<String> {
    match std::env::var("EVENTHUBS_TEST_AZURITE_BLOB_URL") {
        Ok(endpoint) => Some(format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint={endpoint};",
            eventhubs_store_blob::DEV_ACCOUNT_KEY
        )),
        Err(_) => {
            skip_or_fail(
                "blob (Azurite)",
                "EVENTHUBS_TEST_AZURITE_BLOB_URL is not set",
                "eval \"$(store-blob/scripts/start-azurite.sh)\" before cargo test",
            );
            None
        }
    }
}

/// A short unique suffix for schemas, containers and prefixes.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Drops a PostgreSQL schema the test created (best effort, through psql).
pub fn drop_postgres_schema(url: &str, schema: &str) {
    let _ = std::process::Command::new("psql")
        .args([
            url,
            "-q",
            "-c",
            &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
        ])
        .output();
}

/// Runs its clean-ups when dropped, so a failing assertion still removes what a test created
/// on a shared server.
#[derive(Default)]
pub struct Cleanup(Vec<Box<dyn FnOnce()>>);

impl Cleanup {
    /// Adds a clean-up.
    pub fn push(&mut self, f: impl FnOnce() + 'static) {
        self.0.push(Box::new(f));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for f in self.0.drain(..) {
            f();
        }
    }
}

/// Runs the demo (real Processors on the in-process emulator, a free port) into a SQLite store
/// in `dir`, quick timings; returns the store URL and the demo's JSON summary.
pub fn demo_json(dir: &Path, store_name: &str, port: &str) -> (String, serde_json::Value) {
    let store = sqlite_url(dir, store_name);
    let out = ok(&[
        "demo",
        "--store",
        &store,
        "--interval",
        "50ms",
        "--expiry",
        "600ms",
        "--port",
        port,
        "--json",
    ]);
    let summary = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (store, summary)
}

/// A store the demo filled: its URL and the namespace the demo's processors recorded
/// (`localhost:PORT`, as every SDK's processor records the emulator's).
pub fn demo_store(dir: &Path) -> (String, String) {
    let (store, summary) = demo_json(dir, "demo.db", "0");
    let namespace = summary["namespace"].as_str().unwrap().to_owned();
    (store, namespace)
}
