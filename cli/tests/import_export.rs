//! `ehstore export` / `import` end to end: the documented JSON Lines format round-trips, and a
//! file with any bad line writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;

#[test]
fn export_then_import_round_trips_every_value() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = write(tmp.path(), "seed.jsonl", &sample_export());
    let a = sqlite_url(tmp.path(), "a.db");
    let out = run(&["import", &a, "--input", &seed]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 ownership record(s) not imported"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 copied"));

    let exported = tmp.path().join("out.jsonl");
    ok(&["export", &a, "--all", "--output", exported.to_str().unwrap()]);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.starts_with("{\"format\":\"eventhubs-checkpoints\",\"version\":1}\n"),
        "{text}"
    );
    assert!(
        text.contains(r#""offset":"geo:7:a1b2c3""#) && text.contains("9223372036854775807"),
        "{text}"
    );
    assert!(
        !text.contains("\"ownership\""),
        "ownership only with --ownership: {text}"
    );

    let b = format!("file:{}", tmp.path().join("b").display());
    ok(&["import", &b, "-i", exported.to_str().unwrap()]);
    assert_eq!(export_all(&b), export_all(&a));
    // Importing again changes nothing.
    let again = ok(&["import", &b, "-i", exported.to_str().unwrap()]);
    assert!(again.contains("0 copied, 4 unchanged"), "{again}");
}

#[test]
fn import_of_a_bad_file_writes_nothing_and_names_every_bad_line() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_url(tmp.path(), "s.db");
    let seed = write(tmp.path(), "seed.jsonl", &sample_export());
    ok(&["import", &store, "--input", &seed]);
    let before = export_all(&store);

    let mut lines: Vec<String> = sample_export().lines().map(str::to_owned).collect();
    // Good lines that would change partition 0 and add partition 7 ...
    lines.push(r#"{"kind":"checkpoint","namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"$default","partition_id":"7","offset":"1","sequence_number":1}"#.into());
    lines[1] = lines[1].replace("1024", "2048").replace("17", "18");
    // ... and bad ones: a path separator (C11), neither offset nor sequence number (C9), not JSON.
    lines.insert(3, r#"{"kind":"checkpoint","namespace":"myns.servicebus.windows.net","event_hub":"../etc","consumer_group":"$default","partition_id":"0","offset":"1"}"#.into());
    lines.push(
        r#"{"kind":"checkpoint","namespace":"n","event_hub":"h","consumer_group":"c","partition_id":"3"}"#
            .into(),
    );
    lines.push("{oops".into());
    let bad = write(tmp.path(), "bad.jsonl", &lines.join("\n"));

    let err = fails(&["import", &store, "--input", &bad]);
    assert!(err.contains("line 4:") && err.contains("C11"), "{err}");
    assert!(err.contains("line 9:") && err.contains("C9"), "{err}");
    assert!(
        err.contains("line 10:") && err.contains("not valid JSON"),
        "{err}"
    );
    assert!(
        err.contains("3 bad line(s)") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(export_all(&store), before, "a refused import changed the store");

    let newer = write(
        tmp.path(),
        "v2.jsonl",
        "{\"format\":\"eventhubs-checkpoints\",\"version\":2}\n",
    );
    let err = fails(&["import", &store, "--input", &newer]);
    assert!(err.contains("newer than this ehstore reads"), "{err}");
    let missing = tmp.path().join("missing.jsonl");
    let err = fails(&["import", &store, "--input", missing.to_str().unwrap()]);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn export_with_ownership_lists_claims_from_the_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, namespace) = demo_store(tmp.path());
    let text = ok(&[
        "export",
        &store,
        "--namespace",
        &namespace,
        "--hub",
        "orders",
        "--ownership",
    ]);
    let owners = text
        .lines()
        .filter(|l| l.contains(r#""kind":"ownership""#))
        .count();
    let checkpoints = text
        .lines()
        .filter(|l| l.contains(r#""kind":"checkpoint""#))
        .count();
    assert_eq!((owners, checkpoints), (8, 8), "{text}");
    assert!(text.contains(r#""owner_id":"alpha""#), "{text}");
}
