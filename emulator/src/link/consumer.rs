//! Receiver links on `<hub>/ConsumerGroups/<group>/Partitions/<id>`: start position from the
//! selector filter, owner levels (`com.microsoft:epoch`), runtime metrics, and delivery.

use std::sync::Arc;

use fe2o3_amqp_types::performatives::Attach;
use serde_amqp::primitives::{OrderedMap, Symbol, Timestamp};
use serde_amqp::value::Value;

use super::address::{Address, parse_address};
use super::filter::{parse_selector, selector_expression};
use super::publisher::settle_mode_code;
use super::{MAX_MESSAGE_SIZE, echo_terminus};
use crate::broker::{Hub, lock, now_ms};
use crate::partition_log::StartPosition;
use crate::session::{Output, Session};
use crate::wire::message::encode_section;
use crate::wire::message::section::DELIVERY_ANNOTATIONS;
use crate::wire::performative::{AmqpError, AttachOut, condition};

/// Link property carrying the owner level.
pub const EPOCH_PROPERTY: &str = "com.microsoft:epoch";
/// Capability asking for last-enqueued-event metrics on every delivery.
pub const RUNTIME_METRIC_CAPABILITY: &str = "com.microsoft:enable-receiver-runtime-metric";
/// Events read from the log per pump of one link, so one busy link cannot starve the others.
const PUMP_BATCH: usize = 64;

/// A receiver link reading one partition for one consumer group.
#[derive(Debug)]
pub struct ConsumerLink {
    /// Broker-wide link id (owner-level bookkeeping).
    pub link_id: u64,
    /// The hub.
    pub hub: Arc<Hub>,
    /// Consumer group (lower-case).
    pub group: String,
    /// Partition index.
    pub partition: usize,
    /// Next sequence number to deliver.
    pub next_sequence: i64,
    /// Credit the client granted.
    pub credit: u32,
    /// Our delivery count.
    pub delivery_count: u32,
    /// Send deliveries settled (client chose sender-settle-mode settled).
    pub settled: bool,
    /// Add runtime metrics as delivery annotations.
    pub runtime_metrics: bool,
    /// The client asked to drain its credit.
    pub drain: bool,
}

/// What the attach asked for, resolved against the broker.
#[derive(Debug)]
pub struct ConsumerRequest {
    /// The hub.
    pub hub: Arc<Hub>,
    /// Consumer group (lower-case).
    pub group: String,
    /// Partition index.
    pub partition: usize,
    /// Owner level, if any.
    pub owner_level: Option<i64>,
    /// Where to start.
    pub position: StartPosition,
    /// Runtime metrics requested.
    pub runtime_metrics: bool,
}

fn not_found(what: String) -> AmqpError {
    AmqpError::new(condition::NOT_FOUND, what)
}

/// Validates a consumer attach: address, hub, group, partition, filter, owner level.
pub fn resolve_consumer(
    attach: &Attach,
    broker: &crate::broker::Broker,
) -> Result<ConsumerRequest, AmqpError> {
    let source = attach.source.as_deref();
    let address = source.and_then(|s| s.address.clone()).unwrap_or_default();
    let Some(Address::ConsumerPartition {
        hub,
        group,
        partition,
    }) = parse_address(&address)
    else {
        return Err(not_found(format!(
            "the messaging entity {address:?} could not be found; receive from \
             <hub>/ConsumerGroups/<group>/Partitions/<id>"
        )));
    };
    let found = broker.hub(&hub).ok_or_else(|| {
        not_found(format!(
            "the messaging entity (event hub) {hub:?} could not be found"
        ))
    })?;
    if !found.has_group(&group) {
        return Err(not_found(format!(
            "consumer group {group:?} does not exist in event hub {hub:?}"
        )));
    }
    let index = found.partition_index(&partition).ok_or_else(|| {
        not_found(format!(
            "partition {partition:?} does not exist in event hub {hub:?}"
        ))
    })?;
    let position = match source
        .and_then(|s| s.filter.as_ref())
        .and_then(selector_expression)
    {
        Some(expr) => parse_selector(&expr).map_err(|e| AmqpError::new(condition::INVALID_FIELD, e))?,
        None => StartPosition::Earliest,
    };
    let owner_level = match attach
        .properties
        .as_ref()
        .and_then(|p| p.get(&Symbol::from(EPOCH_PROPERTY)))
    {
        None | Some(Value::Null) => None,
        Some(Value::Long(v)) => Some(*v),
        Some(Value::Int(v)) => Some(i64::from(*v)),
        Some(Value::Uint(v)) => Some(i64::from(*v)),
        Some(Value::Ulong(v)) => Some(i64::try_from(*v).unwrap_or(i64::MAX)),
        Some(other) => {
            return Err(AmqpError::new(
                condition::INVALID_FIELD,
                format!("link property {EPOCH_PROPERTY} must be a long, got {other:?}"),
            ));
        }
    };
    let runtime_metrics = attach
        .desired_capabilities
        .as_ref()
        .is_some_and(|caps| caps.0.iter().any(|c| c.0 == RUNTIME_METRIC_CAPABILITY));
    Ok(ConsumerRequest {
        hub: found,
        group: group.to_ascii_lowercase(),
        partition: index,
        owner_level,
        position,
        runtime_metrics,
    })
}

/// Our attach answering an accepted consumer.
pub fn consumer_attach_response(attach: &Attach, request: &ConsumerRequest) -> AttachOut {
    let mut properties = Vec::new();
    if let Some(level) = request.owner_level {
        properties.push((EPOCH_PROPERTY.to_owned(), Value::Long(level)));
    }
    AttachOut {
        name: attach.name.clone(),
        handle: attach.handle.0,
        role_receiver: false,
        snd_settle_mode: settle_mode_code(&attach.snd_settle_mode),
        rcv_settle_mode: match attach.rcv_settle_mode {
            fe2o3_amqp_types::definitions::ReceiverSettleMode::First => 0,
            fe2o3_amqp_types::definitions::ReceiverSettleMode::Second => 1,
        },
        source: echo_terminus(attach.source.as_deref()),
        target: echo_terminus(attach.target.as_deref()),
        initial_delivery_count: Some(0),
        max_message_size: MAX_MESSAGE_SIZE,
        offered_capabilities: if request.runtime_metrics {
            vec![RUNTIME_METRIC_CAPABILITY.to_owned()]
        } else {
            vec![]
        },
        properties,
    }
}

impl ConsumerLink {
    /// Sends what credit and the session window allow; returns true when more is ready.
    pub fn pump(&mut self, handle: u32, session: &mut Session, out: &mut Output) -> Result<bool, AmqpError> {
        if self.credit == 0 {
            return Ok(false);
        }
        let Some(log) = self.hub.partitions.get(self.partition) else {
            return Ok(false);
        };
        let max = PUMP_BATCH.min(self.credit as usize);
        let (events, info) = {
            let log = lock(log);
            let events = log.read(self.next_sequence, max);
            (events, log.info())
        };
        let metrics = if self.runtime_metrics && !events.is_empty() {
            let mut map = OrderedMap::new();
            let sym = |s: &str| Value::Symbol(Symbol::from(s));
            map.insert(
                sym("last_enqueued_sequence_number"),
                Value::Long(info.last_enqueued_sequence_number),
            );
            map.insert(
                sym("last_enqueued_offset"),
                Value::String(info.last_enqueued_offset.to_string()),
            );
            map.insert(
                sym("last_enqueued_time_utc"),
                Value::Timestamp(Timestamp::from_milliseconds(info.last_enqueued_time_ms)),
            );
            map.insert(
                sym("runtime_info_retrieval_time_utc"),
                Value::Timestamp(Timestamp::from_milliseconds(now_ms())),
            );
            encode_section(DELIVERY_ANNOTATIONS, Value::Map(map))
                .map_err(|e| AmqpError::new(condition::INTERNAL_ERROR, e.to_string()))?
        } else {
            Vec::new()
        };
        for event in &events {
            let parts = [
                event.encoded.head.as_slice(),
                metrics.as_slice(),
                event.encoded.tail.as_slice(),
            ];
            if !session.send_delivery(out, handle, self.settled, &parts)? {
                return Ok(false);
            }
            self.next_sequence = event.sequence_number + 1;
            self.credit -= 1;
            self.delivery_count = self.delivery_count.wrapping_add(1);
        }
        if events.len() < max {
            // Caught up with the log.
            if self.drain && self.credit > 0 {
                self.delivery_count = self.delivery_count.wrapping_add(self.credit);
                self.credit = 0;
                self.drain = false;
                let flow = session.flow(Some((handle, self.delivery_count, 0, 0)), false);
                out.frame(session.channel, &flow, &[])?;
            }
            return Ok(false);
        }
        Ok(self.credit > 0)
    }
}
