//! The namespace: hubs, their partitions and consumer groups, publishing, owner levels.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::config::{EmulatorConfig, HubConfig};
use crate::hash::partition_for_key;
use crate::partition_log::PartitionLog;
use crate::wire::codec::CodecError;
use crate::wire::message::{Stamp, message_annotations, partition_key, stamp_event};
use crate::wire::performative::condition;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Locks a mutex, recovering the data if a holder panicked (the log stays consistent: every
/// mutation completes before any call that could panic).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A message to a connection from outside it.
#[derive(Debug, Clone)]
pub enum ConnectionCommand {
    /// A receiver with an equal or higher owner level took the partition: detach this link.
    Stolen {
        /// The link's broker-wide id.
        link_id: u64,
        /// Why, for the error description.
        description: String,
    },
}

/// One active receiver on a (hub, group, partition).
#[derive(Debug, Clone)]
struct ActiveReceiver {
    link_id: u64,
    /// The link name the client chose, listed when the quota refuses a receiver.
    name: String,
    owner_level: Option<i64>,
    connection: mpsc::UnboundedSender<ConnectionCommand>,
}

/// One event hub.
#[derive(Debug)]
pub struct Hub {
    /// Hub name (lower-case).
    pub name: String,
    /// Creation time, ms.
    pub created_ms: i64,
    /// Consumer group names.
    pub consumer_groups: Vec<String>,
    /// Partition logs; ids are "0".."n-1".
    pub partitions: Vec<Mutex<PartitionLog>>,
    round_robin: AtomicUsize,
    /// Receivers by (group, partition).
    receivers: Mutex<BTreeMap<(String, usize), Vec<ActiveReceiver>>>,
}

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message could not be read.
    #[error("malformed message: {0}")]
    Malformed(#[from] CodecError),
}

/// Receivers one partition of one consumer group serves at once, as on the service.
pub const MAX_RECEIVERS_PER_PARTITION: usize = 5;

/// Why a receiver could not attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverRefused {
    /// A receiver with a higher owner level (or any owner level, for one without) holds the
    /// partition: `amqp:link:stolen`, as the service answers.
    OwnerLevel(String),
    /// [`MAX_RECEIVERS_PER_PARTITION`] receivers without an owner level are already attached:
    /// `amqp:resource-limit-exceeded` (the SDKs' `QuotaExceeded`).
    QuotaExceeded(String),
}

impl ReceiverRefused {
    /// The AMQP error condition the attach is refused with.
    pub fn condition(&self) -> &'static str {
        match self {
            ReceiverRefused::OwnerLevel(_) => condition::LINK_STOLEN,
            ReceiverRefused::QuotaExceeded(_) => condition::RESOURCE_LIMIT,
        }
    }

    /// The error description.
    pub fn description(&self) -> &str {
        match self {
            ReceiverRefused::OwnerLevel(d) | ReceiverRefused::QuotaExceeded(d) => d,
        }
    }
}

impl Hub {
    fn new(name: &str, config: &HubConfig, emulator: &EmulatorConfig) -> Self {
        Self {
            name: name.to_owned(),
            created_ms: now_ms(),
            consumer_groups: config.consumer_groups.clone(),
            partitions: (0..config.partitions)
                .map(|_| Mutex::new(PartitionLog::new(emulator.retention)))
                .collect(),
            round_robin: AtomicUsize::new(0),
            receivers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Parses a partition id ("0".."n-1").
    pub fn partition_index(&self, id: &str) -> Option<usize> {
        let index: usize = id.parse().ok()?;
        (index < self.partitions.len() && index.to_string() == id).then_some(index)
    }

    /// Whether the hub has this consumer group (case-insensitive).
    pub fn has_group(&self, group: &str) -> bool {
        self.consumer_groups.iter().any(|g| g.eq_ignore_ascii_case(group))
    }

    /// Publishes the event messages of one transfer. With `partition` None, a partition key
    /// (from the event or `batch_key`) picks the partition by the service's hash; otherwise the
    /// hub's round robin does. All events of one transfer go to one partition, as on the
    /// service. Returns the partition used and the last sequence number.
    pub fn publish(
        &self,
        partition: Option<usize>,
        events: &[&[u8]],
        batch_key: Option<String>,
    ) -> Result<(usize, i64), PublishError> {
        let mut keyed = Vec::with_capacity(events.len());
        for message in events {
            let key = partition_key(&message_annotations(message)?).or_else(|| batch_key.clone());
            keyed.push((*message, key));
        }
        let count = self.partitions.len().max(1);
        let index = match (partition, keyed.first().and_then(|(_, k)| k.as_deref())) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => self.round_robin.fetch_add(1, Ordering::Relaxed) % count,
        };
        let Some(log) = self.partitions.get(index) else {
            return Err(PublishError::Malformed(CodecError::Unexpected(
                "partition out of range",
            )));
        };
        let now = now_ms();
        let mut log = lock(log);
        let mut last = -1;
        for (message, key) in keyed {
            last = log.append(now, |sequence_number, offset| {
                stamp_event(
                    message,
                    &Stamp {
                        sequence_number,
                        offset,
                        enqueued_ms: now,
                        partition_key: key,
                    },
                )
            })?;
        }
        log.wake_waiters();
        Ok((index, last))
    }

    /// Registers a receiver, applying owner levels: a receiver with an owner level equal to or
    /// higher than every active one takes the partition (the others are told they were
    /// stolen); a lower one, or one without a level while a level holds, is refused. Without
    /// owner levels at most [`MAX_RECEIVERS_PER_PARTITION`] receivers share a partition of a
    /// group; one more is refused with the service's message, naming the attached links.
    pub fn register_receiver(
        &self,
        group: &str,
        partition: usize,
        link: (u64, &str),
        owner_level: Option<i64>,
        connection: mpsc::UnboundedSender<ConnectionCommand>,
    ) -> Result<(), ReceiverRefused> {
        let (link_id, name) = link;
        let mut receivers = lock(&self.receivers);
        let active = receivers
            .entry((group.to_ascii_lowercase(), partition))
            .or_default();
        let highest = active.iter().filter_map(|r| r.owner_level).max();
        match (owner_level, highest) {
            (Some(mine), Some(theirs)) if mine < theirs => {
                return Err(ReceiverRefused::OwnerLevel(format!(
                    "a receiver with a higher owner level ({theirs}) already exists on partition \
                     {partition} of consumer group {group}; a receiver with owner level {mine} cannot be created"
                )));
            }
            (None, Some(theirs)) => {
                return Err(ReceiverRefused::OwnerLevel(format!(
                    "a receiver with owner level {theirs} holds partition {partition} of consumer \
                     group {group}; a receiver without an owner level cannot be created"
                )));
            }
            (Some(mine), _) => {
                for old in active.drain(..) {
                    let _ = old.connection.send(ConnectionCommand::Stolen {
                        link_id: old.link_id,
                        description: format!(
                            "a new receiver with owner level {mine} took partition {partition} of \
                             consumer group {group}; this receiver (owner level {}) is disconnected",
                            old.owner_level
                                .map_or_else(|| "none".to_owned(), |l| l.to_string())
                        ),
                    });
                }
            }
            (None, None) if active.len() >= MAX_RECEIVERS_PER_PARTITION => {
                let names: Vec<&str> = active.iter().map(|r| r.name.as_str()).collect();
                return Err(ReceiverRefused::QuotaExceeded(format!(
                    "Exceeded the maximum number of allowed receivers per partition in a consumer \
                     group which is {MAX_RECEIVERS_PER_PARTITION}. List of connected receivers - {} \
                     (partition {partition} of consumer group {group})",
                    names.join(", ")
                )));
            }
            (None, None) => {}
        }
        active.push(ActiveReceiver {
            link_id,
            name: name.to_owned(),
            owner_level,
            connection,
        });
        Ok(())
    }

    /// Forgets a receiver (link detached or connection gone).
    pub fn unregister_receiver(&self, group: &str, partition: usize, link_id: u64) {
        let mut receivers = lock(&self.receivers);
        let key = (group.to_ascii_lowercase(), partition);
        if let Some(active) = receivers.get_mut(&key) {
            active.retain(|r| r.link_id != link_id);
            if active.is_empty() {
                receivers.remove(&key);
            }
        }
    }
}

/// All hubs of the emulated namespace.
#[derive(Debug)]
pub struct Broker {
    hubs: BTreeMap<String, Arc<Hub>>,
    /// The configuration it was built from.
    pub config: EmulatorConfig,
    /// Fault injection knobs (all off unless a test turns them on).
    pub faults: crate::faults::Faults,
    next_id: AtomicU64,
}

impl Broker {
    /// Builds the namespace from a validated configuration.
    pub fn new(config: EmulatorConfig) -> Self {
        let hubs = config
            .hubs
            .iter()
            .map(|(name, hub)| (name.clone(), Arc::new(Hub::new(name, hub, &config))))
            .collect();
        Self {
            hubs,
            config,
            faults: crate::faults::Faults::default(),
            next_id: AtomicU64::new(1),
        }
    }

    /// A hub by name (case-insensitive).
    pub fn hub(&self, name: &str) -> Option<Arc<Hub>> {
        self.hubs.get(&name.to_ascii_lowercase()).cloned()
    }

    /// A fresh broker-wide id (connections, links).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_hub_spec;

    fn hub() -> Arc<Hub> {
        let mut config = EmulatorConfig::default();
        let (name, h) = parse_hub_spec("h:4:cg").unwrap();
        config.hubs.insert(name, h);
        Broker::new(config).hub("H").unwrap()
    }

    #[test]
    fn owner_levels() {
        let hub = hub();
        let (tx1, mut rx1) = mpsc::unbounded_channel();
        let (tx2, _rx2) = mpsc::unbounded_channel();
        hub.register_receiver("cg", 0, (1, "r1"), None, tx1.clone())
            .unwrap();
        hub.register_receiver("cg", 0, (2, "r2"), None, tx1.clone())
            .unwrap();
        // An owner level takes the partition from receivers without one.
        hub.register_receiver("cg", 0, (3, "r3"), Some(1), tx2.clone())
            .unwrap();
        assert!(matches!(
            rx1.try_recv(),
            Ok(ConnectionCommand::Stolen { link_id: 1, .. })
        ));
        assert!(matches!(
            rx1.try_recv(),
            Ok(ConnectionCommand::Stolen { link_id: 2, .. })
        ));
        // Lower and none are refused; equal steals.
        assert!(
            hub.register_receiver("cg", 0, (4, "r4"), Some(0), tx1.clone())
                .is_err()
        );
        assert!(
            hub.register_receiver("CG", 0, (5, "r5"), None, tx1.clone())
                .is_err()
        );
        hub.register_receiver("cg", 0, (6, "r6"), Some(1), tx1.clone())
            .unwrap();
        // Other partitions and groups are independent.
        hub.register_receiver("cg", 1, (7, "r7"), None, tx1.clone())
            .unwrap();
        hub.register_receiver("$default", 0, (8, "r8"), None, tx1)
            .unwrap();
        hub.unregister_receiver("cg", 0, 6);
        hub.register_receiver("cg", 0, (9, "r9"), None, tx2).unwrap();
    }

    #[test]
    fn at_most_five_receivers_without_owner_level_share_a_partition() {
        let hub = hub();
        let (tx, mut rx) = mpsc::unbounded_channel();
        for id in 1..=5 {
            hub.register_receiver("cg", 0, (id, &format!("r{id}")), None, tx.clone())
                .unwrap();
        }
        let refused = hub
            .register_receiver("cg", 0, (6, "r6"), None, tx.clone())
            .unwrap_err();
        assert_eq!(refused.condition(), condition::RESOURCE_LIMIT);
        assert!(
            refused.description().starts_with(
                "Exceeded the maximum number of allowed receivers per partition in a consumer group which is 5"
            ) && refused.description().contains("r1, r2, r3, r4, r5"),
            "{refused:?}"
        );
        // Another partition, another group: their own quota.
        hub.register_receiver("cg", 1, (7, "r7"), None, tx.clone())
            .unwrap();
        hub.register_receiver("$default", 0, (8, "r8"), None, tx.clone())
            .unwrap();
        // One leaves, one more may come.
        hub.unregister_receiver("cg", 0, 3);
        hub.register_receiver("cg", 0, (9, "r9"), None, tx.clone())
            .unwrap();
        // An owner level still takes the partition from all five.
        hub.register_receiver("cg", 0, (10, "r10"), Some(0), tx).unwrap();
        let stolen: Vec<u64> = std::iter::from_fn(|| match rx.try_recv() {
            Ok(ConnectionCommand::Stolen { link_id, .. }) => Some(link_id),
            _ => None,
        })
        .collect();
        assert_eq!(stolen, vec![1, 2, 4, 5, 9]);
    }

    #[test]
    fn partition_ids_are_canonical() {
        let hub = hub();
        assert_eq!(hub.partition_index("3"), Some(3));
        assert_eq!(hub.partition_index("4"), None);
        assert_eq!(hub.partition_index("03"), None);
        assert_eq!(hub.partition_index("x"), None);
        assert!(hub.has_group("CG"));
        assert!(!hub.has_group("nope"));
    }
}
