//! Checkpoints written in the background: [`PartitionClient::checkpoint_in_background`] hands
//! the newest checkpoint to a writer and returns at once, so reading goes on while the store
//! writes. Checkpoints queued while a write is in flight, or within the minimum interval after
//! it, are coalesced: only the newest one is written next (a checkpoint only ever moves forward
//! within one ownership, so the older ones carry nothing the newest does not). A flush cuts the
//! interval short.
//!
//! Ordering with the next owner: the processor waits for the writes of a partition before it
//! relinquishes the partition (client closed, processor closing) or hands it out again (client
//! dropped), so whoever reads the checkpoint next sees the last one queued. After a partition is
//! lost, nothing more is written (and a write in flight when it was stolen is refused by the
//! store's fence, C13, where the store offers one).
//!
//! [`PartitionClient::checkpoint_in_background`]: super::PartitionClient::checkpoint_in_background

use std::sync::Mutex;

use eventhubs_store_core::Checkpoint;
use tokio::sync::Notify;

use crate::error::{Error, Result};

/// What the writer of one partition holds: the next checkpoint to write, whether a write is in
/// flight, and the error of the last write nobody has seen yet.
#[derive(Debug, Default)]
pub(super) struct BackgroundWrites {
    slot: Mutex<Slot>,
    /// Signalled whenever the writer finishes a write or goes idle.
    settled: Notify,
    /// Signalled by a flush: the writer stops waiting out the interval.
    hurry: Notify,
}

#[derive(Debug, Default)]
struct Slot {
    next: Option<Checkpoint>,
    writing: bool,
    failed: Option<Error>,
    /// When the last write ended: the next one waits for the interval after it.
    last_write: Option<tokio::time::Instant>,
    /// A flush is waiting: write without waiting for the interval until idle.
    hurry: bool,
}

fn lock(m: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BackgroundWrites {
    /// Queues `checkpoint` (replacing one not yet written). Whether the caller must start a
    /// writer (none is running), and the error of an earlier write not reported yet.
    pub(super) fn queue(&self, checkpoint: Checkpoint) -> (bool, Option<Error>) {
        let mut slot = lock(&self.slot);
        slot.next = Some(checkpoint);
        let start = !slot.writing;
        slot.writing = true;
        (start, slot.failed.take())
    }

    /// The writer's loop: writes the newest queued checkpoint with `write` until none is left,
    /// at most one write per `interval` (counted from the last write, across writers) unless a
    /// flush is waiting.
    pub(super) async fn drain<F, Fut>(&self, write: F, interval: std::time::Duration)
    where
        F: Fn(Checkpoint) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        loop {
            let due = lock(&self.slot).last_write.map(|at| at + interval);
            if let Some(due) = due
                && due > tokio::time::Instant::now()
            {
                // Coalesce what comes in meanwhile; a flush ends the wait.
                let hurry = self.hurry.notified();
                tokio::pin!(hurry);
                hurry.as_mut().enable();
                if !lock(&self.slot).hurry {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {}
                        () = hurry => {}
                    }
                }
            }
            let next = {
                let mut slot = lock(&self.slot);
                let next = slot.next.take();
                // Stopping is decided under the same lock a queue takes: a checkpoint queued
                // after this sees no writer and starts one.
                slot.writing = next.is_some();
                slot.hurry &= slot.writing;
                next
            };
            let Some(next) = next else {
                self.settled.notify_waiters();
                return;
            };
            let result = write(next).await;
            let mut slot = lock(&self.slot);
            slot.last_write = Some(tokio::time::Instant::now());
            if let Err(e) = result {
                slot.failed = Some(e);
            }
            let done = slot.next.is_none();
            if done {
                slot.writing = false;
                slot.hurry = false;
            }
            drop(slot);
            self.settled.notify_waiters();
            if done {
                return;
            }
        }
    }

    /// Waits until every queued checkpoint is written (or failed). The error of the last
    /// failed write not reported yet.
    pub(super) async fn flush(&self) -> Result<()> {
        {
            let mut slot = lock(&self.slot);
            slot.hurry = slot.writing;
        }
        self.hurry.notify_waiters();
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let mut slot = lock(&self.slot);
                if !slot.writing {
                    return match slot.failed.take() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    };
                }
            }
            settled.await;
        }
    }

    /// Whether a write is queued or in flight.
    #[cfg(test)]
    fn busy(&self) -> bool {
        lock(&self.slot).writing
    }

    /// The error of the last failed write, left for the application to see (a copy).
    #[cfg(test)]
    fn failed(&self) -> Option<Error> {
        lock(&self.slot)
            .failed
            .as_ref()
            .map(|e| Error::new(e.kind(), e.message()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use eventhubs_store_core::PartitionScope;
    use tokio::sync::Semaphore;

    use std::sync::Arc;

    use super::*;
    use crate::error::ErrorKind;

    fn checkpoint(sequence_number: i64) -> Checkpoint {
        let scope = PartitionScope::new("ns", "hub", "$Default").unwrap();
        Checkpoint::new(scope, "0", None, Some(sequence_number))
    }

    #[tokio::test]
    async fn checkpoints_queued_during_a_write_are_coalesced_to_the_newest() {
        let writes = Arc::new(BackgroundWrites::default());
        let written = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Semaphore::new(0));
        let (start, failed) = writes.queue(checkpoint(1));
        assert!(start && failed.is_none());
        let writer = {
            let (writes, written, gate) = (Arc::clone(&writes), Arc::clone(&written), Arc::clone(&gate));
            tokio::spawn(async move {
                writes
                    .drain(
                        |c| {
                            let (written, gate) = (Arc::clone(&written), Arc::clone(&gate));
                            async move {
                                gate.acquire()
                                    .await
                                    .map_err(|_| Error::new(ErrorKind::Closed, "gate"))?
                                    .forget();
                                written.lock().unwrap().push(c.sequence_number);
                                Ok(())
                            }
                        },
                        std::time::Duration::ZERO,
                    )
                    .await
            })
        };
        // The first write is held at the gate; three more are queued meanwhile.
        tokio::task::yield_now().await;
        for n in 2..=4 {
            let (start, _) = writes.queue(checkpoint(n));
            assert!(!start, "one writer at a time");
        }
        assert!(writes.busy());
        gate.add_permits(10);
        writes.flush().await.unwrap();
        writer.await.unwrap();
        assert_eq!(
            *written.lock().unwrap(),
            vec![Some(1), Some(4)],
            "2 and 3 were coalesced into 4"
        );
        assert!(!writes.busy());
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_once_by_flush_or_the_next_queue() {
        let writes = Arc::new(BackgroundWrites::default());
        let calls = AtomicUsize::new(0);
        writes.queue(checkpoint(1));
        writes
            .drain(
                |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err(Error::new(ErrorKind::Unavailable, "store down")) }
                },
                Duration::ZERO,
            )
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(writes.failed().unwrap().kind(), ErrorKind::Unavailable);
        let e = writes.flush().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        writes.flush().await.unwrap();

        writes.queue(checkpoint(2));
        writes
            .drain(
                |_| async { Err(Error::new(ErrorKind::Unavailable, "again")) },
                Duration::ZERO,
            )
            .await;
        let (_, failed) = writes.queue(checkpoint(3));
        assert_eq!(failed.unwrap().message(), "again", "the next queue reports it");
        writes.drain(|_| async { Ok(()) }, Duration::ZERO).await;
        writes.flush().await.unwrap();
    }

    #[tokio::test]
    async fn flush_waits_for_the_write_in_flight() {
        let writes = Arc::new(BackgroundWrites::default());
        let done = Arc::new(AtomicUsize::new(0));
        writes.queue(checkpoint(1));
        let writer = {
            let (writes, done) = (Arc::clone(&writes), Arc::clone(&done));
            tokio::spawn(async move {
                writes
                    .drain(
                        |_| {
                            let done = Arc::clone(&done);
                            async move {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                done.fetch_add(1, Ordering::SeqCst);
                                Ok(())
                            }
                        },
                        Duration::ZERO,
                    )
                    .await
            })
        };
        writes.flush().await.unwrap();
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "flush returned before the write landed"
        );
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_spaced_by_the_interval_and_a_flush_cuts_the_wait() {
        let writes = Arc::new(BackgroundWrites::default());
        let written = Arc::new(Mutex::new(Vec::new()));
        // What the partition client does: start a writer when `queue` says none runs.
        let queue = |n: i64| {
            let (start, _) = writes.queue(checkpoint(n));
            if start {
                let (writes, written) = (Arc::clone(&writes), Arc::clone(&written));
                tokio::spawn(async move {
                    writes
                        .drain(
                            |c| {
                                let written = Arc::clone(&written);
                                async move {
                                    let at = tokio::time::Instant::now();
                                    written.lock().unwrap().push((c.sequence_number, at));
                                    Ok(())
                                }
                            },
                            Duration::from_secs(60),
                        )
                        .await
                });
            }
        };
        let started = tokio::time::Instant::now();
        queue(1);
        writes.flush().await.unwrap();
        // Queued right after the first write: they wait out the interval, coalesced into 3.
        queue(2);
        queue(3);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(written.lock().unwrap().len(), 1, "nothing within the interval");
        queue(4);
        tokio::time::sleep(Duration::from_secs(40)).await;
        assert_eq!(
            written.lock().unwrap().iter().map(|w| w.0).collect::<Vec<_>>(),
            vec![Some(1), Some(4)],
            "one write when the interval ended, of the newest"
        );
        // A flush does not wait for the interval.
        queue(5);
        writes.flush().await.unwrap();
        let written = written.lock().unwrap().clone();
        assert_eq!(written.len(), 3);
        assert_eq!(written[2].0, Some(5));
        assert!(
            written[2].1 - started < Duration::from_secs(120),
            "the flush cut the interval short"
        );
    }
}
