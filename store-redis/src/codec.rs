//! How one record is stored as a hash field value.
//!
//! - ownership: `<etag>\n<last modified, µs since the epoch>\n<owner id>`; the ownership hash
//!   also holds the scope clock under the field `""` (no partition id is empty, C11), which
//!   listing skips
//! - checkpoint: `<sequence number or "">\n<offset or "">`
//!
//! `\n` cannot occur in an etag, owner id or offset (C11 refuses control characters), and the
//! owner id comes last, so the split is unambiguous. The Lua scripts read the same format (see
//! [`crate::scripts`]). Sequence numbers stay decimal strings end to end: Lua numbers are
//! doubles and would round an `i64` above 2^53.

use eventhubs_store_core::{Checkpoint, ETag, Ownership, PartitionScope};
use time::OffsetDateTime;

/// Decodes an ownership value; `None` if it is malformed.
pub(crate) fn decode_ownership(
    scope: &PartitionScope,
    partition_id: String,
    value: &str,
) -> Option<Ownership> {
    let mut parts = value.splitn(3, '\n');
    let etag = parts.next()?;
    let micros = parts.next()?;
    let owner_id = parts.next()?;
    if etag.is_empty() {
        return None;
    }
    Some(Ownership {
        scope: scope.clone(),
        partition_id,
        owner_id: owner_id.to_owned(),
        etag: Some(ETag::new(etag)),
        last_modified_time: Some(time_from_micros(micros.parse().ok()?)?),
    })
}

/// The time of a store time stamp (microseconds since the Unix epoch, as the claim script writes
/// it); `None` if out of range.
pub(crate) fn time_from_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()
}

/// Encodes the values of a checkpoint (already validated: at least one of the two is set).
pub(crate) fn encode_checkpoint(checkpoint: &Checkpoint) -> String {
    let seq = checkpoint
        .sequence_number
        .map(|s| s.to_string())
        .unwrap_or_default();
    let offset = checkpoint.offset.as_deref().unwrap_or_default();
    format!("{seq}\n{offset}")
}

/// Decodes a checkpoint value; `None` if it is malformed.
pub(crate) fn decode_checkpoint(
    scope: &PartitionScope,
    partition_id: String,
    value: &str,
) -> Option<Checkpoint> {
    let (seq, offset) = value.split_once('\n')?;
    let sequence_number = if seq.is_empty() {
        None
    } else {
        Some(seq.parse::<i64>().ok()?)
    };
    let offset = if offset.is_empty() {
        None
    } else {
        Some(offset.to_owned())
    };
    if sequence_number.is_none() && offset.is_none() {
        return None;
    }
    Some(Checkpoint {
        scope: scope.clone(),
        partition_id,
        offset,
        sequence_number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("ns", "hub", "cg").unwrap()
    }

    #[test]
    fn c9_checkpoints_round_trip_exactly_including_extreme_sequence_numbers() {
        for (offset, seq) in [
            (Some("12345"), Some(i64::MAX)),
            (Some("geo:1:abc def"), None),
            (None, Some(i64::MIN)),
            (Some("\u{1F600}"), Some(0)),
            (Some("a\\b"), Some(-1)),
        ] {
            let cp = Checkpoint::new(scope(), "0", offset.map(String::from), seq);
            let back = decode_checkpoint(&scope(), "0".into(), &encode_checkpoint(&cp)).unwrap();
            assert_eq!(back, cp);
        }
    }

    #[test]
    fn ownership_values_decode_and_owner_keeps_everything_after_the_second_newline() {
        let o = decode_ownership(&scope(), "3".into(), "e1\n1700000000123456\nowner with spaces").unwrap();
        assert_eq!(o.owner_id, "owner with spaces");
        assert_eq!(o.etag, Some(ETag::new("e1")));
        let t = o.last_modified_time.unwrap();
        assert_eq!(t.unix_timestamp(), 1_700_000_000);
        assert_eq!(t.microsecond(), 123_456);
        let relinquished = decode_ownership(&scope(), "3".into(), "e2\n1\n").unwrap();
        assert_eq!(relinquished.owner_id, "");
    }

    #[test]
    fn malformed_values_are_refused() {
        assert!(decode_ownership(&scope(), "0".into(), "no-newline").is_none());
        assert!(decode_ownership(&scope(), "0".into(), "e\nnot-a-number\no").is_none());
        assert!(decode_ownership(&scope(), "0".into(), "\n1\no").is_none());
        assert!(decode_checkpoint(&scope(), "0".into(), "12").is_none());
        assert!(decode_checkpoint(&scope(), "0".into(), "x\n").is_none());
        assert!(decode_checkpoint(&scope(), "0".into(), "\n").is_none());
    }
}
