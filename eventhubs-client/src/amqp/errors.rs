//! The one place that turns AMQP failures (remote error conditions, CBS and management status
//! codes, transport/connection/session failures) into an [`ErrorKind`].

use fe2o3_amqp::connection::OpenError;
use fe2o3_amqp::link::{
    DetachError, IllegalLinkStateError, LinkStateError, ReceiverAttachError, RecvError, SendError,
    SenderAttachError,
};
use fe2o3_amqp::session::BeginError;
use fe2o3_amqp::types::definitions;
use serde_amqp::Value;

use crate::error::{Error, ErrorKind};

/// What failed, before it is classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The peer sent an error condition (e.g. `amqp:link:stolen`).
    Condition(String),
    /// A `$cbs` or `$management` status code.
    Status(i32),
    /// The transport, connection or session failed without a condition.
    Transport,
    /// The link is in a state where it cannot be used (closed locally).
    Closed,
    /// The peer sent something this client cannot read.
    Protocol,
}

/// Classifies a failure. Every error kind this crate derives from AMQP comes from here.
pub(crate) fn classify(failure: &Failure) -> ErrorKind {
    match failure {
        Failure::Condition(condition) => match condition.as_str() {
            "amqp:unauthorized-access" => ErrorKind::Unauthorized,
            "amqp:not-found" | "com.microsoft:entity-not-found" => ErrorKind::NotFound,
            "amqp:link:stolen" => ErrorKind::OwnerLevelConflict,
            "amqp:resource-limit-exceeded" | "com.microsoft:quota-exceeded" => ErrorKind::QuotaExceeded,
            "amqp:invalid-field" | "com.microsoft:argument-error" => ErrorKind::InvalidInput,
            "amqp:decode-error" | "amqp:not-implemented" | "amqp:frame-size-too-small" => ErrorKind::Protocol,
            // Everything else (server-busy, timeouts, forced detaches, connection and session
            // errors, internal errors) is worth retrying.
            _ => ErrorKind::Unavailable,
        },
        Failure::Status(status) => match status {
            401 | 403 => ErrorKind::Unauthorized,
            404 => ErrorKind::NotFound,
            400 => ErrorKind::InvalidInput,
            408 | 429 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Protocol,
        },
        Failure::Transport => ErrorKind::Unavailable,
        Failure::Closed => ErrorKind::Closed,
        Failure::Protocol => ErrorKind::Protocol,
    }
}

/// The condition symbol of a remote AMQP error, e.g. `amqp:not-found`.
pub(crate) fn condition_of(error: &definitions::Error) -> Failure {
    match serde_amqp::to_value(&error.condition) {
        Ok(Value::Symbol(symbol)) => Failure::Condition(symbol.0),
        _ => Failure::Protocol,
    }
}

/// A fe2o3 error that may carry the peer's error.
pub(crate) trait AmqpFailure: std::error::Error + Send + Sync + 'static {
    /// What failed.
    fn failure(&self) -> Failure;
}

/// Wraps a fe2o3 error: the kind from [`classify`], `context` and the error's text.
/// A transport failure also marks the connection as broken, so the client replaces it.
pub(crate) fn amqp_error<E: AmqpFailure>(context: &str, error: E) -> Error {
    let failure = error.failure();
    let e = Error::new(classify(&failure), format!("{context}: {error}"));
    let e = if failure == Failure::Transport {
        e.connection_failure()
    } else {
        e
    };
    e.with_source(error)
}

/// An error for a `$cbs`/`$management` answer with a non-success status. An error condition,
/// when present, wins over the status code.
pub(crate) fn status_error(context: &str, status: i32, condition: Option<&str>, description: &str) -> Error {
    let failure = match condition {
        Some(c) => Failure::Condition(c.to_owned()),
        None => Failure::Status(status),
    };
    Error::new(
        classify(&failure),
        format!("{context}: status {status}: {description}"),
    )
}

fn link_state(error: &LinkStateError) -> Failure {
    match error {
        LinkStateError::RemoteDetachedWithError(e) | LinkStateError::RemoteClosedWithError(e) => {
            condition_of(e)
        }
        LinkStateError::IllegalState => Failure::Closed,
        _ => Failure::Transport,
    }
}

fn detach(error: &DetachError) -> Failure {
    match error {
        DetachError::RemoteDetachedWithError(e) | DetachError::RemoteClosedWithError(e) => condition_of(e),
        DetachError::IllegalState => Failure::Closed,
        _ => Failure::Transport,
    }
}

impl AmqpFailure for OpenError {
    fn failure(&self) -> Failure {
        match self {
            OpenError::SaslError { .. } => Failure::Condition("amqp:unauthorized-access".into()),
            _ => Failure::Transport,
        }
    }
}

impl AmqpFailure for BeginError {
    fn failure(&self) -> Failure {
        match self {
            BeginError::RemoteEndedWithError(e) => condition_of(e),
            _ => Failure::Transport,
        }
    }
}

impl AmqpFailure for SenderAttachError {
    fn failure(&self) -> Failure {
        match self {
            SenderAttachError::RemoteClosedWithError(e) => condition_of(e),
            SenderAttachError::SessionStopped(_) | SenderAttachError::SessionNotMapped => Failure::Transport,
            SenderAttachError::IllegalState => Failure::Closed,
            _ => Failure::Protocol,
        }
    }
}

impl AmqpFailure for ReceiverAttachError {
    fn failure(&self) -> Failure {
        match self {
            ReceiverAttachError::RemoteClosedWithError(e) => condition_of(e),
            ReceiverAttachError::SessionStopped(_) | ReceiverAttachError::SessionNotMapped => {
                Failure::Transport
            }
            ReceiverAttachError::IllegalState => Failure::Closed,
            _ => Failure::Protocol,
        }
    }
}

impl AmqpFailure for SendError {
    fn failure(&self) -> Failure {
        match self {
            SendError::LinkStateError(e) => link_state(e),
            SendError::Detached(e) => detach(e),
            SendError::MessageSizeExceeded(_) => Failure::Condition("amqp:invalid-field".into()),
            _ => Failure::Protocol,
        }
    }
}

impl AmqpFailure for RecvError {
    fn failure(&self) -> Failure {
        match self {
            RecvError::LinkStateError(e) => link_state(e),
            _ => Failure::Protocol,
        }
    }
}

impl AmqpFailure for DetachError {
    fn failure(&self) -> Failure {
        detach(self)
    }
}

impl AmqpFailure for IllegalLinkStateError {
    fn failure(&self) -> Failure {
        match self {
            IllegalLinkStateError::IllegalState => Failure::Closed,
            _ => Failure::Transport,
        }
    }
}

impl AmqpFailure for fe2o3_amqp::connection::Error {
    fn failure(&self) -> Failure {
        Failure::Transport
    }
}

impl AmqpFailure for fe2o3_amqp::session::Error {
    fn failure(&self) -> Failure {
        Failure::Transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fe2o3_amqp::types::definitions::{AmqpError, ConnectionError, LinkError, SessionError};

    fn remote(condition: impl Into<definitions::ErrorCondition>) -> ErrorKind {
        let error = definitions::Error::new(condition, Some("why".to_owned()), None);
        classify(&condition_of(&error))
    }

    #[test]
    fn conditions_map_to_kinds() {
        assert_eq!(remote(AmqpError::UnauthorizedAccess), ErrorKind::Unauthorized);
        assert_eq!(remote(AmqpError::NotFound), ErrorKind::NotFound);
        assert_eq!(remote(LinkError::Stolen), ErrorKind::OwnerLevelConflict);
        assert_eq!(remote(AmqpError::ResourceLimitExceeded), ErrorKind::QuotaExceeded);
        assert_eq!(remote(ConnectionError::ConnectionForced), ErrorKind::Unavailable);
        assert_eq!(remote(SessionError::WindowViolation), ErrorKind::Unavailable);
        assert_eq!(remote(LinkError::DetachForced), ErrorKind::Unavailable);
        assert_eq!(remote(AmqpError::InvalidField), ErrorKind::InvalidInput);
        assert_eq!(
            remote(definitions::ErrorCondition::Custom(
                "com.microsoft:server-busy".into()
            )),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn status_codes_map_to_kinds() {
        assert_eq!(classify(&Failure::Status(401)), ErrorKind::Unauthorized);
        assert_eq!(classify(&Failure::Status(404)), ErrorKind::NotFound);
        assert_eq!(classify(&Failure::Status(400)), ErrorKind::InvalidInput);
        assert_eq!(classify(&Failure::Status(503)), ErrorKind::Unavailable);
        assert_eq!(classify(&Failure::Status(302)), ErrorKind::Protocol);
        let e = status_error("put-token", 401, None, "bad signature");
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let e = status_error("READ", 500, Some("amqp:not-found"), "gone");
        assert_eq!(e.kind(), ErrorKind::NotFound, "the condition wins");
    }

    #[test]
    fn transport_and_link_state_errors() {
        let io = OpenError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert_eq!(amqp_error("connect", io).kind(), ErrorKind::Unavailable);
        let stolen = RecvError::LinkStateError(LinkStateError::RemoteDetachedWithError(
            definitions::Error::new(LinkError::Stolen, None, None),
        ));
        assert_eq!(
            amqp_error("receive", stolen).kind(),
            ErrorKind::OwnerLevelConflict
        );
        let refused = ReceiverAttachError::RemoteClosedWithError(definitions::Error::new(
            AmqpError::ResourceLimitExceeded,
            None,
            None,
        ));
        assert_eq!(amqp_error("attach", refused).kind(), ErrorKind::QuotaExceeded);
        let unauthorized = SenderAttachError::RemoteClosedWithError(definitions::Error::new(
            AmqpError::UnauthorizedAccess,
            None,
            None,
        ));
        assert_eq!(amqp_error("attach", unauthorized).kind(), ErrorKind::Unauthorized);
        let detached = SendError::LinkStateError(LinkStateError::RemoteDetached);
        assert_eq!(amqp_error("send", detached).kind(), ErrorKind::Unavailable);
        assert_eq!(
            amqp_error("recv", RecvError::LinkStateError(LinkStateError::IllegalState)).kind(),
            ErrorKind::Closed
        );
    }
}
