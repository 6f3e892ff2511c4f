//! File-system errors → [`ErrorKind`]: the one place this backend maps its error codes.
//!
//! | `io::ErrorKind` | `ErrorKind` | why |
//! |---|---|---|
//! | `NotFound`, `NotADirectory` | `NotFound` | the store root (or a directory in it) is missing or is a file |
//! | `PermissionDenied`, `ReadOnlyFilesystem` | `Unauthorized` | the process may not read or write there |
//! | `StorageFull`, `QuotaExceeded`, `Interrupted`, `WouldBlock`, `TimedOut`, `ResourceBusy`, `Deadlock`, `StaleNetworkFileHandle` | `Unavailable` | may pass once space is freed or the file system recovers: retryable |
//! | `InvalidFilename`, `InvalidInput` | `InvalidInput` | the path cannot exist on this file system (e.g. the root path is too long) |
//! | `Unsupported` | `Unsupported` | the file system cannot lock files (some network file systems) |
//! | anything else | `Backend` | |
//!
//! Corrupt records are `Backend` errors that name the file ([`corrupt`]).

use std::io;
use std::path::Path;

use eventhubs_store_core::{Error, ErrorKind};

/// The name stamped on every error of this backend.
pub const BACKEND: &str = "file";

/// The kind of a file-system error (see the table in the module docs).
pub fn kind_of(kind: io::ErrorKind) -> ErrorKind {
    use io::ErrorKind as Io;
    match kind {
        Io::NotFound | Io::NotADirectory => ErrorKind::NotFound,
        Io::PermissionDenied | Io::ReadOnlyFilesystem => ErrorKind::Unauthorized,
        Io::StorageFull
        | Io::QuotaExceeded
        | Io::Interrupted
        | Io::WouldBlock
        | Io::TimedOut
        | Io::ResourceBusy
        | Io::Deadlock
        | Io::StaleNetworkFileHandle => ErrorKind::Unavailable,
        Io::InvalidFilename | Io::InvalidInput => ErrorKind::InvalidInput,
        Io::Unsupported => ErrorKind::Unsupported,
        _ => ErrorKind::Backend,
    }
}

/// A file-system error while doing `what` to `path`, with its kind mapped and the `io::Error`
/// kept as the source.
pub fn io_error(what: &str, path: &Path, err: io::Error) -> Error {
    Error::new(kind_of(err.kind()), format!("{what} {}", path.display()))
        .with_backend(BACKEND)
        .with_source(err)
}

/// A record file that does not parse or does not belong where it was found.
pub fn corrupt(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::backend(format!("corrupt record file {}: {why}", path.display())).with_backend(BACKEND)
}

/// A blocking task that panicked or was cancelled.
pub fn task_failed(err: tokio::task::JoinError) -> Error {
    Error::backend("file-store I/O task failed")
        .with_backend(BACKEND)
        .with_source(err)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn io_kinds_map_to_store_kinds() {
        use io::ErrorKind as Io;
        let cases = [
            (Io::NotFound, ErrorKind::NotFound),
            (Io::NotADirectory, ErrorKind::NotFound),
            (Io::PermissionDenied, ErrorKind::Unauthorized),
            (Io::ReadOnlyFilesystem, ErrorKind::Unauthorized),
            (Io::StorageFull, ErrorKind::Unavailable),
            (Io::QuotaExceeded, ErrorKind::Unavailable),
            (Io::Interrupted, ErrorKind::Unavailable),
            (Io::TimedOut, ErrorKind::Unavailable),
            (Io::ResourceBusy, ErrorKind::Unavailable),
            (Io::StaleNetworkFileHandle, ErrorKind::Unavailable),
            (Io::InvalidFilename, ErrorKind::InvalidInput),
            (Io::Unsupported, ErrorKind::Unsupported),
            (Io::AlreadyExists, ErrorKind::Backend),
            (Io::IsADirectory, ErrorKind::Backend),
            (Io::UnexpectedEof, ErrorKind::Backend),
            (Io::Other, ErrorKind::Backend),
        ];
        for (io_kind, expected) in cases {
            assert_eq!(kind_of(io_kind), expected, "{io_kind:?}");
        }
    }

    #[test]
    fn storage_full_is_retryable_and_names_the_path() {
        let path = PathBuf::from("/data/store/ns/hub/cg/checkpoint/0");
        let e = io_error("write", &path, io::Error::from(io::ErrorKind::StorageFull));
        assert!(e.is_retryable());
        assert_eq!(e.backend_name(), Some("file"));
        assert!(
            e.to_string().contains("/data/store/ns/hub/cg/checkpoint/0"),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn errno_values_map_through_the_os() {
        // The raw errors the kernel gives for a full disk, a read-only mount and a missing root.
        let full = io::Error::from_raw_os_error(28); // ENOSPC
        assert_eq!(kind_of(full.kind()), ErrorKind::Unavailable);
        let read_only = io::Error::from_raw_os_error(30); // EROFS
        assert_eq!(kind_of(read_only.kind()), ErrorKind::Unauthorized);
        let missing = io::Error::from_raw_os_error(2); // ENOENT
        assert_eq!(kind_of(missing.kind()), ErrorKind::NotFound);
    }

    #[test]
    fn corrupt_records_are_backend_errors_naming_the_file() {
        let e = corrupt(Path::new("/s/ownership/0"), "checksum mismatch");
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert!(e.to_string().contains("/s/ownership/0: checksum mismatch"), "{e}");
    }
}
