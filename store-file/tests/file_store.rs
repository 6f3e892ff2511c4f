//! What only a file store can get wrong: paths (C11), files on disk (C12), a vanished root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail by panicking

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use eventhubs_conformance::cases::names::{hostile_names, refused_names};
use eventhubs_store_core::{
    Checkpoint, CheckpointStore, ClaimOptions, ErrorKind, Ownership, PartitionScope, SetCheckpointOptions,
};
use eventhubs_store_file::{FileStore, FileStoreOptions, MAX_COMPONENT_BYTES};

fn scope(hub: &str, group: &str) -> PartitionScope {
    PartitionScope::new("ns.example", hub, group).unwrap()
}

/// Every path below `dir`, relative to it.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// A fresh store in its own temp dir.
async fn fresh_store() -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).await.unwrap();
    (dir, store)
}

/// A fresh store where "a" holds partition 0 of `scope("hub", "cg")`.
async fn store_with_one_claim() -> (tempfile::TempDir, FileStore, PartitionScope, Vec<Ownership>) {
    let (dir, store) = fresh_store().await;
    let s = scope("hub", "cg");
    let won = claim(&store, &[Ownership::new(s.clone(), "0", "a")]).await;
    (dir, store, s, won)
}

async fn claim(store: &FileStore, claims: &[Ownership]) -> Vec<Ownership> {
    store
        .claim_ownership(claims, &ClaimOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn c11_hostile_names_round_trip_and_stay_inside_the_root() {
    let outer = tempfile::tempdir().unwrap();
    fs::write(outer.path().join("sentinel"), b"untouched").unwrap();
    let store = FileStore::open(outer.path().join("root")).await.unwrap();

    // Refused names write nothing anywhere.
    let before = tree(outer.path());
    for bad in refused_names() {
        let s = scope("hub", "cg");
        let e = store
            .claim_ownership(&[Ownership::new(s.clone(), &bad, "a")], &ClaimOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
        let cp = Checkpoint::new(s, &bad, Some("1".into()), None);
        let e = store
            .set_checkpoint(&cp, &SetCheckpointOptions::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    assert_eq!(tree(outer.path()), before, "refused input wrote files");

    // Every hostile-but-valid name is stored faithfully: as partition id, hub and group.
    let names = hostile_names();
    let s = scope("hub", "cg");
    let claims: Vec<_> = names.iter().map(|n| Ownership::new(s.clone(), n, "a")).collect();
    assert_eq!(claim(&store, &claims).await.len(), names.len());
    for n in &names {
        let cp = Checkpoint::new(s.clone(), n, Some(n.clone()), Some(1));
        store
            .set_checkpoint(&cp, &SetCheckpointOptions::new())
            .await
            .unwrap();
        let hostile = scope(n, n);
        assert_eq!(
            claim(&store, &[Ownership::new(hostile.clone(), n, "b")])
                .await
                .len(),
            1
        );
        let listed = store.list_ownership(&hostile).await.unwrap();
        assert_eq!(listed.len(), 1, "{n:?}");
        assert_eq!(
            (listed[0].scope.clone(), listed[0].partition_id.clone()),
            (hostile, n.to_lowercase())
        );
    }
    let mut listed: Vec<_> = store
        .list_ownership(&s)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.partition_id)
        .collect();
    let mut expected: Vec<_> = names.iter().map(|n| n.to_lowercase()).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    for cp in store.list_checkpoints(&s).await.unwrap() {
        let offset = cp.offset.unwrap();
        assert!(
            names.contains(&offset) && offset.to_lowercase() == cp.partition_id,
            "{offset:?}"
        );
    }
    assert_eq!(store.list_scopes().await.unwrap().len(), names.len() + 1);

    // Nothing outside the root, and inside it only safe components.
    assert_eq!(fs::read(outer.path().join("sentinel")).unwrap(), b"untouched");
    let outside: Vec<_> = tree(outer.path())
        .into_iter()
        .filter(|p| !p.starts_with("root") && p != Path::new("sentinel"))
        .collect();
    assert!(outside.is_empty(), "written outside the root: {outside:?}");
    for path in tree(&outer.path().join("root")) {
        for part in path.components() {
            let part = part.as_os_str().to_str().unwrap();
            assert!(part.len() <= MAX_COMPONENT_BYTES, "{path:?}");
            assert!(
                part.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-%+".contains(&b)),
                "unsafe component {part:?} in {path:?}"
            );
            assert!(part != "." && part != "..", "{path:?}");
            assert!(
                !part.starts_with('.') || part == ".eventhubs-store-file",
                "{path:?}"
            );
        }
    }
}

#[tokio::test]
async fn c11_case_variants_share_one_record() {
    let (_dir, store) = fresh_store().await;
    let won = claim(&store, &[Ownership::new(scope("Hub", "CG"), "ÄB", "a")]).await;
    assert_eq!(won.len(), 1);
    let lost = claim(&store, &[Ownership::new(scope("HUB", "cg"), "äb", "b")]).await;
    assert!(lost.is_empty(), "a case variant created a second record (C1)");
}

#[tokio::test]
async fn corrupt_and_misplaced_records_fail_naming_the_file() {
    let (dir, store, s, _) = store_with_one_claim().await;
    let own_dir = dir.path().join("ns.example/hub/cg/ownership");

    // A record copied under another partition's name.
    fs::copy(own_dir.join("0"), own_dir.join("1")).unwrap();
    let e = store.list_ownership(&s).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend);
    assert!(
        e.to_string().contains(&own_dir.join("1").display().to_string()),
        "{e}"
    );
    let e = store
        .claim_ownership(&[Ownership::new(s.clone(), "1", "b")], &ClaimOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    fs::remove_file(own_dir.join("1")).unwrap();

    // A truncated record.
    let bytes = fs::read(own_dir.join("0")).unwrap();
    fs::write(own_dir.join("0"), &bytes[..bytes.len() / 2]).unwrap();
    let e = store.list_ownership(&s).await.unwrap_err();
    assert!(
        e.to_string().contains(&own_dir.join("0").display().to_string()),
        "{e}"
    );
    assert!(
        store.list_scopes().await.is_err(),
        "list_scopes must not skip a corrupt record"
    );

    // A stranger in a record directory.
    fs::write(own_dir.join("0"), &bytes).unwrap();
    fs::write(dir.path().join("ns.example/hub/cg/checkpoint/Notes.TXT"), b"hi").unwrap();
    let e = store.list_checkpoints(&s).await.unwrap_err();
    assert!(e.to_string().contains("Notes.TXT"), "{e}");
}

#[tokio::test]
async fn c12_temp_files_left_by_a_crash_are_ignored_and_replaced() {
    let (dir, store, s, won) = store_with_one_claim().await;
    let own_dir = dir.path().join("ns.example/hub/cg/ownership");
    fs::write(own_dir.join(".0.tmp"), b"half a reco").unwrap();
    fs::write(own_dir.join(".1.tmp"), b"").unwrap();
    assert_eq!(store.list_ownership(&s).await.unwrap(), won);
    let renewed = claim(
        &store,
        &[Ownership::new(s.clone(), "0", "a").with_etag(won[0].etag.clone())],
    )
    .await;
    assert_eq!(renewed.len(), 1);
    assert!(
        !own_dir.join(".0.tmp").exists(),
        "the next write reuses the leftover temp name"
    );
    assert_eq!(store.list_ownership(&s).await.unwrap(), renewed);
}

#[tokio::test]
async fn losing_and_refused_calls_create_no_directories() {
    let (dir, store) = fresh_store().await;
    let before = tree(dir.path());
    let s = scope("hub", "cg");
    let stale = Ownership::new(s.clone(), "0", "a").with_etag(Some(eventhubs_store_core::ETag::new("x")));
    assert!(claim(&store, &[stale]).await.is_empty());
    let cp = Checkpoint::new(s.clone(), "0", None, Some(1));
    let e = store
        .set_checkpoint(&cp, &SetCheckpointOptions::fenced("a"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OwnershipLost);
    assert!(!store.delete_checkpoint(&s, "0").await.unwrap());
    assert!(store.list_ownership(&s).await.unwrap().is_empty());
    assert!(store.list_scopes().await.unwrap().is_empty());
    assert_eq!(tree(dir.path()), before);
}

#[tokio::test]
async fn a_missing_root_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mounted-volume");
    let e = FileStoreOptions::new()
        .create_root(false)
        .open(&root)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("mounted-volume"), "{e}");
    assert!(!root.exists());

    let store = FileStore::open(&root).await.unwrap();
    assert!(format!("{store:?}").contains("mounted-volume"));
    let s = scope("hub", "cg");
    claim(&store, &[Ownership::new(s.clone(), "0", "a")]).await;
    fs::remove_dir_all(&root).unwrap();
    assert_eq!(
        store.list_ownership(&s).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(store.list_scopes().await.unwrap_err().kind(), ErrorKind::NotFound);
    let e = store
        .claim_ownership(&[Ownership::new(s.clone(), "1", "a")], &ClaimOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let cp = Checkpoint::new(s, "0", None, Some(1));
    let e = store
        .set_checkpoint(&cp, &SetCheckpointOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        !root.exists(),
        "a store must not recreate a root that was removed"
    );
}

#[tokio::test]
async fn a_scope_removed_behind_the_store_is_recreated() {
    let (dir, store, s, _) = store_with_one_claim().await;
    fs::remove_dir_all(dir.path().join("ns.example")).unwrap();
    assert_eq!(
        claim(&store, &[Ownership::new(s.clone(), "0", "b")]).await.len(),
        1
    );
    assert_eq!(store.list_ownership(&s).await.unwrap()[0].owner_id, "b");
}
