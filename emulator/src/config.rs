//! Emulator configuration: hubs, partitions, consumer groups, retention, the SAS key.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;

/// The SAS key name the connection string carries, like Microsoft's emulator.
pub const DEFAULT_SAS_KEY_NAME: &str = "RootManageSharedAccessKey";
/// The SAS key value the connection string carries, like Microsoft's emulator.
pub const DEFAULT_SAS_KEY: &str = "SAS_KEY_VALUE";
/// The consumer group every hub has.
pub const DEFAULT_CONSUMER_GROUP: &str = "$default";
/// The largest partition count a hub may have (the service's limit for dedicated tiers).
pub const MAX_PARTITIONS: usize = 1024;

/// How much each partition keeps. The oldest events are dropped first once either limit is
/// exceeded, so memory stays bounded however long the emulator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The most events one partition keeps.
    pub max_events: usize,
    /// The most message bytes one partition keeps.
    pub max_bytes: usize,
}

impl Default for Retention {
    /// 100 000 events or 64 MiB per partition, whichever is reached first.
    fn default() -> Self {
        Self {
            max_events: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// One event hub: its partition count and consumer groups (`$default` is always present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Number of partitions, ids "0".."n-1".
    pub partitions: usize,
    /// Consumer group names, always including `$default`.
    pub consumer_groups: Vec<String>,
}

/// The SAS key that signs tokens the emulator accepts. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SasKey {
    /// The key (policy) name, e.g. `RootManageSharedAccessKey`.
    pub name: String,
    /// The key value used as the HMAC-SHA256 secret.
    pub key: String,
}

impl fmt::Debug for SasKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Default for SasKey {
    fn default() -> Self {
        Self {
            name: DEFAULT_SAS_KEY_NAME.to_owned(),
            key: DEFAULT_SAS_KEY.to_owned(),
        }
    }
}

/// Everything the emulator needs to start.
#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    /// Hubs by name (names are case-insensitive and stored lower-cased, as the service does).
    pub hubs: BTreeMap<String, HubConfig>,
    /// Per-partition retention.
    pub retention: Retention,
    /// The key that signs accepted SAS tokens.
    pub sas_key: SasKey,
    /// Most simultaneous connections; further ones are closed at once.
    pub max_connections: usize,
    /// Links and `$management` requests need no put-token (off by default: the service, and so
    /// the emulator, refuses them with `amqp:unauthorized-access`).
    pub open_access: bool,
    /// `$cbs` put-tokens that are JWTs (Entra ID) are accepted after a check of their shape and
    /// expiry only: their signature is not verified (the emulator has no identity provider).
    /// Off by default, when a JWT is refused with 401 as the service refuses a token it cannot
    /// verify; the emulator logs a warning at start when it is on.
    pub accept_unverified_jwt: bool,
}

impl EmulatorConfig {
    /// What a JWT meets: refused, or accepted unverified ([`EmulatorConfig::accept_unverified_jwt`]).
    pub fn jwt_policy(&self) -> crate::cbs::JwtPolicy {
        if self.accept_unverified_jwt {
            crate::cbs::JwtPolicy::AcceptUnverified
        } else {
            crate::cbs::JwtPolicy::Refuse
        }
    }
}

/// Checks an entity name (hub or consumer group) the way the service does: 1–256 characters,
/// letters, digits, `.`, `_`, `-`, and `$` only as the first character (`$default`).
pub fn validate_entity_name(field: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 256 {
        return Err(Error::invalid_config(
            field,
            format!("{name:?} must be 1 to 256 characters"),
        ));
    }
    let valid = name
        .char_indices()
        .all(|(i, c)| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || (c == '$' && i == 0));
    if !valid {
        return Err(Error::invalid_config(
            field,
            format!("{name:?} may hold only letters, digits, '.', '_', '-' (and a leading '$')"),
        ));
    }
    Ok(())
}

/// Parses a `--hub` command-line value: `name:partitions[:group1,group2]`.
pub fn parse_hub_spec(spec: &str) -> Result<(String, HubConfig), Error> {
    let mut parts = spec.splitn(3, ':');
    let name = parts.next().unwrap_or_default().trim();
    validate_entity_name("hub name", name)?;
    let partitions = match parts.next() {
        Some(count) => count.trim().parse::<usize>().map_err(|_| {
            Error::invalid_config("hub partitions", format!("{count:?} in {spec:?} is not a number"))
        })?,
        None => {
            return Err(Error::invalid_config(
                "hub",
                format!("{spec:?} must look like name:partitions[:group1,group2]"),
            ));
        }
    };
    validate_partition_count(name, partitions)?;
    let mut groups = vec![DEFAULT_CONSUMER_GROUP.to_owned()];
    if let Some(list) = parts.next() {
        for group in list.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            validate_entity_name("consumer group", group)?;
            let group = group.to_ascii_lowercase();
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
    }
    Ok((
        name.to_ascii_lowercase(),
        HubConfig {
            partitions,
            consumer_groups: groups,
        },
    ))
}

/// A hub has 1..=1024 partitions.
pub fn validate_partition_count(hub: &str, partitions: usize) -> Result<(), Error> {
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(Error::invalid_config(
            "hub partitions",
            format!("hub {hub:?} must have 1 to {MAX_PARTITIONS} partitions, got {partitions}"),
        ));
    }
    Ok(())
}

/// The connection string for an emulator listening on `port`, in the form Microsoft's emulator
/// documents (`UseDevelopmentEmulator=true` makes the SDKs use plain AMQP on that port). With
/// `tls` it has no `UseDevelopmentEmulator`: clients then speak `amqps` to the port.
pub fn connection_string(port: u16, key: &SasKey, hub: Option<&str>, tls: bool) -> String {
    let mut s = format!(
        "Endpoint=sb://localhost:{port};SharedAccessKeyName={};SharedAccessKey={}",
        key.name, key.key
    );
    if !tls {
        s.push_str(";UseDevelopmentEmulator=true");
    }
    if let Some(hub) = hub {
        s.push_str(";EntityPath=");
        s.push_str(hub);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn hub_spec_with_groups() {
        let (name, hub) = parse_hub_spec("Orders:4:cg1,CG2").unwrap();
        assert_eq!(name, "orders");
        assert_eq!(hub.partitions, 4);
        assert_eq!(hub.consumer_groups, vec!["$default", "cg1", "cg2"]);
    }

    #[test]
    fn hub_spec_errors_name_the_field() {
        for bad in [
            "orders",
            "orders:x",
            "orders:0",
            "or ders:2",
            "orders:2:bad group",
            ":2",
        ] {
            let err = parse_hub_spec(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert!(
                err.to_string().contains("hub") || err.to_string().contains("group"),
                "{err}"
            );
        }
    }

    #[test]
    fn connection_string_format() {
        let s = connection_string(5672, &SasKey::default(), Some("orders"), false);
        assert_eq!(
            s,
            "Endpoint=sb://localhost:5672;SharedAccessKeyName=RootManageSharedAccessKey;\
             SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;EntityPath=orders"
        );
    }

    #[test]
    fn sas_key_debug_redacts() {
        let key = SasKey {
            name: "n".into(),
            key: "secret-value".into(),
        };
        assert!(!format!("{key:?}").contains("secret-value"));
    }
}
