//! Our error kinds as `azure_core` error kinds, in one place.
//!
//! | ours | `azure_core::error::ErrorKind` | why |
//! |---|---|---|
//! | `InvalidInput` | `DataConversion` | the request cannot be stored as given |
//! | `Unavailable` | `Io` | the store could not be reached; returned only after the adapter's own retries |
//! | `Unauthorized` | `Credential` | the store refused its credentials |
//! | `NotFound` | `HttpResponse` 404 | the database, container or directory is missing |
//! | `OwnershipLost`, `Unsupported`, `Backend` | `Other` | never retried |
//!
//! The source error (our kind, the backend and the message) stays attached.

use azure_core::error::ErrorKind as AzureKind;
use azure_core::http::StatusCode;
use eventhubs_store_core::ErrorKind;

/// The `azure_core` kind for one of ours.
pub fn azure_kind(kind: ErrorKind) -> AzureKind {
    match kind {
        ErrorKind::InvalidInput => AzureKind::DataConversion,
        ErrorKind::Unavailable => AzureKind::Io,
        ErrorKind::Unauthorized => AzureKind::Credential,
        ErrorKind::NotFound => AzureKind::HttpResponse {
            status: StatusCode::NotFound,
            error_code: None,
            raw_response: None,
        },
        _ => AzureKind::Other,
    }
}

/// Our error as an `azure_core` error, with ours as its source.
pub fn to_azure(error: eventhubs_store_core::Error) -> azure_core::Error {
    azure_core::Error::new(azure_kind(error.kind()), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_and_keeps_its_source() {
        assert!(matches!(
            azure_kind(ErrorKind::InvalidInput),
            AzureKind::DataConversion
        ));
        assert!(matches!(azure_kind(ErrorKind::Unavailable), AzureKind::Io));
        assert!(matches!(
            azure_kind(ErrorKind::Unauthorized),
            AzureKind::Credential
        ));
        assert!(matches!(
            azure_kind(ErrorKind::NotFound),
            AzureKind::HttpResponse {
                status: StatusCode::NotFound,
                ..
            }
        ));
        for kind in [
            ErrorKind::OwnershipLost,
            ErrorKind::Unsupported,
            ErrorKind::Backend,
        ] {
            assert!(matches!(azure_kind(kind), AzureKind::Other));
        }
        let ours = eventhubs_store_core::Error::unsupported("delete_checkpoint");
        let text = ours.to_string();
        let theirs = to_azure(ours);
        assert!(theirs.to_string().contains(&text) || format!("{theirs:?}").contains("delete_checkpoint"));
    }
}
