//! Errors the emulator's public API returns.

/// What went wrong, for callers that want to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid (a hub name, a partition count, a consumer group…).
    InvalidConfig,
    /// The listener could not be bound or accept failed.
    Io,
}

/// An error from building or starting the emulator.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<std::io::Error>,
}

impl Error {
    /// An invalid-configuration error naming the field and the rule broken.
    pub fn invalid_config(field: &str, message: impl std::fmt::Display) -> Self {
        Self {
            kind: ErrorKind::InvalidConfig,
            message: format!("invalid emulator configuration: {field}: {message}"),
            source: None,
        }
    }

    /// An I/O error with what the emulator was doing.
    pub fn io(doing: impl std::fmt::Display, source: std::io::Error) -> Self {
        Self {
            kind: ErrorKind::Io,
            message: format!("{doing}: {source}"),
            source: Some(source),
        }
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}
