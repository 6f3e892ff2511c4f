//! Fault injection: the knobs a client's recovery is tested with. Everything here is off until
//! a test (or a user testing their own application) turns it on through
//! [`EmulatorHandle::faults`](crate::EmulatorHandle::faults):
//!
//! - [`Faults::drop_connections`]: every open connection is cut at the TCP level, without a
//!   `close` frame, as a network failure or a crashed gateway does;
//! - [`Faults::detach_links`]: every entity link of a hub (senders and receivers, or only the
//!   receivers of one partition) is detached with `amqp:link:detach-forced`, as the service
//!   does when it moves a partition; the connection stays up;
//! - [`Faults::refuse_connections_for`]: new connections are accepted and closed at once for a
//!   while (a gateway that is down);
//! - [`Faults::delay_connections`]: new connections wait before the emulator answers (a slow
//!   or hung gateway: the client's connect timeout is what ends the wait);
//! - [`Faults::hold_attaches`]: attaches of entity links (senders, receivers) get no answer
//!   while it is on (a hung attach: the client's step timeout is what ends the wait);
//! - [`EmulatorHandle::restart`](crate::EmulatorHandle::restart): the listener and every
//!   connection go away and come back on the same port with the same events.
//!
//! Each knob counts what it did, so a test can assert the fault really happened.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::broker::lock;

/// A fault every open connection acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Cut the TCP connection without a `close` frame.
    Drop,
    /// Detach the entity links of `hub` (lower-case) with `amqp:link:detach-forced`: all of
    /// them when `partition` is `None`, else only the receivers of that partition.
    Detach {
        /// The hub.
        hub: String,
        /// A partition index, to detach only its receivers.
        partition: Option<usize>,
    },
}

/// The emulator's fault knobs (see the module docs).
#[derive(Debug)]
pub struct Faults {
    signals: broadcast::Sender<Signal>,
    refuse_until: Mutex<Option<Instant>>,
    delay: Mutex<Duration>,
    /// Microseconds every connection waits before it writes what it has to send.
    latency_us: AtomicU64,
    hold: std::sync::atomic::AtomicBool,
    held: AtomicU64,
    dropped: AtomicU64,
    detached: AtomicU64,
    refused: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            signals: broadcast::channel(64).0,
            refuse_until: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
            latency_us: AtomicU64::new(0),
            hold: std::sync::atomic::AtomicBool::new(false),
            held: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            detached: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

impl Faults {
    /// Every connection waits `latency` before it writes its answers (dispositions, attach
    /// and `end` replies, events), as a network between a client and the service would make
    /// it wait. Zero (the default) answers at once over loopback, fast enough to hit races in
    /// some clients: fe2o3-amqp 0.16 (inside the official Rust crate 0.16) records a delivery
    /// as awaiting its disposition after writing it, and tears down a session it ended before
    /// the peer's `end` arrives; a reply that comes back first is lost, or closes the
    /// connection with "Session is not found".
    pub fn set_reply_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(micros, Ordering::Relaxed);
    }

    /// The latency set by [`Faults::set_reply_latency`].
    pub fn reply_latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    /// Cuts every open connection (TCP, no `close` frame). Returns at once; the connections
    /// go within milliseconds.
    pub fn drop_connections(&self) {
        let _ = self.signals.send(Signal::Drop);
    }

    /// Detaches every entity link of `hub` (its senders and receivers) with
    /// `amqp:link:detach-forced`; the connections and their `$cbs`/`$management` links stay.
    pub fn detach_links(&self, hub: &str) {
        let _ = self.signals.send(Signal::Detach {
            hub: hub.to_ascii_lowercase(),
            partition: None,
        });
    }

    /// Detaches the receivers of one partition (`"0"`, `"1"`, …) of `hub`, in every group.
    pub fn detach_receivers(&self, hub: &str, partition_id: &str) {
        let Ok(partition) = partition_id.parse::<usize>() else {
            return;
        };
        let _ = self.signals.send(Signal::Detach {
            hub: hub.to_ascii_lowercase(),
            partition: Some(partition),
        });
    }

    /// New connections are closed as soon as they are accepted, for `how_long` from now.
    /// Connections already open are not touched (combine with [`Faults::drop_connections`]).
    pub fn refuse_connections_for(&self, how_long: Duration) {
        *lock(&self.refuse_until) = Some(Instant::now() + how_long);
    }

    /// New connections wait `delay` before the emulator reads or answers anything (zero turns
    /// it off).
    pub fn delay_connections(&self, delay: Duration) {
        *lock(&self.delay) = delay;
    }

    /// While `on`, attaches of entity links are left unanswered (`$cbs` and `$management`
    /// links still attach, so tokens and management requests work).
    pub fn hold_attaches(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }

    /// Attaches left unanswered by [`Faults::hold_attaches`] so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether to leave this entity attach unanswered (and counts it if so).
    pub(crate) fn hold_attach_now(&self) -> bool {
        let hold = self.hold.load(Ordering::SeqCst);
        if hold {
            self.held.fetch_add(1, Ordering::Relaxed);
        }
        hold
    }

    /// Connections cut by [`Faults::drop_connections`] so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Links detached by [`Faults::detach_links`] / [`Faults::detach_receivers`] so far.
    pub fn detached(&self) -> u64 {
        self.detached.load(Ordering::Relaxed)
    }

    /// Connections refused by [`Faults::refuse_connections_for`] so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether a new connection is to be refused now (and counts it if so).
    pub(crate) fn refuse_now(&self) -> bool {
        let refusing = lock(&self.refuse_until).is_some_and(|until| Instant::now() < until);
        if refusing {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        refusing
    }

    /// How long a new connection waits before it is served.
    pub(crate) fn connect_delay(&self) -> Duration {
        *lock(&self.delay)
    }

    /// Signals for one connection.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.signals.subscribe()
    }

    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_detached(&self, links: u64) {
        self.detached.fetch_add(links, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_lasts_as_long_as_asked_and_is_counted() {
        let faults = Faults::default();
        assert!(!faults.refuse_now());
        faults.refuse_connections_for(Duration::from_secs(60));
        assert!(faults.refuse_now());
        assert!(faults.refuse_now());
        assert_eq!(faults.refused(), 2);
        faults.refuse_connections_for(Duration::ZERO);
        assert!(!faults.refuse_now());
    }

    #[test]
    fn signals_reach_every_subscriber() {
        let faults = Faults::default();
        let (mut a, mut b) = (faults.subscribe(), faults.subscribe());
        faults.detach_receivers("Orders", "3");
        faults.detach_receivers("orders", "not a partition");
        faults.drop_connections();
        for rx in [&mut a, &mut b] {
            assert_eq!(
                rx.try_recv().unwrap(),
                Signal::Detach {
                    hub: "orders".into(),
                    partition: Some(3)
                }
            );
            assert_eq!(rx.try_recv().unwrap(), Signal::Drop);
        }
    }
}
