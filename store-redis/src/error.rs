//! The one place where redis-rs errors become [`eventhubs_store_core::Error`]s.
//!
//! Server error codes are classified by a pure function ([`kind_for_code`]) so the mapping is
//! unit-tested offline; [`map_redis`] also classifies the client's own errors (I/O, dropped
//! connections, time-outs) as retryable [`ErrorKind::Unavailable`].

use eventhubs_store_core::{Error, ErrorKind};
use redis::RedisError;

/// The name stamped on every error of this crate.
pub(crate) const BACKEND: &str = "redis";

/// Classifies a Redis error code (the first word of an error reply).
///
/// - Retryable ([`ErrorKind::Unavailable`]): `BUSY` (a script is running), `LOADING` (the server
///   is loading its data set after a restart), `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`,
///   `READONLY` (a fail-over demoted the node), `MOVED`/`ASK` left over after the client's own
///   redirects, `OOM` (memory may be freed), `NOSCRIPT` left over after the client's automatic
///   `SCRIPT LOAD` (the server was flushed between the two; the next call loads it again).
/// - [`ErrorKind::Unauthorized`]: `NOAUTH`, `WRONGPASS`, `NOPERM`.
/// - Anything else (`ERR`, `WRONGTYPE`, `CROSSSLOT`, errors raised by our scripts):
///   [`ErrorKind::Backend`].
pub(crate) fn kind_for_code(code: &str) -> ErrorKind {
    match code {
        "BUSY" | "LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "MOVED" | "ASK"
        | "OOM" | "NOSCRIPT" => ErrorKind::Unavailable,
        "NOAUTH" | "WRONGPASS" | "NOPERM" => ErrorKind::Unauthorized,
        _ => ErrorKind::Backend,
    }
}

/// Classifies a redis-rs error: server codes via [`kind_for_code`], I/O and connection-level
/// failures as `Unavailable`, refused credentials as `Unauthorized`, bad client settings as
/// `InvalidInput`, unexpected replies as `Backend`.
pub(crate) fn kind_of(err: &RedisError) -> ErrorKind {
    if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() || err.is_timeout() {
        return ErrorKind::Unavailable;
    }
    match err.kind() {
        redis::ErrorKind::AuthenticationFailed => ErrorKind::Unauthorized,
        redis::ErrorKind::InvalidClientConfig => ErrorKind::InvalidInput,
        redis::ErrorKind::ClusterConnectionNotFound => ErrorKind::Unavailable,
        _ => err.code().map_or(ErrorKind::Backend, kind_for_code),
    }
}

/// Converts a redis-rs error raised while doing `operation` (e.g. `"claim_ownership"`).
pub(crate) fn map_redis(err: RedisError, operation: &str) -> Error {
    let kind = kind_of(&err);
    let message = match (kind, err.code()) {
        (ErrorKind::Unavailable, Some(code)) => {
            format!("{operation} failed: the server answered {code}; retry")
        }
        (ErrorKind::Unavailable, None) => format!("{operation} failed: the server could not be reached"),
        (_, Some(code)) => format!("{operation} failed: the server answered {code}"),
        (_, None) => format!("{operation} failed"),
    };
    Error::new(kind, message).with_backend(BACKEND).with_source(err)
}

/// A stored value that does not decode (written by hand or another tool).
pub(crate) fn corrupt(what: &str, key: &str, field: &str) -> Error {
    Error::backend(format!(
        "corrupt {what} record in the store: key {key:?}, field {:?}",
        eventhubs_store_core::quote_shortened(field)
    ))
    .with_backend(BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes_map_to_unavailable() {
        for code in [
            "BUSY",
            "LOADING",
            "TRYAGAIN",
            "CLUSTERDOWN",
            "MASTERDOWN",
            "READONLY",
            "MOVED",
            "ASK",
            "OOM",
            "NOSCRIPT",
        ] {
            assert_eq!(kind_for_code(code), ErrorKind::Unavailable, "{code}");
        }
    }

    #[test]
    fn auth_and_other_codes() {
        for code in ["NOAUTH", "WRONGPASS", "NOPERM"] {
            assert_eq!(kind_for_code(code), ErrorKind::Unauthorized, "{code}");
        }
        for code in ["ERR", "WRONGTYPE", "CROSSSLOT", "CORRUPT", ""] {
            assert_eq!(kind_for_code(code), ErrorKind::Backend, "{code}");
        }
    }

    #[test]
    fn client_errors_map_by_kind() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let e = map_redis(refused, "list_ownership");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert_eq!(e.backend_name(), Some("redis"));
        assert!(e.to_string().contains("list_ownership"), "{e}");

        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(kind_of(&reset), ErrorKind::Unavailable);
        let timeout = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(kind_of(&timeout), ErrorKind::Unavailable);

        let auth = RedisError::from((redis::ErrorKind::AuthenticationFailed, "bad password"));
        assert_eq!(kind_of(&auth), ErrorKind::Unauthorized);
        let config = RedisError::from((redis::ErrorKind::InvalidClientConfig, "bad url"));
        assert_eq!(kind_of(&config), ErrorKind::InvalidInput);
        let typ = RedisError::from((redis::ErrorKind::UnexpectedReturnType, "not a string"));
        assert_eq!(kind_of(&typ), ErrorKind::Backend);
        let server = RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::TryAgain),
            "multi-key request during resharding",
        ));
        assert_eq!(kind_of(&server), ErrorKind::Unavailable);
        let loading = RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading),
            "loading the dataset",
        ));
        assert_eq!(kind_of(&loading), ErrorKind::Unavailable);
        let noscript = RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::NoScript),
            "no matching script",
        ));
        assert_eq!(kind_of(&noscript), ErrorKind::Unavailable);
    }
}
