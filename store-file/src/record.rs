//! The content of a record file: a header line with a format version and a SHA-256 of the body,
//! then the body, one line of JSON.
//!
//! ```text
//! eventhubs-store-file v1 sha256:<64 hex digits of the body's SHA-256>
//! {"kind":"ownership","key":{"namespace":"…","event_hub":"…","consumer_group":"…","partition_id":"0"},…}
//! ```
//!
//! Files are replaced by rename, so a reader never sees a half-written one (C12); the checksum
//! and strict parsing (unknown fields, a missing field, a wrong kind, an invalid or un-normalised
//! name all fail) catch anything else that changed the file: a disk error, a hand edit, a file
//! copied into the wrong directory.

use std::fmt::Write as _;

use eventhubs_store_core::{
    Checkpoint, ETag, Ownership, PartitionScope, normalize_checkpoint, normalize_name, validate_value,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const HEADER_PREFIX: &str = "eventhubs-store-file v1 sha256:";
const OWNERSHIP: &str = "ownership";
const CHECKPOINT: &str = "checkpoint";

/// Where a record belongs: scope and partition, every name lower-cased (C1). Records carry
/// their full names because paths may hold only a hash of a long name.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    namespace: String,
    event_hub: String,
    consumer_group: String,
    partition_id: String,
}

impl Key {
    fn of(scope: &PartitionScope, partition_id: &str) -> Key {
        Key {
            namespace: scope.namespace().into(),
            event_hub: scope.event_hub().into(),
            consumer_group: scope.consumer_group().into(),
            partition_id: partition_id.into(),
        }
    }

    /// The scope and partition id, each of which must be valid and already normalised.
    fn parse(self) -> Result<(PartitionScope, String), String> {
        exact_name("namespace", &self.namespace)?;
        exact_name("event_hub", &self.event_hub)?;
        exact_name("consumer_group", &self.consumer_group)?;
        exact_name("partition_id", &self.partition_id)?;
        let scope = PartitionScope::new(&self.namespace, &self.event_hub, &self.consumer_group)
            .map_err(|e| e.to_string())?;
        Ok((scope, self.partition_id))
    }
}

/// An ownership record as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnershipBody {
    kind: String,
    key: Key,
    owner_id: String,
    etag: String,
    #[serde(with = "time::serde::rfc3339")]
    last_modified_time: OffsetDateTime,
}

/// A checkpoint record as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointBody {
    kind: String,
    key: Key,
    offset: Option<String>,
    sequence_number: Option<i64>,
}

/// The bytes of an ownership record with the etag and time the store issued.
pub fn ownership_bytes(owner: &Ownership, etag: &ETag, time: OffsetDateTime) -> Result<Vec<u8>, String> {
    seal(&OwnershipBody {
        kind: OWNERSHIP.into(),
        key: Key::of(&owner.scope, &owner.partition_id),
        owner_id: owner.owner_id.clone(),
        etag: etag.as_str().into(),
        last_modified_time: time,
    })
}

/// The bytes of a checkpoint record.
pub fn checkpoint_bytes(cp: &Checkpoint) -> Result<Vec<u8>, String> {
    seal(&CheckpointBody {
        kind: CHECKPOINT.into(),
        key: Key::of(&cp.scope, &cp.partition_id),
        offset: cp.offset.clone(),
        sequence_number: cp.sequence_number,
    })
}

/// Parses an ownership record; the error says what is wrong with it.
pub fn parse_ownership(bytes: &[u8]) -> Result<Ownership, String> {
    let body: OwnershipBody = open(bytes)?;
    expect_kind(&body.kind, OWNERSHIP)?;
    let (scope, partition_id) = body.key.parse()?;
    validate_value("owner_id", &body.owner_id).map_err(|e| e.to_string())?;
    if body.etag.is_empty() {
        return Err("etag is empty".into());
    }
    validate_value("etag", &body.etag).map_err(|e| e.to_string())?;
    Ok(Ownership {
        scope,
        partition_id,
        owner_id: body.owner_id,
        etag: Some(ETag::new(body.etag)),
        last_modified_time: Some(body.last_modified_time),
    })
}

/// Parses a checkpoint record; the error says what is wrong with it.
pub fn parse_checkpoint(bytes: &[u8]) -> Result<Checkpoint, String> {
    let body: CheckpointBody = open(bytes)?;
    expect_kind(&body.kind, CHECKPOINT)?;
    let (scope, partition_id) = body.key.parse()?;
    let cp = Checkpoint {
        scope,
        partition_id,
        offset: body.offset,
        sequence_number: body.sequence_number,
    };
    // The value rules of C9 and C11 (offset or sequence number, sizes).
    normalize_checkpoint(&cp).map_err(|e| e.to_string())?;
    Ok(cp)
}

fn seal<T: Serialize>(body: &T) -> Result<Vec<u8>, String> {
    let mut json = serde_json::to_vec(body).map_err(|e| format!("cannot encode record: {e}"))?;
    json.push(b'\n');
    let mut out = format!("{HEADER_PREFIX}{}\n", sha256_hex(&json)).into_bytes();
    out.extend_from_slice(&json);
    Ok(out)
}

fn open<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line (empty or truncated file)")?;
    let (header, body) = (&bytes[..newline], &bytes[newline + 1..]);
    let header = std::str::from_utf8(header).map_err(|_| "header is not UTF-8")?;
    let Some(expected) = header.strip_prefix(HEADER_PREFIX) else {
        return Err(format!("unknown header {header:?} (expected {HEADER_PREFIX:?}…)"));
    };
    let actual = sha256_hex(body);
    if expected != actual {
        return Err(format!(
            "checksum mismatch: header says {expected}, body hashes to {actual}"
        ));
    }
    if body.last() != Some(&b'\n') || body[..body.len() - 1].contains(&b'\n') {
        return Err("body is not exactly one line".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))
}

fn expect_kind(kind: &str, expected: &str) -> Result<(), String> {
    if kind == expected {
        Ok(())
    } else {
        Err(format!("kind is {kind:?}, expected {expected:?}"))
    }
}

/// A stored name must be valid and already normalised (C1, C11).
fn exact_name(field: &str, value: &str) -> Result<(), String> {
    match normalize_name(field, value) {
        Ok(n) if n == value => Ok(()),
        Ok(_) => Err(format!("{field} {value:?} is not lower-cased (rule C1)")),
        Err(e) => Err(e.to_string()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(bytes) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("ns.example", "hub", "$default").unwrap()
    }

    fn owner_bytes() -> (Ownership, Vec<u8>) {
        let time = OffsetDateTime::from_unix_timestamp_nanos(1_790_000_000_123_456_789).unwrap();
        let etag = ETag::new("0f3c");
        let o = Ownership::new(scope(), "7", "owner-a");
        let bytes = ownership_bytes(&o, &etag, time).unwrap();
        (o.with_etag(Some(etag)), bytes)
    }

    #[test]
    fn ownership_round_trips_to_the_nanosecond() {
        let (o, bytes) = owner_bytes();
        let parsed = parse_ownership(&bytes).unwrap();
        assert_eq!(parsed.etag, o.etag);
        assert_eq!(parsed.owner_id, "owner-a");
        assert_eq!(
            parsed.last_modified_time.unwrap().unix_timestamp_nanos(),
            1_790_000_000_123_456_789
        );
        assert_eq!(parsed.scope, scope());
    }

    #[test]
    fn c9_checkpoint_values_round_trip_exactly() {
        for (offset, seq) in [
            (Some("geo:1:\"x\"\\y".to_string()), None),
            (None, Some(i64::MIN)),
            (Some("0".into()), Some(i64::MAX)),
        ] {
            let cp = Checkpoint::new(scope(), "0", offset, seq);
            assert_eq!(parse_checkpoint(&checkpoint_bytes(&cp).unwrap()).unwrap(), cp);
        }
    }

    #[test]
    fn c12_every_truncation_and_bit_flip_is_refused() {
        let (_, bytes) = owner_bytes();
        for len in 0..bytes.len() {
            assert!(
                parse_ownership(&bytes[..len]).is_err(),
                "truncated to {len} bytes parsed"
            );
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x20;
            assert!(parse_ownership(&flipped).is_err(), "flip at byte {i} parsed");
        }
    }

    #[test]
    fn kind_and_unknown_fields_are_checked() {
        let (_, bytes) = owner_bytes();
        let e = parse_checkpoint(&bytes).unwrap_err();
        assert!(e.contains("unknown field") || e.contains("kind"), "{e}");
        let cp = checkpoint_bytes(&Checkpoint::new(scope(), "0", None, Some(1))).unwrap();
        assert!(parse_ownership(&cp).is_err());
    }

    #[test]
    fn unnormalised_names_are_refused() {
        let body = br#"{"kind":"checkpoint","key":{"namespace":"NS","event_hub":"h","consumer_group":"g","partition_id":"0"},"offset":null,"sequence_number":1}
"#;
        let mut bytes = format!("{HEADER_PREFIX}{}\n", sha256_hex(body)).into_bytes();
        bytes.extend_from_slice(body);
        let e = parse_checkpoint(&bytes).unwrap_err();
        assert!(e.contains("not lower-cased"), "{e}");
    }
}
