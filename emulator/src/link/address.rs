//! Entity addresses as the SDKs send them, with or without scheme and host.

/// What a link address names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// The claims-based-security node.
    Cbs,
    /// The management node.
    Management,
    /// A hub (publish with round robin or partition key).
    Hub {
        /// Hub name as given.
        hub: String,
    },
    /// One partition of a hub (publish).
    Partition {
        /// Hub name as given.
        hub: String,
        /// Partition id as given.
        partition: String,
    },
    /// A consumer group's view of a partition (receive).
    ConsumerPartition {
        /// Hub name as given.
        hub: String,
        /// Consumer group as given.
        group: String,
        /// Partition id as given.
        partition: String,
    },
}

/// Parses an address; `None` when it names nothing the emulator serves.
pub fn parse_address(raw: &str) -> Option<Address> {
    let path = match raw.find("://") {
        // scheme://host[:port]/path
        Some(i) => {
            let after = &raw[i + 3..];
            after.find('/').map_or("", |j| &after[j..])
        }
        None => raw,
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [node] if node.eq_ignore_ascii_case("$cbs") => Some(Address::Cbs),
        [node] if node.eq_ignore_ascii_case("$management") => Some(Address::Management),
        [hub] if !hub.is_empty() && !hub.starts_with('$') => Some(Address::Hub {
            hub: (*hub).to_owned(),
        }),
        [hub, p, partition] if p.eq_ignore_ascii_case("partitions") => Some(Address::Partition {
            hub: (*hub).to_owned(),
            partition: (*partition).to_owned(),
        }),
        [hub, cg, group, p, partition]
            if cg.eq_ignore_ascii_case("consumergroups") && p.eq_ignore_ascii_case("partitions") =>
        {
            Some(Address::ConsumerPartition {
                hub: (*hub).to_owned(),
                group: (*group).to_owned(),
                partition: (*partition).to_owned(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_every_form() {
        assert_eq!(parse_address("$cbs"), Some(Address::Cbs));
        assert_eq!(parse_address("$management"), Some(Address::Management));
        assert_eq!(
            parse_address("orders"),
            Some(Address::Hub { hub: "orders".into() })
        );
        assert_eq!(
            parse_address("amqps://localhost:5671/orders/Partitions/2"),
            Some(Address::Partition {
                hub: "orders".into(),
                partition: "2".into()
            })
        );
        let consumer = Some(Address::ConsumerPartition {
            hub: "orders".into(),
            group: "$default".into(),
            partition: "0".into(),
        });
        assert_eq!(
            parse_address("orders/ConsumerGroups/$default/Partitions/0"),
            consumer
        );
        assert_eq!(
            parse_address("/orders/consumergroups/$default/partitions/0"),
            consumer
        );
        assert_eq!(
            parse_address("sb://localhost/orders/ConsumerGroups/$default/Partitions/0"),
            consumer
        );
        assert_eq!(parse_address(""), None);
        assert_eq!(parse_address("a/b"), None);
        assert_eq!(parse_address("$other"), None);
    }
}
