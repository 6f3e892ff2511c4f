//! The key layout.
//!
//! ```text
//! {prefix}:{<ns>/<hub>/<group>}:ownership    hash  partition id -> ownership record,
//!                                                  ""           -> the scope clock (latest stamp)
//! {prefix}:{<ns>/<hub>/<group>}:checkpoint   hash  partition id -> checkpoint record
//! {prefix}:scopes                            set   "<ns>/<hub>/<group>" of every scope written
//! ```
//!
//! All keys of one (namespace, hub, group) share the hash tag `{<ns>/<hub>/<group>}`, so they sit
//! in one Redis Cluster slot and one script may touch both hashes (C13). Names are percent-encoded
//! for `%`, `{` and `}` inside the tag, so a name holding a brace can neither end the tag early nor
//! make it empty (an empty tag would spread one scope over several slots). `/` cannot occur in a
//! name (C11), so the tag identifies the scope exactly (C2: `a` vs `ab` vs `a/b`). Listing reads
//! one hash per scope, never `KEYS`/`SCAN` over the keyspace.

use eventhubs_store_core::{Error, PartitionScope, Result};

use crate::error::BACKEND;

/// The key prefix unless [`crate::RedisOptions::prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "eventhubs";

/// The two hash keys of one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScopeKeys {
    pub(crate) ownership: String,
    pub(crate) checkpoint: String,
    /// Checkpoint writes applied in the last minute (ids by time), so a resend is not applied
    /// twice; expires by itself.
    pub(crate) applied: String,
}

/// Builds the keys of a store with one prefix.
#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    pub(crate) fn new(prefix: String) -> Self {
        KeyLayout { prefix }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The ownership and checkpoint hashes of `scope`.
    pub(crate) fn scope_keys(&self, scope: &PartitionScope) -> ScopeKeys {
        let tag = format!(
            "{}/{}/{}",
            encode_tag_part(scope.namespace()),
            encode_tag_part(scope.event_hub()),
            encode_tag_part(scope.consumer_group())
        );
        ScopeKeys {
            ownership: format!("{}:{{{tag}}}:ownership", self.prefix),
            checkpoint: format!("{}:{{{tag}}}:checkpoint", self.prefix),
            applied: format!("{}:{{{tag}}}:applied", self.prefix),
        }
    }

    /// The registry of scopes (for `list_scopes`).
    pub(crate) fn scopes_key(&self) -> String {
        format!("{}:scopes", self.prefix)
    }
}

fn encode_tag_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out
}

/// The member of the scope registry for `scope`: the three names joined by `/` (no name holds
/// `/`, C11).
pub(crate) fn registry_member(scope: &PartitionScope) -> String {
    format!(
        "{}/{}/{}",
        scope.namespace(),
        scope.event_hub(),
        scope.consumer_group()
    )
}

/// Reads a registry member back.
pub(crate) fn parse_registry_member(member: &str) -> Result<PartitionScope> {
    let mut parts = member.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(ns), Some(hub), Some(group), None) => PartitionScope::new(ns, hub, group),
        _ => Err(Error::backend(format!(
            "corrupt scope registry member {}",
            eventhubs_store_core::quote_shortened(member)
        ))
        .with_backend(BACKEND)),
    }
}

/// Checks a key prefix: 1–128 bytes, no braces (they would start a hash tag), no white space or
/// control characters, no `:` at the end.
pub fn validate_prefix(prefix: &str) -> Result<String> {
    let bad = |why: &str| Err(Error::invalid_input("prefix", prefix, why).with_backend(BACKEND));
    if prefix.is_empty() || prefix.len() > 128 {
        return bad("must be 1 to 128 bytes long");
    }
    if prefix.contains(['{', '}']) {
        return bad("must not contain '{' or '}' (they delimit the cluster hash tag)");
    }
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain white space or control characters");
    }
    if prefix.ends_with(':') {
        return bad("must not end with ':' (the store adds the separator)");
    }
    Ok(prefix.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis Cluster's rule: the tag is what lies between the first `{` and the first `}` after
    /// it, if that is not empty; otherwise the whole key is hashed.
    fn hash_tag(key: &str) -> &str {
        if let Some(open) = key.find('{')
            && let Some(len) = key[open + 1..].find('}')
            && len > 0
        {
            return &key[open + 1..open + 1 + len];
        }
        key
    }

    fn layout() -> KeyLayout {
        KeyLayout::new("eh".into())
    }

    #[test]
    fn both_hashes_of_a_scope_share_one_non_empty_tag_even_with_braces_in_names() {
        for (ns, hub, group) in [
            ("ns", "hub", "$default"),
            ("}", "{", "}{"),
            ("a}b", "{x}", "%7D"),
            ("ns", "hub", "}"),
        ] {
            let scope = PartitionScope::new(ns, hub, group).unwrap();
            let keys = layout().scope_keys(&scope);
            let tag = hash_tag(&keys.ownership);
            assert_eq!(tag, hash_tag(&keys.checkpoint), "{keys:?}");
            assert!(!tag.contains(['{', '}']), "{keys:?}");
            assert_ne!(tag, keys.ownership, "the tag must not be empty: {keys:?}");
        }
    }

    #[test]
    fn c2_distinct_scopes_get_distinct_keys() {
        let scopes = [
            ("a", "b", "c"),
            ("a", "b", "cc"),
            ("a", "bc", "c"),
            ("ab", "b", "c"),
            ("a", "b", "%7D"),
            ("a", "b", "}"),
            ("a", "b", "%"),
            ("a", "b", "%25"),
        ];
        let mut seen = std::collections::HashSet::new();
        for (ns, hub, group) in scopes {
            let keys = layout().scope_keys(&PartitionScope::new(ns, hub, group).unwrap());
            assert!(seen.insert(keys.ownership.clone()), "{keys:?}");
            assert!(seen.insert(keys.checkpoint.clone()), "{keys:?}");
        }
    }

    #[test]
    fn registry_members_round_trip() {
        let scope = PartitionScope::new("NS.x", "h{}", "$Default").unwrap();
        assert_eq!(parse_registry_member(&registry_member(&scope)).unwrap(), scope);
        assert!(parse_registry_member("a/b").is_err());
        assert!(parse_registry_member("a/b/c/d").is_err());
        assert!(parse_registry_member("a//c").is_err());
    }

    #[test]
    fn prefixes_are_validated() {
        assert_eq!(validate_prefix("eventhubs").unwrap(), "eventhubs");
        assert_eq!(validate_prefix("app:eh").unwrap(), "app:eh");
        for bad in ["", "a{b", "a}b", "a b", "a\nb", "eh:", &"x".repeat(129)] {
            let e = validate_prefix(bad).unwrap_err();
            assert!(e.to_string().contains("prefix"), "{e}");
        }
    }
}
