//! A ScaledObject's `scalerMetadata`, read the way KEDA's own scalers read theirs: secrets never
//! travel in metadata, only the names of the scaler's environment variables that hold them.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `storeUrlFromEnv` | required | env var of the scaler holding the checkpoint store URL |
//! | `connectionFromEnv` | required | env var holding the Event Hubs connection string |
//! | `consumerGroup` | `$Default` | the consumer group |
//! | `eventHubName` | the connection string's `EntityPath` | the event hub |
//! | `unprocessedEventThreshold` | 64 | target unprocessed events per replica |
//! | `activationUnprocessedEventThreshold` | 0 | active above this many unprocessed events |

use std::collections::HashMap;

use tonic::Status;

/// KEDA's default target of unprocessed events per replica.
pub const DEFAULT_THRESHOLD: i64 = 64;

/// What one ScaledObject asks for, with its secrets read from the environment.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ScalerConfig {
    /// The checkpoint store URL (a secret: never printed).
    pub store_url: String,
    /// The Event Hubs connection string (a secret: never printed).
    pub connection_string: String,
    /// The consumer group.
    pub consumer_group: String,
    /// The event hub, when the connection string has no `EntityPath`.
    pub event_hub: Option<String>,
    /// Target unprocessed events per replica.
    pub threshold: i64,
    /// Active above this many unprocessed events.
    pub activation: i64,
}

impl std::fmt::Debug for ScalerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScalerConfig")
            .field("consumer_group", &self.consumer_group)
            .field("event_hub", &self.event_hub)
            .field("threshold", &self.threshold)
            .field("activation", &self.activation)
            .finish_non_exhaustive()
    }
}

/// Reads `metadata`, looking secrets up with `env`.
///
/// # Errors
/// `InvalidArgument` naming the field and the problem.
pub fn parse(
    metadata: &HashMap<String, String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ScalerConfig, Status> {
    let from_env = |key: &str| -> Result<String, Status> {
        let Some(var) = metadata.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
            return Err(Status::invalid_argument(format!(
                "scalerMetadata.{key} is missing: name the scaler's environment variable that holds it"
            )));
        };
        match env(var) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(Status::invalid_argument(format!(
                "scalerMetadata.{key}: the environment variable {var} is not set on the scaler"
            ))),
        }
    };
    let number = |key: &str, default: i64, min: i64| -> Result<i64, Status> {
        match metadata.get(key) {
            None => Ok(default),
            Some(text) => match text.trim().parse::<i64>() {
                Ok(n) if n >= min => Ok(n),
                _ => Err(Status::invalid_argument(format!(
                    "scalerMetadata.{key}: {text:?} is not a whole number of at least {min}"
                ))),
            },
        }
    };
    Ok(ScalerConfig {
        store_url: from_env("storeUrlFromEnv")?,
        connection_string: from_env("connectionFromEnv")?,
        consumer_group: metadata
            .get("consumerGroup")
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| "$Default".to_owned()),
        event_hub: metadata
            .get("eventHubName")
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty()),
        threshold: number("unprocessedEventThreshold", DEFAULT_THRESHOLD, 1)?,
        activation: number("activationUnprocessedEventThreshold", 0, 0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn env(var: &str) -> Option<String> {
        match var {
            "STORE" => Some("sqlite:x.db".into()),
            "HUB" => Some("Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=s".into()),
            _ => None,
        }
    }

    #[test]
    fn defaults_are_keda_s_and_secrets_come_from_the_environment() {
        let c = parse(
            &metadata(&[("storeUrlFromEnv", "STORE"), ("connectionFromEnv", "HUB")]),
            env,
        )
        .unwrap();
        assert_eq!((c.threshold, c.activation), (64, 0));
        assert_eq!(c.consumer_group, "$Default");
        assert_eq!(c.store_url, "sqlite:x.db");
        assert!(!format!("{c:?}").contains("SharedAccessKey"), "{c:?}");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (vec![("connectionFromEnv", "HUB")], "storeUrlFromEnv is missing"),
            (
                vec![("storeUrlFromEnv", "NOPE"), ("connectionFromEnv", "HUB")],
                "NOPE is not set",
            ),
            (
                vec![
                    ("storeUrlFromEnv", "STORE"),
                    ("connectionFromEnv", "HUB"),
                    ("unprocessedEventThreshold", "0"),
                ],
                "unprocessedEventThreshold",
            ),
            (
                vec![
                    ("storeUrlFromEnv", "STORE"),
                    ("connectionFromEnv", "HUB"),
                    ("activationUnprocessedEventThreshold", "lots"),
                ],
                "activationUnprocessedEventThreshold",
            ),
        ];
        for (pairs, says) in cases {
            let e = parse(&metadata(&pairs), env).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().contains(says), "{says}: {}", e.message());
        }
    }
}
