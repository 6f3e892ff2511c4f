//! The blob layout shared with the Go, Python, Java and .NET stores:
//! names, metadata keys, etag form, and what that layout cannot carry faithfully (C11).
//!
//! ```text
//! {namespace}/{eventhub}/{consumergroup}/ownership/{partitionid}    metadata: ownerid
//! {namespace}/{eventhub}/{consumergroup}/checkpoint/{partitionid}   metadata: sequencenumber, offset
//! ```
//! The whole name is lower-case (C1); content is empty; metadata keys are read
//! case-insensitively (older Java wrote `OwnerId`).

use std::collections::HashMap;

use eventhubs_store_core::{Error, ErrorKind, PartitionScope, Result};

use crate::BACKEND;

/// Metadata key of the owner id on ownership blobs.
pub(crate) const OWNER_ID: &str = "ownerid";
/// Metadata key of the sequence number on checkpoint blobs.
pub(crate) const SEQUENCE_NUMBER: &str = "sequencenumber";
/// Metadata key of the offset on checkpoint blobs.
pub(crate) const OFFSET: &str = "offset";

/// Azure's limit on a blob name.
const MAX_BLOB_NAME_BYTES: usize = 1024;

/// Which of the two records a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// `…/ownership/{partition}`
    Ownership,
    /// `…/checkpoint/{partition}`
    Checkpoint,
}

impl Record {
    fn segment(self) -> &'static str {
        match self {
            Record::Ownership => "ownership",
            Record::Checkpoint => "checkpoint",
        }
    }
}

/// The listing prefix of one scope's records, ending in `/` so `a` never matches `ab` (C2).
pub(crate) fn scope_prefix(scope: &PartitionScope, record: Record) -> String {
    format!(
        "{}/{}/{}/{}/",
        scope.namespace(),
        scope.event_hub(),
        scope.consumer_group(),
        record.segment()
    )
    .to_lowercase()
}

/// The blob name of one record, lower-cased as a whole (C1); refuses what Azure would not store
/// under exactly this name (C11).
pub(crate) fn blob_name(scope: &PartitionScope, record: Record, partition_id: &str) -> Result<String> {
    // Azure trims trailing dots from URL path segments: "p." would be stored as "p".
    for (field, value) in [
        ("fully_qualified_namespace", scope.namespace()),
        ("event_hub_name", scope.event_hub()),
        ("consumer_group", scope.consumer_group()),
        ("partition_id", partition_id),
    ] {
        if value.ends_with('.') {
            return Err(Error::invalid_input(
                field,
                value,
                "must not end with '.': Azure Blob Storage drops trailing dots from blob names (rule C11)",
            )
            .with_backend(BACKEND));
        }
    }
    let name = format!("{}{partition_id}", scope_prefix(scope, record)).to_lowercase();
    if name.len() > MAX_BLOB_NAME_BYTES {
        return Err(Error::invalid_input(
            "blob name",
            &name,
            format!("is longer than Azure's {MAX_BLOB_NAME_BYTES}-byte limit; shorten the names (rule C11)"),
        )
        .with_backend(BACKEND));
    }
    Ok(name)
}

/// The partition id of a listed blob of the scope `prefix`, or `None` for a blob that is not a
/// record of this scope (a deeper path someone else wrote).
pub(crate) fn partition_of<'a>(prefix: &str, blob_name: &'a str) -> Option<&'a str> {
    let rest = blob_name.strip_prefix(prefix)?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// Parses a listed blob name into its scope, record kind and partition id (for `list_scopes`);
/// `None` for blobs that are not ours.
pub(crate) fn parse_blob_name(blob_name: &str) -> Option<(PartitionScope, Record, String)> {
    let parts: Vec<&str> = blob_name.split('/').collect();
    let [ns, hub, group, record, partition] = parts.as_slice() else {
        return None;
    };
    let record = match *record {
        "ownership" => Record::Ownership,
        "checkpoint" => Record::Checkpoint,
        _ => return None,
    };
    let scope = PartitionScope::new(ns, hub, group).ok()?;
    let partition = eventhubs_store_core::normalize_name("partition_id", partition).ok()?;
    // Only names we could have written ourselves (already lower-case) are records.
    (blob_name == format!("{}{partition}", scope_prefix(&scope, record)))
        .then_some((scope, record, partition))
}

/// Checks that a value survives a trip through an HTTP metadata header unchanged: visible
/// ASCII and inner spaces only (HTTP trims outer white space and cannot carry other bytes
/// portably). `field` names the value in the error (C11).
pub(crate) fn validate_metadata_value(field: &str, value: &str) -> Result<()> {
    let why = if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        "must be printable ASCII: blob metadata travels in HTTP headers (rule C11)"
    } else if value.trim() != value {
        "must not start or end with a space: HTTP trims header values (rule C11)"
    } else {
        return Ok(());
    };
    Err(Error::invalid_input(field, value, why).with_backend(BACKEND))
}

/// Looks a metadata key up case-insensitively.
pub(crate) fn metadata_value<'a>(metadata: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// The metadata of a checkpoint blob. Absent values are omitted (as the Go store does) rather
/// than written as `"None"`.
pub(crate) fn checkpoint_metadata(
    offset: Option<&str>,
    sequence_number: Option<i64>,
) -> HashMap<String, String> {
    let mut metadata = HashMap::new();
    if let Some(offset) = offset {
        metadata.insert(OFFSET.to_string(), offset.to_string());
    }
    if let Some(sequence_number) = sequence_number {
        metadata.insert(SEQUENCE_NUMBER.to_string(), sequence_number.to_string());
    }
    metadata
}

/// Reads the sequence number of a listed checkpoint blob; a value that is not an integer is a
/// corrupt record (`Backend`), named with its blob.
pub(crate) fn parse_sequence_number(
    blob_name: &str,
    metadata: &HashMap<String, String>,
) -> Result<Option<i64>> {
    metadata_value(metadata, SEQUENCE_NUMBER)
        .map(|raw| {
            raw.trim().parse::<i64>().map_err(|_| {
                Error::new(
                    ErrorKind::Backend,
                    format!(
                        "checkpoint blob {blob_name:?} has metadata sequencenumber={} which is not an integer",
                        eventhubs_store_core::quote_shortened(raw)
                    ),
                )
                .with_backend(BACKEND)
            })
        })
        .transpose()
}

/// Etags are kept unquoted (the listing's form) and sent quoted (the header's form), so an etag
/// from a listing, from a response header or from another SDK all work in the next claim.
pub(crate) fn normalize_etag(etag: &str) -> String {
    let t = etag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
        .to_string()
}

/// The `If-Match` form of an etag.
pub(crate) fn quoted_etag(etag: &str) -> String {
    format!("\"{}\"", normalize_etag(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("MyNs.ServiceBus.Windows.Net", "Orders", "$Default").unwrap()
    }

    #[test]
    fn c1_names_follow_the_shared_layout_lower_cased() {
        assert_eq!(
            blob_name(&scope(), Record::Ownership, "0").unwrap(),
            "myns.servicebus.windows.net/orders/$default/ownership/0"
        );
        assert_eq!(
            blob_name(&scope(), Record::Checkpoint, "12").unwrap(),
            "myns.servicebus.windows.net/orders/$default/checkpoint/12"
        );
    }

    #[test]
    fn c2_prefixes_end_with_a_slash_and_skip_deeper_blobs() {
        let a = PartitionScope::new("ns", "a", "cg").unwrap();
        let prefix = scope_prefix(&a, Record::Checkpoint);
        assert_eq!(prefix, "ns/a/cg/checkpoint/");
        assert_eq!(partition_of(&prefix, "ns/a/cg/checkpoint/3"), Some("3"));
        assert_eq!(partition_of(&prefix, "ns/ab/cg/checkpoint/3"), None);
        assert_eq!(partition_of(&prefix, "ns/a/cg/checkpoint/x/3"), None);
        assert_eq!(partition_of(&prefix, "ns/a/cg/checkpoint/"), None);
    }

    #[test]
    fn c11_trailing_dots_and_long_names_are_refused() {
        let e = blob_name(&scope(), Record::Ownership, "p.").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("partition_id"), "{e}");
        let dotted = PartitionScope::new("ns.", "h", "g").unwrap();
        assert!(blob_name(&dotted, Record::Checkpoint, "0").is_err());
        let long = "x".repeat(256);
        let big = PartitionScope::new(&long, &long, &long).unwrap();
        let e = blob_name(&big, Record::Ownership, &long).unwrap_err();
        assert!(e.to_string().contains("1024"), "{e}");
    }

    #[test]
    fn c11_metadata_values_must_survive_http_headers() {
        validate_metadata_value("owner_id", "").unwrap();
        validate_metadata_value("owner_id", "a b-c_9:{}").unwrap();
        for bad in ["ünïcode", " lead", "trail ", "tab\tinside", "日本"] {
            let e = validate_metadata_value("offset", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(
                e.to_string().contains("offset") && e.to_string().contains("C11"),
                "{e}"
            );
        }
    }

    #[test]
    fn metadata_keys_are_read_case_insensitively() {
        let md = HashMap::from([("OwnerId".to_string(), "java".to_string())]);
        assert_eq!(metadata_value(&md, OWNER_ID), Some("java"));
        let md = HashMap::from([("SequenceNumber".to_string(), "42".to_string())]);
        assert_eq!(parse_sequence_number("b", &md).unwrap(), Some(42));
        let md = HashMap::from([("sequencenumber".to_string(), "None".to_string())]);
        let e = parse_sequence_number("ns/h/g/checkpoint/0", &md).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert!(e.to_string().contains("ns/h/g/checkpoint/0"), "{e}");
    }

    #[test]
    fn checkpoint_metadata_omits_absent_values() {
        let md = checkpoint_metadata(Some("a:b"), None);
        assert_eq!(md.len(), 1);
        assert_eq!(md[OFFSET], "a:b");
        let md = checkpoint_metadata(None, Some(-1));
        assert_eq!(md[SEQUENCE_NUMBER], "-1");
    }

    #[test]
    fn etags_are_normalised_between_listing_and_header_forms() {
        assert_eq!(normalize_etag("\"0x8DC0\""), "0x8DC0");
        assert_eq!(normalize_etag("0x8DC0"), "0x8DC0");
        assert_eq!(normalize_etag("W/\"0x8DC0\""), "0x8DC0");
        assert_eq!(quoted_etag("0x8DC0"), "\"0x8DC0\"");
        assert_eq!(quoted_etag("\"0x8DC0\""), "\"0x8DC0\"");
    }

    #[test]
    fn parse_blob_name_finds_scopes_and_skips_foreign_blobs() {
        let (s, r, p) = parse_blob_name("ns/hub/$default/ownership/0").unwrap();
        assert_eq!(s.to_string(), "ns/hub/$default");
        assert_eq!((r, p.as_str()), (Record::Ownership, "0"));
        assert!(parse_blob_name("ns/hub/$default/other/0").is_none());
        assert!(parse_blob_name("ns/hub/$default/ownership/0/x").is_none());
        assert!(parse_blob_name("NS/hub/$default/ownership/0").is_none());
        assert!(parse_blob_name("readme.txt").is_none());
    }
}
