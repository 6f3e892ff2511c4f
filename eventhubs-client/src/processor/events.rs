//! What a [`Processor`](super::Processor) tells the application: partitions it gained and lost
//! (with the reason) and every error it met and recovered from, as a stream of
//! [`ProcessorEvent`]s ([`Processor::events`](super::Processor::events)).

use std::fmt;
use std::sync::Arc;

use crate::error::Error;

/// Why a processor no longer owns a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossReason {
    /// Another processor claimed it (load balancing, or it took over after a renewal failed),
    /// or a fenced checkpoint (C13) found another owner.
    Stolen,
    /// Its ownership was not renewed in time (the store was unreachable for the whole
    /// expiration): others may own it now, so this processor stopped reading it.
    Expired,
    /// The application closed its partition client; the processor relinquished it (C8).
    Released,
    /// The processor was closed and relinquished it (C8).
    Shutdown,
}

impl LossReason {
    /// A short name, e.g. `stolen`.
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Stolen => "stolen",
            LossReason::Expired => "expired",
            LossReason::Released => "released",
            LossReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened to a processor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProcessorEvent {
    /// A partition client for this partition was handed out (after a claim, or again after the
    /// previous client was dropped without being closed); it starts after the checkpoint.
    PartitionInitialized {
        /// The partition.
        partition_id: String,
    },
    /// The processor no longer owns this partition; its partition client stopped working.
    PartitionLost {
        /// The partition.
        partition_id: String,
        /// Why.
        reason: LossReason,
    },
    /// An error the processor met (store or AMQP); it keeps running and retries with backoff.
    Error {
        /// The partition the error concerns, if one.
        partition_id: Option<String>,
        /// The error (its kind says store, unavailable, …).
        error: Arc<Error>,
    },
}
