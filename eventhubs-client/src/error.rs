//! The client's error: a kind the caller can match, a message, and the source.

use std::fmt;

/// What went wrong, coarsely enough to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input (a malformed connection string, an empty name): fix the call.
    InvalidInput,
    /// The service refused the credentials or the token (`amqp:unauthorized-access`, CBS 401).
    Unauthorized,
    /// The event hub, consumer group or partition does not exist.
    NotFound,
    /// A receiver with an equal or higher owner level took the partition, or one holds it
    /// (`amqp:link:stolen`): another processor owns it now.
    OwnerLevelConflict,
    /// A service quota was hit, e.g. more than five receivers on one partition of a group.
    QuotaExceeded,
    /// The connection, session or link failed, or the service is busy: retry.
    Unavailable,
    /// The checkpoint store failed (its own kind is in the source).
    Store,
    /// The peer broke the protocol or answered something this client cannot read.
    Protocol,
    /// The client, receiver or processor was closed.
    Closed,
}

impl ErrorKind {
    /// A short name, e.g. `unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::NotFound => "not found",
            ErrorKind::OwnerLevelConflict => "owner level conflict",
            ErrorKind::QuotaExceeded => "quota exceeded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Store => "checkpoint store",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Closed => "closed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The boxed source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An Event Hubs client error. Never carries a key, a SAS token or a signature.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// The connection under the failed step is broken (transport failure, timeout): the
    /// client replaces it before the next try. A link-level failure keeps the connection.
    connection_failure: bool,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            connection_failure: false,
            source: None,
        }
    }

    /// Marks the connection under the failed step as broken.
    pub(crate) fn connection_failure(mut self) -> Self {
        self.connection_failure = true;
        self
    }

    /// Whether the connection under the failed step is broken (the client replaces it).
    pub(crate) fn is_connection_failure(&self) -> bool {
        self.connection_failure
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Unavailable)
    }
}

impl From<eventhubs_store_core::Error> for Error {
    fn from(e: eventhubs_store_core::Error) -> Self {
        let kind = match e.kind() {
            // A fenced checkpoint refused (C13): another processor owns the partition now.
            eventhubs_store_core::ErrorKind::OwnershipLost => ErrorKind::OwnerLevelConflict,
            _ if e.is_retryable() => ErrorKind::Unavailable,
            _ => ErrorKind::Store,
        };
        Error::new(kind, format!("checkpoint store: {e}")).with_source(e)
    }
}

/// The client's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
