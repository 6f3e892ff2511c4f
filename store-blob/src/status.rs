//! The one place where storage failures become [`ErrorKind`]s, and where a failed conditional
//! write becomes a lost race instead of an error (C5, C6).
//!
//! | service answer | outside a claim | in a claim |
//! |---|---|---|
//! | 412 (any code) | `Backend` | lost |
//! | 409 (Azurite says 409 where Azure says 412; `BlobAlreadyExists` of a create) | `Backend` | lost |
//! | 409 `ContainerBeingDeleted` | `Unavailable` | `Unavailable` |
//! | 404 `ContainerNotFound` | `NotFound` | `NotFound` |
//! | 404 other (`BlobNotFound` of an `If-Match` write: the record vanished) | `NotFound` | lost if the claim had an etag |
//! | 401, 403 | `Unauthorized` | `Unauthorized` |
//! | 400 with an input code (`InvalidMetadata`, `InvalidUri`, …) | `InvalidInput` | `InvalidInput` |
//! | 408, 429, 500, 502, 503, 504 and other 5xx | `Unavailable` | `Unavailable` |
//! | 501 | `Unsupported` | `Unsupported` |
//! | connection refused/reset, I/O, timeouts | `Unavailable` | `Unavailable` |
//! | credential could not get a token | `Unauthorized` | `Unauthorized` |
//! | anything else | `Backend` | `Backend` |

use azure_core::error::ErrorKind as CoreKind;
use eventhubs_store_core::{Error, ErrorKind};

use crate::BACKEND;
use crate::redact::RedactedError;

/// Codes of a 400 that mean the request's input was refused (nothing was written).
const INPUT_CODES: [&str; 8] = [
    "InvalidMetadata",
    "EmptyMetadataKey",
    "MetadataTooLarge",
    "InvalidHeaderValue",
    "InvalidUri",
    "InvalidResourceName",
    "InvalidQueryParameterValue",
    "OutOfRangeInput",
];

/// How a request failed, reduced to what the mapping looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The service answered with a non-success status.
    Status { status: u16, code: Option<String> },
    /// No answer: the connection could not be made or broke, or timed out.
    Transport,
    /// The credential could not produce a token or key.
    Credential,
    /// A response that could not be read, or any other client-side failure.
    Other,
}

impl Failure {
    /// Reduces an SDK error.
    pub(crate) fn of(error: &azure_core::Error) -> Self {
        match error.kind() {
            CoreKind::HttpResponse {
                status, error_code, ..
            } => Failure::Status {
                status: u16::from(*status),
                code: error_code.clone(),
            },
            CoreKind::Connection | CoreKind::Io => Failure::Transport,
            CoreKind::Credential => Failure::Credential,
            _ => Failure::Other,
        }
    }

    /// Whether this is the service answering `status` with error `code`.
    pub(crate) fn is_status(&self, status: u16, code: &str) -> bool {
        matches!(self, Failure::Status { status: s, code: Some(c) } if *s == status && c == code)
    }

    fn code(&self) -> Option<&str> {
        match self {
            Failure::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// The kind of a failure outside a claim's race.
pub(crate) fn error_kind(failure: &Failure) -> ErrorKind {
    match failure {
        Failure::Transport => ErrorKind::Unavailable,
        Failure::Credential => ErrorKind::Unauthorized,
        Failure::Other => ErrorKind::Backend,
        Failure::Status { status, code } => match (*status, code.as_deref()) {
            (400, Some(code)) if INPUT_CODES.contains(&code) => ErrorKind::InvalidInput,
            (401 | 403, _) => ErrorKind::Unauthorized,
            (404, _) => ErrorKind::NotFound,
            (409, Some("ContainerBeingDeleted")) => ErrorKind::Unavailable,
            (408 | 429, _) => ErrorKind::Unavailable,
            (501, _) => ErrorKind::Unsupported,
            (500..=599, _) => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        },
    }
}

/// Whether a failed claim write lost the race (left out of the result, C5) rather than failed.
///
/// `had_etag`: the claim was an `If-Match` update (C4). A record that vanished under it is a lost
/// race; a create (`If-None-Match: *`) never sees a missing blob, only a missing container.
pub(crate) fn claim_lost(failure: &Failure, had_etag: bool) -> bool {
    match failure {
        Failure::Status { status: 412, .. } => true,
        Failure::Status { status: 409, code } => code.as_deref() != Some("ContainerBeingDeleted"),
        Failure::Status { status: 404, code } => had_etag && code.as_deref() != Some("ContainerNotFound"),
        _ => false,
    }
}

/// What the failed call was doing, for the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    /// `"claim_ownership"`, `"list_checkpoints"`, …
    pub(crate) operation: &'a str,
    /// The container name.
    pub(crate) container: &'a str,
    /// The container URL, already redacted.
    pub(crate) container_url: &'a str,
    /// The blob, when one blob was addressed.
    pub(crate) blob: Option<&'a str>,
}

/// Builds the store error of a failed request: a kind from [`error_kind`], a message naming the
/// operation, the container or blob and what to do, and the SDK error as a redacted source.
pub(crate) fn to_error(error: &azure_core::Error, call: Call<'_>) -> Error {
    let failure = Failure::of(error);
    let kind = error_kind(&failure);
    let target = match call.blob {
        Some(blob) => format!("blob {blob:?} in container {:?}", call.container),
        None => format!("container {:?}", call.container),
    };
    let answer = match &failure {
        Failure::Status { status, code } => {
            format!("{status} {}", code.as_deref().unwrap_or("(no error code)"))
        }
        Failure::Transport => "no answer".to_string(),
        Failure::Credential => "no credential".to_string(),
        Failure::Other => "client error".to_string(),
    };
    let hint = match (kind, failure.code()) {
        (ErrorKind::NotFound, Some("ContainerNotFound")) => format!(
            "container {:?} does not exist at {}; create it (Azure portal, or `az storage container \
             create --name {}`), or call BlobStore::create_container_if_missing()",
            call.container, call.container_url, call.container
        ),
        (ErrorKind::Unauthorized, _) => format!(
            "the storage service at {} refused the credentials: check the account key, the SAS \
             (needs read, add, create, write, delete, list on the container and an unexpired \
             window) or the Entra ID role (Storage Blob Data Contributor)",
            call.container_url
        ),
        (ErrorKind::Unavailable, _) => {
            format!("{} did not answer or asked to retry later", call.container_url)
        }
        _ => String::new(),
    };
    let mut message = format!("{} on {target} failed ({answer})", call.operation);
    if !hint.is_empty() {
        message.push_str(": ");
        message.push_str(&hint);
    }
    Error::new(kind, message)
        .with_backend(BACKEND)
        .with_source(RedactedError::from_error(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>) -> Failure {
        Failure::Status {
            status,
            code: code.map(str::to_string),
        }
    }

    #[test]
    fn claim_races_lost_on_412_and_azurites_409() {
        assert!(claim_lost(&status(412, Some("ConditionNotMet")), true));
        assert!(claim_lost(&status(412, None), false));
        // Azure: 412 ConditionNotMet; Azurite answers some of these with 409.
        assert!(claim_lost(&status(409, Some("BlobAlreadyExists")), false));
        assert!(claim_lost(&status(409, None), true));
        assert!(!claim_lost(&status(409, Some("ContainerBeingDeleted")), true));
    }

    #[test]
    fn claim_with_etag_on_a_vanished_blob_is_lost_but_a_missing_container_is_not() {
        assert!(claim_lost(&status(404, Some("BlobNotFound")), true));
        assert!(!claim_lost(&status(404, Some("BlobNotFound")), false));
        assert!(!claim_lost(&status(404, Some("ContainerNotFound")), true));
        assert_eq!(
            error_kind(&status(404, Some("ContainerNotFound"))),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn other_failures_are_not_lost_races() {
        for f in [
            status(403, Some("AuthenticationFailed")),
            status(500, None),
            status(503, Some("ServerBusy")),
            Failure::Transport,
        ] {
            assert!(!claim_lost(&f, true), "{f:?}");
        }
    }

    #[test]
    fn status_codes_map_to_kinds() {
        let cases = [
            (status(400, Some("InvalidMetadata")), ErrorKind::InvalidInput),
            (status(400, Some("InvalidUri")), ErrorKind::InvalidInput),
            (status(400, Some("InvalidHeaderValue")), ErrorKind::InvalidInput),
            (status(400, Some("UnsupportedHeader")), ErrorKind::Backend),
            (status(401, None), ErrorKind::Unauthorized),
            (status(403, Some("AuthenticationFailed")), ErrorKind::Unauthorized),
            (
                status(403, Some("AuthorizationPermissionMismatch")),
                ErrorKind::Unauthorized,
            ),
            (status(404, Some("ContainerNotFound")), ErrorKind::NotFound),
            (status(404, Some("BlobNotFound")), ErrorKind::NotFound),
            (status(408, None), ErrorKind::Unavailable),
            (status(409, Some("ContainerBeingDeleted")), ErrorKind::Unavailable),
            (status(409, Some("LeaseIdMissing")), ErrorKind::Backend),
            (status(412, Some("ConditionNotMet")), ErrorKind::Backend),
            (status(429, None), ErrorKind::Unavailable),
            (status(500, Some("InternalError")), ErrorKind::Unavailable),
            (status(501, None), ErrorKind::Unsupported),
            (status(502, None), ErrorKind::Unavailable),
            (status(503, Some("ServerBusy")), ErrorKind::Unavailable),
            (status(504, None), ErrorKind::Unavailable),
            (status(418, None), ErrorKind::Backend),
            (Failure::Transport, ErrorKind::Unavailable),
            (Failure::Credential, ErrorKind::Unauthorized),
            (Failure::Other, ErrorKind::Backend),
        ];
        for (failure, kind) in cases {
            assert_eq!(error_kind(&failure), kind, "{failure:?}");
        }
    }

    #[test]
    fn sdk_errors_are_reduced() {
        let e = azure_core::Error::with_message(CoreKind::Connection, "connection refused");
        assert_eq!(Failure::of(&e), Failure::Transport);
        let e = azure_core::Error::with_message(CoreKind::Io, "timed out");
        assert_eq!(Failure::of(&e), Failure::Transport);
        let e = azure_core::Error::with_message(
            CoreKind::HttpResponse {
                status: azure_core::http::StatusCode::PreconditionFailed,
                error_code: Some("ConditionNotMet".into()),
                raw_response: None,
            },
            "412",
        );
        assert_eq!(Failure::of(&e), status(412, Some("ConditionNotMet")));
    }

    #[test]
    fn container_not_found_says_which_container_and_how_to_create_it() {
        let e = azure_core::Error::with_message(
            CoreKind::HttpResponse {
                status: azure_core::http::StatusCode::NotFound,
                error_code: Some("ContainerNotFound".into()),
                raw_response: None,
            },
            "GET http://127.0.0.1:1/acct/cps?sig=SECRET failed",
        );
        let call = Call {
            operation: "list_ownership",
            container: "cps",
            container_url: "http://127.0.0.1:1/acct/cps",
            blob: None,
        };
        let err = to_error(&e, call);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let text = err.to_string();
        assert!(text.contains("\"cps\" does not exist"), "{text}");
        assert!(text.contains("create_container_if_missing"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!format!("{err:?}").contains("SECRET"));
    }
}
