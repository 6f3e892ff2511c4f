//! The one error type every store returns, with a kind callers can match on.

use std::fmt;

/// A boxed error from a backend, kept as the [`Error`]'s source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// Backends map their own status and error codes to these kinds in one place each (see the
/// `status`/`error` module of every backend crate); where backends differ, their docs say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input breaks a rule of the contract (C9, C11): empty or unstorable names, path
    /// separators, oversized values, a checkpoint without offset and sequence number, a claim
    /// batch naming one partition twice. Nothing was written.
    InvalidInput,
    /// A fenced checkpoint (C13) was refused because the required owner does not hold the
    /// partition. Nothing was written.
    OwnershipLost,
    /// The store could not be reached or answered "try later" (connection refused or reset,
    /// timeouts, serialization failures, throttling). Retrying may help.
    Unavailable,
    /// The store does not offer this operation (see [`crate::Capabilities`]).
    Unsupported,
    /// A container, database, schema or directory the store needs does not exist.
    NotFound,
    /// The credentials were refused.
    Unauthorized,
    /// Any other failure of the backend (corrupt record, unexpected status, bug).
    Backend,
}

impl ErrorKind {
    /// A short, stable, lower-case name for the kind (used in `Display` and in reports).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::OwnershipLost => "ownership lost",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::NotFound => "not found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Backend => "backend error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a checkpoint store: a [`kind`](Error::kind), a message that names the field,
/// the value (secrets redacted) and the rule, the backend that produced it and the source.
///
/// Messages never contain secrets: backends redact account keys, SAS signatures and passwords
/// before building an `Error`.
#[derive(thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    backend: Option<&'static str>,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            backend: None,
            message: message.into(),
            source: None,
        }
    }

    /// Bad input: names the `field`, shows the offending `value` (shortened) and says which
    /// `rule` it breaks. Nothing was written.
    pub fn invalid_input(field: &str, value: &str, rule: impl fmt::Display) -> Self {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{field} {}: {rule}", quote_shortened(value)),
        )
    }

    /// The store could not be reached or asked to retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// Any other backend failure.
    pub fn backend(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Backend, message)
    }

    /// The store does not offer `operation`.
    pub fn unsupported(operation: &str) -> Self {
        Error::new(
            ErrorKind::Unsupported,
            format!("{operation} is not supported by this store"),
        )
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Stamps the name of the backend that produced the error (`"sqlite"`, `"redis"`, …).
    pub fn with_backend(mut self, backend: &'static str) -> Self {
        self.backend = Some(backend);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The backend that produced the error, if stamped.
    pub fn backend_name(&self) -> Option<&'static str> {
        self.backend
    }

    /// The message, without kind and backend.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying the same call may succeed (only [`ErrorKind::Unavailable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(backend) = self.backend {
            write!(f, "[{backend}] ")?;
        }
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("backend", &self.backend)
            .field("message", &self.message)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

/// Quotes a value for an error message, escaping control characters and shortening long values
/// so a hostile 1 MiB name does not become a 1 MiB log line.
pub fn quote_shortened(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut out = String::from("\"");
    for (i, c) in value.chars().enumerate() {
        if i == MAX_CHARS {
            out.push_str(&format!("…\" ({} bytes)", value.len()));
            return out;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_backend_kind_message_and_source() {
        let e = Error::unavailable("connection refused")
            .with_backend("redis")
            .with_source(std::io::Error::other("boom"));
        assert_eq!(e.to_string(), "[redis] unavailable: connection refused: boom");
        assert!(e.is_retryable());
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn invalid_input_quotes_and_shortens_values() {
        let long = "x".repeat(1000);
        let e = Error::invalid_input("partition_id", &long, "longer than 256 bytes (rule C11)");
        assert!(e.to_string().len() < 200, "{e}");
        assert!(e.to_string().contains("(1000 bytes)"));
        let e = Error::invalid_input("partition_id", "a\0b", "contains a control character (rule C11)");
        assert!(e.to_string().contains("a\\0b"), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.is_retryable());
    }
}
