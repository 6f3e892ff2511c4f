//! The `apache.org:selector-filter:string` filter the SDKs put on a receiver's source.

use serde_amqp::descriptor::Descriptor;
use serde_amqp::primitives::OrderedMap;
use serde_amqp::value::Value;

use crate::partition_log::StartPosition;

/// The filter's symbolic descriptor (and the key the SDKs use).
pub const SELECTOR_FILTER: &str = "apache.org:selector-filter:string";
/// The filter's numeric descriptor as the Rust SDK sends it.
pub const SELECTOR_FILTER_CODE_RUST: u64 = 0x0000_468C_0000_0004;
/// The filter's numeric descriptor as the .NET SDK sends it.
pub const SELECTOR_FILTER_CODE_DOTNET: u64 = 0x0000_0137_0000_000A;

/// Finds the selector expression in a source's filter set, whichever descriptor form it uses.
pub fn selector_expression(filters: &OrderedMap<serde_amqp::primitives::Symbol, Value>) -> Option<String> {
    for (key, value) in filters {
        match value {
            Value::Described(d) => {
                let known = match &d.descriptor {
                    Descriptor::Name(n) => n.0 == SELECTOR_FILTER,
                    Descriptor::Code(c) => {
                        *c == SELECTOR_FILTER_CODE_RUST || *c == SELECTOR_FILTER_CODE_DOTNET
                    }
                };
                if (known || key.0 == SELECTOR_FILTER)
                    && let Value::String(s) = &d.value
                {
                    return Some(s.clone());
                }
            }
            Value::String(s) if key.0 == SELECTOR_FILTER => return Some(s.clone()),
            _ => {}
        }
    }
    None
}

/// Parses `amqp.annotation.x-opt-offset > '123'` and its siblings.
pub fn parse_selector(expression: &str) -> Result<StartPosition, String> {
    let bad = || format!("unsupported selector expression {expression:?}");
    let rest = expression.trim();
    let rest = rest.strip_prefix("amqp.annotation.").ok_or_else(bad)?;
    let (field, rest) = rest.split_once(char::is_whitespace).ok_or_else(bad)?;
    let rest = rest.trim_start();
    let (inclusive, rest) = if let Some(r) = rest.strip_prefix(">=") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix('>') {
        (false, r)
    } else {
        return Err(bad());
    };
    let value = rest.trim().trim_matches('\'').trim_matches('"').trim();
    match field {
        "x-opt-offset" => match value {
            "-1" => Ok(StartPosition::Earliest),
            "@latest" => Ok(StartPosition::Latest),
            v => v
                .parse::<u64>()
                .map(|offset| StartPosition::Offset { offset, inclusive })
                .map_err(|_| bad()),
        },
        "x-opt-sequence-number" => value
            .parse::<i64>()
            .map(|sequence_number| StartPosition::Sequence {
                sequence_number,
                inclusive,
            })
            .map_err(|_| bad()),
        "x-opt-enqueued-time" => value
            .parse::<i64>()
            .map(|ms| StartPosition::EnqueuedTime { ms, inclusive })
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_amqp::described::Described;
    use serde_amqp::primitives::Symbol;

    #[test]
    fn expressions() {
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset > '-1'"),
            Ok(StartPosition::Earliest)
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset > @latest"),
            Ok(StartPosition::Latest)
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-offset >= '120'"),
            Ok(StartPosition::Offset {
                offset: 120,
                inclusive: true
            })
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-sequence-number > 5"),
            Ok(StartPosition::Sequence {
                sequence_number: 5,
                inclusive: false
            })
        );
        assert_eq!(
            parse_selector("amqp.annotation.x-opt-enqueued-time >= '1700000000000'"),
            Ok(StartPosition::EnqueuedTime {
                ms: 1_700_000_000_000,
                inclusive: true
            })
        );
        for bad in [
            "",
            "x-opt-offset > 1",
            "amqp.annotation.x-opt-offset < 1",
            "amqp.annotation.x > 1",
            "amqp.annotation.x-opt-offset > 'abc'",
        ] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_descriptor_form() {
        for descriptor in [
            Descriptor::Name(Symbol::from(SELECTOR_FILTER)),
            Descriptor::Code(SELECTOR_FILTER_CODE_RUST),
            Descriptor::Code(SELECTOR_FILTER_CODE_DOTNET),
        ] {
            let mut filters = OrderedMap::new();
            filters.insert(
                Symbol::from("some-key"),
                Value::Described(Box::new(Described {
                    descriptor,
                    value: Value::String("amqp.annotation.x-opt-offset > '-1'".into()),
                })),
            );
            assert!(selector_expression(&filters).is_some());
        }
        assert_eq!(selector_expression(&OrderedMap::new()), None);
    }
}
