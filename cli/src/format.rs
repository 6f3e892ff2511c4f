//! The export format: versioned JSON Lines, written by `ehstore export` and read by
//! `ehstore import`.
//!
//! # Format `eventhubs-checkpoints`, version 1
//!
//! UTF-8, one JSON object per line. The first line is the header; every other non-blank line is
//! one record:
//!
//! ```text
//! {"format":"eventhubs-checkpoints","version":1}
//! {"kind":"checkpoint","namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"$default","partition_id":"0","offset":"1024","sequence_number":17}
//! {"kind":"ownership","namespace":"myns.servicebus.windows.net","event_hub":"orders","consumer_group":"$default","partition_id":"0","owner_id":"processor-a","etag":"9f1c…","last_modified_time":"2026-11-22T10:00:00.123Z"}
//! ```
//!
//! - `checkpoint`: `offset` (an opaque string) and `sequence_number` (a 64-bit integer); either may
//!   be `null` or absent, not both (rule C9).
//! - `ownership` (only with `export --ownership`): for inspection and backups. `import` validates
//!   these lines but does not write them: an etag is issued by the store that holds the record
//!   (rule C5), so a copied ownership would be a claim nobody made; processors claim afresh.
//! - Names follow rules C1 and C11 (lower-cased on reading; empty names, `/`, `\`, `..`, control
//!   characters refused). Unknown fields or kinds are errors, so a typo never drops data.
//! - A reader refuses a header with a newer `version`. Additions that old readers may ignore
//!   would keep version 1; anything else bumps it.
//!
//! A file that breaks any rule is refused as a whole, with every bad line's number and reason.

use std::collections::HashMap;
use std::fmt;

use eventhubs_store_core::{
    Checkpoint, ETag, Ownership, PartitionScope, normalize_checkpoint, validate_value,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The `format` of the header line.
pub const FORMAT_NAME: &str = "eventhubs-checkpoints";
/// The version this build writes and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

/// The header line (without newline).
pub fn header_line() -> String {
    json!({"format": FORMAT_NAME, "version": FORMAT_VERSION}).to_string()
}

fn scope_fields(scope: &PartitionScope, partition_id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("namespace".into(), scope.namespace().into());
    m.insert("event_hub".into(), scope.event_hub().into());
    m.insert("consumer_group".into(), scope.consumer_group().into());
    m.insert("partition_id".into(), partition_id.into());
    m
}

/// One checkpoint as a line (without newline).
pub fn checkpoint_line(cp: &Checkpoint) -> String {
    let mut m = Map::new();
    m.insert("kind".into(), "checkpoint".into());
    m.extend(scope_fields(&cp.scope, &cp.partition_id));
    m.insert("offset".into(), cp.offset.clone().into());
    m.insert("sequence_number".into(), cp.sequence_number.into());
    Value::Object(m).to_string()
}

/// One ownership record as a line (without newline).
pub fn ownership_line(o: &Ownership) -> String {
    let mut m = Map::new();
    m.insert("kind".into(), "ownership".into());
    m.extend(scope_fields(&o.scope, &o.partition_id));
    m.insert("owner_id".into(), o.owner_id.clone().into());
    m.insert(
        "etag".into(),
        o.etag.as_ref().map(|e| e.as_str().to_owned()).into(),
    );
    let time = o.last_modified_time.and_then(|t| t.format(&Rfc3339).ok());
    m.insert("last_modified_time".into(), time.into());
    Value::Object(m).to_string()
}

/// A bad line: its 1-based number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, naming the field and the rule.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The records of a valid file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParsedFile {
    /// Checkpoint records, in file order.
    pub checkpoints: Vec<Checkpoint>,
    /// Ownership records, in file order.
    pub ownership: Vec<Ownership>,
}

/// Parses and validates a whole file. Every line is checked; all errors are returned together.
///
/// # Errors
/// Every bad line (header, JSON, field, rule, duplicate record), in line order.
pub fn parse_jsonl(text: &str) -> Result<ParsedFile, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut parsed = ParsedFile::default();
    let mut seen: HashMap<(&'static str, PartitionScope, String), usize> = HashMap::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        None => {
            return Err(vec![LineError {
                line: 1,
                message: format!("empty file; expected the header {}", header_line()),
            }]);
        }
        Some((n, line)) => {
            if let Err(message) = check_header(line) {
                errors.push(LineError { line: n, message });
            }
        }
    }
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_record(line);
        let key = match &record {
            Ok(Parsed::Checkpoint(cp)) => ("checkpoint", cp.scope.clone(), cp.partition_id.clone()),
            Ok(Parsed::Ownership(o)) => ("ownership", o.scope.clone(), o.partition_id.clone()),
            Err(message) => {
                errors.push(LineError {
                    line: n,
                    message: message.clone(),
                });
                continue;
            }
        };
        if let Some(first) = seen.get(&key) {
            errors.push(LineError {
                line: n,
                message: format!(
                    "a second {} record of partition {:?} of {} (the first is on line {first})",
                    key.0, key.2, key.1
                ),
            });
            continue;
        }
        seen.insert(key, n);
        match record {
            Ok(Parsed::Checkpoint(cp)) => parsed.checkpoints.push(cp),
            Ok(Parsed::Ownership(o)) => parsed.ownership.push(o),
            Err(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

fn check_header(line: &str) -> Result<(), String> {
    let expected = header_line();
    let value: Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON header ({e}); expected {expected}"))?;
    if value.get("format").and_then(Value::as_str) != Some(FORMAT_NAME) {
        return Err(format!(
            "not an {FORMAT_NAME} file; the first line must be {expected}"
        ));
    }
    match value.get("version").and_then(Value::as_u64) {
        Some(v) if v == FORMAT_VERSION => Ok(()),
        Some(v) if v > FORMAT_VERSION => Err(format!(
            "format version {v} is newer than this ehstore reads ({FORMAT_VERSION}); upgrade ehstore"
        )),
        _ => Err(format!("the header needs \"version\":{FORMAT_VERSION}")),
    }
}

enum Parsed {
    Checkpoint(Checkpoint),
    Ownership(Ownership),
}

const CHECKPOINT_FIELDS: &[&str] = &[
    "kind",
    "namespace",
    "event_hub",
    "consumer_group",
    "partition_id",
    "offset",
    "sequence_number",
];
const OWNERSHIP_FIELDS: &[&str] = &[
    "kind",
    "namespace",
    "event_hub",
    "consumer_group",
    "partition_id",
    "owner_id",
    "etag",
    "last_modified_time",
];

fn parse_record(line: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("a record must be a JSON object".into());
    };
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let allowed = match kind {
        "checkpoint" => CHECKPOINT_FIELDS,
        "ownership" => OWNERSHIP_FIELDS,
        other => {
            return Err(format!(
                "field kind {other:?}: expected \"checkpoint\" or \"ownership\""
            ));
        }
    };
    if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?} in a {kind} record"));
    }
    let text = |field: &str| -> Result<String, String> {
        obj.get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("field {field} must be a string"))
    };
    let optional_text = |field: &str| -> Result<Option<String>, String> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("field {field} must be a string or null")),
        }
    };
    let scope = PartitionScope::new(text("namespace")?, text("event_hub")?, text("consumer_group")?)
        .map_err(|e| e.message().to_owned())?;
    let partition_id = text("partition_id")?;
    if kind == "checkpoint" {
        let sequence_number = match obj.get("sequence_number") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or("field sequence_number must be a 64-bit integer or null (rule C9)")?,
            ),
        };
        let cp = Checkpoint::new(scope, partition_id, optional_text("offset")?, sequence_number);
        let cp = normalize_checkpoint(&cp).map_err(|e| e.message().to_owned())?;
        return Ok(Parsed::Checkpoint(cp));
    }
    let owner_id = text("owner_id")?;
    validate_value("owner_id", &owner_id).map_err(|e| e.message().to_owned())?;
    let partition_id = eventhubs_store_core::normalize_name("partition_id", &partition_id)
        .map_err(|e| e.message().to_owned())?;
    let last_modified_time = optional_text("last_modified_time")?
        .map(|t| {
            OffsetDateTime::parse(&t, &Rfc3339)
                .map_err(|e| format!("field last_modified_time {t:?}: not an RFC 3339 time ({e})"))
        })
        .transpose()?;
    Ok(Parsed::Ownership(Ownership {
        scope,
        partition_id,
        owner_id,
        etag: optional_text("etag")?.map(ETag::new),
        last_modified_time,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PartitionScope {
        PartitionScope::new("ns.servicebus.windows.net", "hub", "$Default").unwrap()
    }

    #[test]
    fn records_round_trip() {
        let cp = Checkpoint::new(scope(), "0", Some("geo:7:abc".into()), Some(i64::MAX));
        let cp2 = Checkpoint::new(scope(), "1", None, Some(-3));
        let own = Ownership {
            etag: Some(ETag::new("e1")),
            last_modified_time: Some(
                OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap(),
            ),
            ..Ownership::new(scope(), "0", "p-1")
        };
        let text = [
            header_line(),
            checkpoint_line(&cp),
            checkpoint_line(&cp2),
            ownership_line(&own),
        ]
        .join("\n");
        let parsed = parse_jsonl(&text).unwrap();
        assert_eq!(parsed.checkpoints, vec![cp, cp2]);
        assert_eq!(parsed.ownership, vec![own]);
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let good = checkpoint_line(&Checkpoint::new(scope(), "0", Some("1".into()), Some(1)));
        let text = [
            header_line().as_str(),
            good.as_str(),
            r#"{"kind":"checkpoint","namespace":"a/b","event_hub":"h","consumer_group":"c","partition_id":"0","offset":"1"}"#,
            r#"{"kind":"checkpoint","namespace":"n","event_hub":"h","consumer_group":"c","partition_id":"0"}"#,
            "not json",
            r#"{"kind":"checkpoint","namespace":"n","event_hub":"h","consumer_group":"c","partition_id":"1","offset":"1","extra":1}"#,
            good.as_str(),
            r#"{"kind":"lease"}"#,
            r#"{"kind":"checkpoint","namespace":"n","event_hub":"h","consumer_group":"c","partition_id":"2","sequence_number":"7"}"#,
        ]
        .join("\n");
        let errors = parse_jsonl(&text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9], "{errors:?}");
        assert!(errors[0].message.contains("C11"), "{}", errors[0]);
        assert!(errors[1].message.contains("C9"), "{}", errors[1]);
        assert!(errors[3].message.contains("extra"), "{}", errors[3]);
        assert!(errors[4].message.contains("line 2"), "{}", errors[4]);
    }

    #[test]
    fn headers_are_checked() {
        assert!(parse_jsonl("").is_err());
        assert!(parse_jsonl(r#"{"format":"other","version":1}"#).is_err());
        let newer = parse_jsonl(r#"{"format":"eventhubs-checkpoints","version":2}"#).unwrap_err();
        assert!(newer[0].message.contains("newer"), "{newer:?}");
        assert_eq!(
            parse_jsonl(&format!("{}\n\n", header_line())).unwrap(),
            ParsedFile::default()
        );
    }
}
