//! The records a store keeps ([`Ownership`], [`Checkpoint`]), their key ([`PartitionScope`] plus
//! a partition id), [`ETag`], and the name rules of C1 and C11.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Longest name (namespace, event hub, consumer group, partition id), in bytes after
/// lower-casing. Event Hubs itself allows 256 characters for hub and group names.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest owner id, offset or etag, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;

/// The (fully qualified namespace, event hub, consumer group) a set of partitions belongs to.
///
/// Built only through [`PartitionScope::new`], which validates each name (C11) and lower-cases it
/// (C1), so a `PartitionScope` in hand is always valid and normalised.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawScope", into = "RawScope")]
pub struct PartitionScope {
    namespace: String,
    event_hub: String,
    consumer_group: String,
}

#[derive(Serialize, Deserialize)]
struct RawScope {
    fully_qualified_namespace: String,
    event_hub_name: String,
    consumer_group: String,
}

impl TryFrom<RawScope> for PartitionScope {
    type Error = Error;
    fn try_from(raw: RawScope) -> Result<Self> {
        PartitionScope::new(
            raw.fully_qualified_namespace,
            raw.event_hub_name,
            raw.consumer_group,
        )
    }
}

impl From<PartitionScope> for RawScope {
    fn from(s: PartitionScope) -> Self {
        RawScope {
            fully_qualified_namespace: s.namespace,
            event_hub_name: s.event_hub,
            consumer_group: s.consumer_group,
        }
    }
}

impl PartitionScope {
    /// Validates and lower-cases the three names (C1, C11).
    ///
    /// `namespace` is the fully qualified namespace (`myns.servicebus.windows.net`).
    pub fn new(
        namespace: impl AsRef<str>,
        event_hub: impl AsRef<str>,
        consumer_group: impl AsRef<str>,
    ) -> Result<Self> {
        Ok(PartitionScope {
            namespace: normalize_name("fully_qualified_namespace", namespace.as_ref())?,
            event_hub: normalize_name("event_hub_name", event_hub.as_ref())?,
            consumer_group: normalize_name("consumer_group", consumer_group.as_ref())?,
        })
    }

    /// The fully qualified namespace, lower-cased.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The event hub name, lower-cased.
    pub fn event_hub(&self) -> &str {
        &self.event_hub
    }

    /// The consumer group, lower-cased.
    pub fn consumer_group(&self) -> &str {
        &self.consumer_group
    }
}

impl fmt::Debug for PartitionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartitionScope({self})")
    }
}

impl fmt::Display for PartitionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.event_hub, self.consumer_group)
    }
}

/// An opaque version tag of one ownership record, issued by the store on every successful claim
/// (C5) and handed back to claim the record again (C4).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ETag(String);

impl ETag {
    /// Wraps a store-issued etag.
    pub fn new(value: impl Into<String>) -> Self {
        ETag(value.into())
    }

    /// The etag as the store issued it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({:?})", self.0)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who owns a partition, claimed with optimistic concurrency (C3–C8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// Namespace, event hub and consumer group.
    #[serde(flatten)]
    pub scope: PartitionScope,
    /// The partition id (lower-cased by the store, C1).
    pub partition_id: String,
    /// The owner; `""` means relinquished (C8).
    pub owner_id: String,
    /// `None` to create the record (C3), the stored etag to update it (C4). Set by the store on
    /// every returned or listed record.
    pub etag: Option<ETag>,
    /// The store's clock at the last successful claim (C5). Ignored on input.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_modified_time: Option<OffsetDateTime>,
}

impl Ownership {
    /// A claim of `partition_id` for `owner_id` without an etag (creates the record, C3).
    pub fn new(scope: PartitionScope, partition_id: impl Into<String>, owner_id: impl Into<String>) -> Self {
        Ownership {
            scope,
            partition_id: partition_id.into(),
            owner_id: owner_id.into(),
            etag: None,
            last_modified_time: None,
        }
    }

    /// The same claim with an expected etag (C4).
    pub fn with_etag(mut self, etag: Option<ETag>) -> Self {
        self.etag = etag;
        self
    }
}

/// How far a partition has been processed (C9). At least one of `offset` and `sequence_number`
/// is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Namespace, event hub and consumer group.
    #[serde(flatten)]
    pub scope: PartitionScope,
    /// The partition id (lower-cased by the store, C1).
    pub partition_id: String,
    /// The offset of the last processed event: an opaque string (geo-replicated hubs use
    /// non-numeric offsets), stored and returned exactly.
    pub offset: Option<String>,
    /// The sequence number of the last processed event.
    pub sequence_number: Option<i64>,
}

impl Checkpoint {
    /// A checkpoint with both an offset and a sequence number.
    pub fn new(
        scope: PartitionScope,
        partition_id: impl Into<String>,
        offset: Option<String>,
        sequence_number: Option<i64>,
    ) -> Self {
        Checkpoint {
            scope,
            partition_id: partition_id.into(),
            offset,
            sequence_number,
        }
    }
}

/// Validates a namespace, event hub, consumer group or partition id and returns it lower-cased.
///
/// # Rules
/// - C11: not empty; at most [`MAX_NAME_BYTES`] bytes; no control characters (NUL included);
///   no `/` or `\`; not `.` or `..`; no leading or trailing white space.
/// - C1: lower-cased (Unicode lower case, like Go's `strings.ToLower` over the blob name).
///
/// `field` names the field in the error.
pub fn normalize_name(field: &str, value: &str) -> Result<String> {
    normalized_name(value).map_err(|why| Error::invalid_input(field, value, format!("{why} (rule C11)")))
}

/// The lower-cased name, or why it breaks C11 (the field is named by the caller, lazily, so
/// large batches do not format a field name per claim).
fn normalized_name(value: &str) -> std::result::Result<String, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if value.contains('/') || value.contains('\\') {
        return Err("must not contain '/' or '\\'".into());
    }
    if value == "." || value == ".." {
        return Err("must not be '.' or '..'".into());
    }
    if value.trim() != value {
        return Err("must not start or end with white space".into());
    }
    let lower = value.to_lowercase();
    if lower.len() > MAX_NAME_BYTES {
        return Err(format!("must be at most {MAX_NAME_BYTES} bytes"));
    }
    Ok(lower)
}

/// Validates an owner id (may be empty: relinquished, C8), an offset or an etag: at most
/// [`MAX_VALUE_BYTES`] bytes and no control characters (C11).
pub fn validate_value(field: &str, value: &str) -> Result<()> {
    value_problem(value).map_or(Ok(()), |why| {
        Err(Error::invalid_input(field, value, format!("{why} (rule C11)")))
    })
}

fn value_problem(value: &str) -> Option<String> {
    if value.len() > MAX_VALUE_BYTES {
        return Some(format!("must be at most {MAX_VALUE_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    None
}

/// Validates one claim batch and returns it normalised (partition ids lower-cased).
///
/// Every store calls this before touching anything, so a bad batch writes nothing (C11).
/// A batch naming one partition of one scope twice is refused (C6: each claim must win or lose
/// on its own, which is ambiguous for two claims of one record).
pub fn normalize_claims(claims: &[Ownership]) -> Result<Vec<Ownership>> {
    let mut out: Vec<Ownership> = Vec::with_capacity(claims.len());
    // (scope, partition) → index of the claim that named it first; a hash set keeps large
    // batches linear.
    let mut seen: HashMap<(&PartitionScope, String), usize> = HashMap::with_capacity(claims.len());
    for (i, claim) in claims.iter().enumerate() {
        let partition_id = normalized_name(&claim.partition_id).map_err(|why| {
            let field = format!("claims[{i}].partition_id");
            Error::invalid_input(&field, &claim.partition_id, format!("{why} (rule C11)"))
        })?;
        if value_problem(&claim.owner_id).is_some() {
            validate_value(&format!("claims[{i}].owner_id"), &claim.owner_id)?;
        }
        if let Some(etag) = &claim.etag {
            if etag.as_str().is_empty() {
                return Err(Error::invalid_input(
                    &format!("claims[{i}].etag"),
                    "",
                    "must not be empty; use None to create (rule C3)",
                ));
            }
            if value_problem(etag.as_str()).is_some() {
                validate_value(&format!("claims[{i}].etag"), etag.as_str())?;
            }
        }
        if let Some(j) = seen.insert((&claim.scope, partition_id.clone()), i) {
            return Err(Error::invalid_input(
                &format!("claims[{i}].partition_id"),
                &claim.partition_id,
                format!(
                    "names the same partition as claims[{j}]; one claim per partition in a batch (rule C6)"
                ),
            ));
        }
        out.push(Ownership {
            scope: claim.scope.clone(),
            partition_id,
            owner_id: claim.owner_id.clone(),
            etag: claim.etag.clone(),
            last_modified_time: None,
        });
    }
    Ok(out)
}

/// Validates a checkpoint (C9, C11) and returns it normalised (partition id lower-cased).
pub fn normalize_checkpoint(checkpoint: &Checkpoint) -> Result<Checkpoint> {
    let partition_id = normalize_name("partition_id", &checkpoint.partition_id)?;
    if checkpoint.offset.is_none() && checkpoint.sequence_number.is_none() {
        return Err(Error::invalid_input(
            "checkpoint",
            &partition_id,
            "needs an offset or a sequence number (rule C9)",
        ));
    }
    if let Some(offset) = &checkpoint.offset {
        if offset.is_empty() {
            return Err(Error::invalid_input(
                "offset",
                offset,
                "must not be empty; use None (rule C9)",
            ));
        }
        validate_value("offset", offset)?;
    }
    Ok(Checkpoint {
        partition_id,
        ..checkpoint.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn c1_names_are_lower_cased() {
        let s = PartitionScope::new("MyNs.ServiceBus.Windows.Net", "Hub", "$Default").unwrap();
        assert_eq!(s.to_string(), "myns.servicebus.windows.net/hub/$default");
        assert_eq!(normalize_name("p", "ÄÖ").unwrap(), "äö");
    }

    #[test]
    fn c11_hostile_names_are_refused_naming_the_field() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "a\0b",
            "a\nb",
            " a",
            "a ",
            &"x".repeat(257),
        ] {
            let e = PartitionScope::new("ns", bad, "cg").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(e.to_string().contains("event_hub_name"), "{e}");
            assert!(e.to_string().contains("C11"), "{e}");
        }
        assert!(normalize_name("p", "..a").is_ok());
        assert!(normalize_name("p", "日本").is_ok());
    }

    #[test]
    fn c6_duplicate_partitions_in_a_batch_are_refused() {
        let s = PartitionScope::new("ns", "hub", "cg").unwrap();
        let e = normalize_claims(&[Ownership::new(s.clone(), "0", "a"), Ownership::new(s, "0", "b")])
            .unwrap_err();
        assert!(e.to_string().contains("claims[1].partition_id"), "{e}");
    }

    #[test]
    fn c9_checkpoint_needs_offset_or_sequence_number() {
        let s = PartitionScope::new("ns", "hub", "cg").unwrap();
        let e = normalize_checkpoint(&Checkpoint::new(s.clone(), "0", None, None)).unwrap_err();
        assert!(e.to_string().contains("C9"), "{e}");
        let ok = normalize_checkpoint(&Checkpoint::new(s, "P1", Some("x:1".into()), None)).unwrap();
        assert_eq!(ok.partition_id, "p1");
    }

    #[test]
    fn scope_serde_validates_and_lower_cases() {
        let json = r#"{"fully_qualified_namespace":"NS","event_hub_name":"h","consumer_group":"c"}"#;
        let s: PartitionScope = serde_json::from_str(json).unwrap();
        assert_eq!(s.namespace(), "ns");
        let bad = r#"{"fully_qualified_namespace":"a/b","event_hub_name":"h","consumer_group":"c"}"#;
        assert!(serde_json::from_str::<PartitionScope>(bad).is_err());
    }
}
