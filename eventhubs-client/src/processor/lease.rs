//! [`Lease`]: what a processor and the partition client it handed out share about one owned
//! partition: whether it is still owned (and if not, why), until when the last renewal holds,
//! and whether the application is done with the client.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::background::BackgroundWrites;
use super::events::LossReason;
use crate::error::{Error, ErrorKind, Result};

/// The shared state of one handed-out partition.
#[derive(Debug)]
pub(super) struct Lease {
    partition_id: String,
    lost: Mutex<Option<LossReason>>,
    /// The ownership's last renewal plus the expiration: past it, others may own the partition.
    expires: Mutex<Instant>,
    /// The application closed the client: relinquish.
    pub(super) released: AtomicBool,
    /// The application dropped the client without closing it: hand the partition out again.
    pub(super) dropped: AtomicBool,
    /// The processor is closing: reads end, checkpoints still land.
    pub(super) closing: AtomicBool,
    /// Its partition client was handed out (not only claimed and being opened).
    pub(super) handed: AtomicBool,
    /// Checkpoints queued to be written in the background.
    pub(super) writes: BackgroundWrites,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Lease {
    pub(super) fn new(partition_id: &str, expires: Instant) -> Self {
        Lease {
            partition_id: partition_id.to_owned(),
            lost: Mutex::new(None),
            expires: Mutex::new(expires),
            released: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            handed: AtomicBool::new(false),
            writes: BackgroundWrites::default(),
        }
    }

    /// A renewal won: the ownership holds until `expires`.
    pub(super) fn renewed(&self, expires: Instant) {
        *lock(&self.expires) = expires;
    }

    pub(super) fn expires(&self) -> Instant {
        *lock(&self.expires)
    }

    /// Marks the partition lost; the first reason sticks. Whether this call marked it.
    pub(super) fn lose(&self, reason: LossReason) -> bool {
        let mut lost = lock(&self.lost);
        if lost.is_some() {
            return false;
        }
        *lost = Some(reason);
        true
    }

    pub(super) fn lost(&self) -> Option<LossReason> {
        *lock(&self.lost)
    }

    /// Whether the application holds the client (handed out, neither closed nor dropped).
    pub(super) fn in_use(&self) -> bool {
        self.handed.load(Ordering::SeqCst)
            && !self.released.load(Ordering::SeqCst)
            && !self.dropped.load(Ordering::SeqCst)
    }

    /// `Ok` while the partition is owned and its last renewal holds.
    pub(super) fn ensure_owned(&self) -> Result<()> {
        if let Some(reason) = self.lost() {
            return Err(Error::new(
                ErrorKind::OwnerLevelConflict,
                format!("partition {} is no longer owned ({reason})", self.partition_id),
            ));
        }
        if Instant::now() >= self.expires() {
            return Err(Error::new(
                ErrorKind::OwnerLevelConflict,
                format!(
                    "partition {}: the ownership could not be renewed before it expired",
                    self.partition_id
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_first_loss_reason_sticks_and_expiry_ends_ownership() {
        let lease = Lease::new("3", Instant::now() + Duration::from_secs(60));
        lease.ensure_owned().unwrap();
        assert!(lease.lose(LossReason::Stolen));
        assert!(!lease.lose(LossReason::Shutdown));
        assert_eq!(lease.lost(), Some(LossReason::Stolen));
        let e = lease.ensure_owned().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OwnerLevelConflict);
        assert!(e.to_string().contains("stolen"), "{e}");

        let expired = Lease::new("4", Instant::now());
        assert!(
            expired
                .ensure_owned()
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        expired.renewed(Instant::now() + Duration::from_secs(60));
        expired.ensure_owned().unwrap();
    }
}
