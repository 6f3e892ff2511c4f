//! One partition: an append-only in-memory log with bounded retention.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use crate::config::Retention;
use crate::wire::message::EncodedEvent;

/// An event as stored: its stamps and its encoding ready for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Sequence number, from 0.
    pub sequence_number: i64,
    /// Offset: the number of message bytes stored before this event (strictly increasing).
    pub offset: u64,
    /// Enqueued time, ms since the Unix epoch.
    pub enqueued_ms: i64,
    /// The delivery encoding.
    pub encoded: EncodedEvent,
}

impl StoredEvent {
    fn size(&self) -> usize {
        self.encoded.head.len() + self.encoded.tail.len()
    }
}

/// Where a receiver starts, parsed from the selector filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The first retained event.
    Earliest,
    /// Only events enqueued after the link attached.
    Latest,
    /// By offset; `inclusive` for `>=`.
    Offset {
        /// The offset.
        offset: u64,
        /// Whether an event at exactly this offset is included.
        inclusive: bool,
    },
    /// By sequence number; `inclusive` for `>=`.
    Sequence {
        /// The sequence number.
        sequence_number: i64,
        /// Whether an event with exactly this number is included.
        inclusive: bool,
    },
    /// By enqueued time (ms since the epoch); `inclusive` for `>=`.
    EnqueuedTime {
        /// The time.
        ms: i64,
        /// Whether an event enqueued at exactly this time is included.
        inclusive: bool,
    },
}

/// The state `$management` reports for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// First retained sequence number (the next one when empty).
    pub begin_sequence_number: i64,
    /// Last sequence number ever enqueued, -1 when none.
    pub last_enqueued_sequence_number: i64,
    /// Offset of the last event, or -1 when none.
    pub last_enqueued_offset: i64,
    /// Enqueued time of the last event (ms), 0 when none.
    pub last_enqueued_time_ms: i64,
    /// No event retained.
    pub is_empty: bool,
}

/// The log of one partition. Lock it briefly; never across an await.
#[derive(Debug)]
pub struct PartitionLog {
    events: VecDeque<Arc<StoredEvent>>,
    retention: Retention,
    bytes: usize,
    next_sequence: i64,
    next_offset: u64,
    last: Option<(i64, u64, i64)>,
    waiters: Vec<(u64, Weak<Notify>)>,
}

impl PartitionLog {
    /// An empty log with the given retention.
    pub fn new(retention: Retention) -> Self {
        Self {
            events: VecDeque::new(),
            retention,
            bytes: 0,
            next_sequence: 0,
            next_offset: 0,
            last: None,
            waiters: Vec::new(),
        }
    }

    /// Appends one event; `encode` receives its sequence number, offset and enqueued time and
    /// returns the delivery encoding. Evicts the oldest events past the retention limits.
    pub fn append<E>(
        &mut self,
        enqueued_ms: i64,
        encode: impl FnOnce(i64, u64) -> Result<EncodedEvent, E>,
    ) -> Result<i64, E> {
        let sequence_number = self.next_sequence;
        let offset = self.next_offset;
        // Enqueued times never go backwards within a partition, even if the clock does.
        let enqueued_ms = self.last.map_or(enqueued_ms, |(_, _, t)| enqueued_ms.max(t));
        let encoded = encode(sequence_number, offset)?;
        let event = Arc::new(StoredEvent {
            sequence_number,
            offset,
            enqueued_ms,
            encoded,
        });
        let size = event.size();
        self.bytes += size;
        self.next_sequence += 1;
        // At least 1 so offsets strictly increase even for empty messages.
        self.next_offset += size.max(1) as u64;
        self.last = Some((sequence_number, offset, enqueued_ms));
        self.events.push_back(event);
        self.evict();
        Ok(sequence_number)
    }

    fn evict(&mut self) {
        while self.events.len() > 1
            && (self.events.len() > self.retention.max_events || self.bytes > self.retention.max_bytes)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.size();
            }
        }
    }

    /// Wakes every receiver waiting on this partition.
    pub fn wake_waiters(&mut self) {
        self.waiters.retain(|(_, w)| match w.upgrade() {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        });
    }

    /// Registers a connection's notifier (once per connection).
    pub fn add_waiter(&mut self, connection_id: u64, notify: &Arc<Notify>) {
        self.waiters.retain(|(_, w)| w.strong_count() > 0);
        if !self.waiters.iter().any(|(id, _)| *id == connection_id) {
            self.waiters.push((connection_id, Arc::downgrade(notify)));
        }
    }

    /// First retained sequence number (the next one when empty).
    pub fn begin_sequence(&self) -> i64 {
        self.events
            .front()
            .map_or(self.next_sequence, |e| e.sequence_number)
    }

    /// The sequence number the next event will get.
    pub fn next_sequence(&self) -> i64 {
        self.next_sequence
    }

    /// Retained event count and bytes.
    pub fn usage(&self) -> (usize, usize) {
        (self.events.len(), self.bytes)
    }

    /// The sequence number a receiver starting at `position` reads first.
    pub fn resolve(&self, position: StartPosition) -> i64 {
        let first_where = |pred: &dyn Fn(&StoredEvent) -> bool| {
            let idx = self.events.partition_point(|e| !pred(e));
            self.events
                .get(idx)
                .map_or(self.next_sequence, |e| e.sequence_number)
        };
        match position {
            StartPosition::Earliest => self.begin_sequence(),
            StartPosition::Latest => self.next_sequence,
            StartPosition::Offset { offset, inclusive } => first_where(&|e| {
                if inclusive {
                    e.offset >= offset
                } else {
                    e.offset > offset
                }
            }),
            StartPosition::Sequence {
                sequence_number,
                inclusive,
            } => {
                let start = if inclusive {
                    sequence_number
                } else {
                    sequence_number.saturating_add(1)
                };
                start.clamp(self.begin_sequence(), self.next_sequence)
            }
            StartPosition::EnqueuedTime { ms, inclusive } => first_where(&|e| {
                if inclusive {
                    e.enqueued_ms >= ms
                } else {
                    e.enqueued_ms > ms
                }
            }),
        }
    }

    /// Up to `max` events from sequence number `from` (moved up to the first retained one).
    pub fn read(&self, from: i64, max: usize) -> Vec<Arc<StoredEvent>> {
        let begin = self.begin_sequence();
        let start = usize::try_from(from.max(begin) - begin).unwrap_or(usize::MAX);
        self.events.iter().skip(start).take(max).cloned().collect()
    }

    /// The partition's state for `$management` and runtime metrics.
    pub fn info(&self) -> PartitionInfo {
        let (last_seq, last_offset, last_time) = match self.last {
            Some((s, o, t)) => (s, i64::try_from(o).unwrap_or(i64::MAX), t),
            None => (-1, -1, 0),
        };
        PartitionInfo {
            begin_sequence_number: self.begin_sequence(),
            last_enqueued_sequence_number: last_seq,
            last_enqueued_offset: last_offset,
            last_enqueued_time_ms: last_time,
            is_empty: self.events.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(log: &mut PartitionLog, t: i64, size: usize) -> i64 {
        log.append::<()>(t, |_, _| {
            Ok(EncodedEvent {
                head: vec![],
                tail: vec![0; size],
            })
        })
        .unwrap()
    }

    #[test]
    fn sequence_and_offsets_increase_from_zero() {
        let mut log = PartitionLog::new(Retention::default());
        assert_eq!(log.info().last_enqueued_sequence_number, -1);
        assert!(log.info().is_empty);
        assert_eq!(append(&mut log, 10, 5), 0);
        assert_eq!(append(&mut log, 20, 5), 1);
        let events = log.read(0, 10);
        assert_eq!(events[0].offset, 0);
        assert_eq!(events[1].offset, 5);
        let info = log.info();
        assert_eq!(info.last_enqueued_offset, 5);
        assert_eq!(info.last_enqueued_time_ms, 20);
    }

    #[test]
    fn retention_by_count_and_bytes() {
        let mut log = PartitionLog::new(Retention {
            max_events: 3,
            max_bytes: 1000,
        });
        for i in 0..10 {
            append(&mut log, i, 10);
        }
        assert_eq!(log.usage(), (3, 30));
        assert_eq!(log.begin_sequence(), 7);
        let mut log = PartitionLog::new(Retention {
            max_events: 100,
            max_bytes: 25,
        });
        for i in 0..10 {
            append(&mut log, i, 10);
        }
        assert_eq!(log.usage(), (2, 20));
        // A reader behind the retained range starts at the first retained event.
        assert_eq!(log.read(0, 1)[0].sequence_number, 8);
    }

    #[test]
    fn positions_resolve() {
        let mut log = PartitionLog::new(Retention::default());
        for i in 0..5 {
            append(&mut log, 100 + i, 10);
        }
        let offset = |offset, inclusive| StartPosition::Offset { offset, inclusive };
        let sequence = |sequence_number, inclusive| StartPosition::Sequence {
            sequence_number,
            inclusive,
        };
        let time = |ms, inclusive| StartPosition::EnqueuedTime { ms, inclusive };
        let cases = [
            (StartPosition::Earliest, 0),
            (StartPosition::Latest, 5),
            (offset(20, false), 3),
            (offset(20, true), 2),
            (sequence(1, false), 2),
            (sequence(-1, false), 0),
            (sequence(99, true), 5),
            (time(102, true), 2),
            (time(102, false), 3),
        ];
        for (position, expected) in cases {
            assert_eq!(log.resolve(position), expected, "{position:?}");
        }
    }
}
