//! Test support: find (or start) Azurite, and hand each test its own container.
//!
//! Azurite is found through `EVENTHUBS_TEST_AZURITE_BLOB_URL`
//! (`http://127.0.0.1:PORT/devstoreaccount1`, what `scripts/start-azurite.sh` exports). Unset,
//! the test binary starts a fresh in-memory Azurite itself when the pinned one is installed in
//! `<repo>/.tools/azurite` (`scripts/setup-azurite.sh`), stopped when the binary exits.
#![allow(dead_code)] // each test binary uses a part of it
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

pub mod cut_proxy;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use eventhubs_store_blob::{BlobStore, BlobStoreBuilder, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};

/// The env var the tests read.
pub const URL_VAR: &str = "EVENTHUBS_TEST_AZURITE_BLOB_URL";

/// How to enable the Azurite tests, for skip lines and setup errors.
pub const HOW_TO_ENABLE: &str = "run store-blob/scripts/setup-azurite.sh once (the tests then start \
     Azurite themselves), or eval \"$(store-blob/scripts/start-azurite.sh)\" to export \
     EVENTHUBS_TEST_AZURITE_BLOB_URL";

/// The store-blob folder, symlinks resolved (the scripts live there; `.tools` is beside it).
pub fn store_blob_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// The Azurite blob endpoint, or why there is none.
pub fn azurite_url() -> Result<String, String> {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    URL.get_or_init(find_or_start_azurite).clone()
}

fn find_or_start_azurite() -> Result<String, String> {
    if let Ok(url) = std::env::var(URL_VAR)
        && !url.trim().is_empty()
    {
        return Ok(url.trim().trim_end_matches('/').to_string());
    }
    let bin = store_blob_dir().join("../.tools/azurite/node_modules/.bin/azurite-blob");
    if !bin.exists() {
        return Err(format!(
            "{URL_VAR} is unset and Azurite is not installed at {}",
            bin.display()
        ));
    }
    let output = Command::new("bash")
        .arg(store_blob_dir().join("scripts/start-azurite.sh"))
        .arg("--watch-pid")
        .arg(std::process::id().to_string())
        .env("AZURITE_NO_INSTALL", "1")
        .output()
        .map_err(|e| format!("could not run start-azurite.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "start-azurite.sh failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("export {URL_VAR}=")).map(str::to_string))
        .ok_or_else(|| "start-azurite.sh printed no URL".to_string())
}

/// The connection string of the Azurite dev account at `url`.
pub fn connection_string(url: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={url};"
    )
}

/// A fresh container name, unique per call.
pub fn unique_container(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..20])
}

/// Azurite, or one loud skip line (outside CI) / a panic (CI). `None`: skip the test.
pub fn azurite_or_skip(test: &str) -> Option<String> {
    match azurite_url() {
        Ok(url) => Some(url),
        Err(why) => {
            eventhubs_conformance::skip_unless_ci(
                "blob (Azurite)",
                &format!("{why} (in {test})"),
                HOW_TO_ENABLE,
            );
            None
        }
    }
}

/// A store on a new, created container of Azurite at `url`.
pub async fn fresh_store(url: &str, builder: impl FnOnce(BlobStoreBuilder) -> BlobStoreBuilder) -> BlobStore {
    let container = unique_container("t");
    let store =
        builder(BlobStoreBuilder::from_connection_string(&connection_string(url), &container).unwrap())
            .build()
            .unwrap();
    assert!(store.create_container_if_missing().await.unwrap());
    store
}
