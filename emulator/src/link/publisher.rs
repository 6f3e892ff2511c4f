//! Links on which the client sends: events to a hub or partition, `$cbs` and `$management`
//! requests. Multi-frame deliveries are reassembled up to [`MAX_MESSAGE_SIZE`] (events) or
//! [`MAX_REQUEST_SIZE`] (requests); a larger one is dropped as it arrives and rejected.

use std::sync::Arc;

use fe2o3_amqp_types::definitions::SenderSettleMode;
use fe2o3_amqp_types::messaging::TargetArchetype;
use fe2o3_amqp_types::performatives::{Attach, Transfer};

use super::address::{Address, parse_address};
use super::{MAX_MESSAGE_SIZE, echo_terminus};
use crate::auth::{Authorization, Grant};
use crate::broker::{Broker, Hub, now_ms};
use crate::cbs::{CbsResponse, handle_put_token};
use crate::limits::MAX_REQUEST_SIZE;
use crate::management::handle_read;
use crate::wire::message::{
    Request, encode_response, event_messages, message_annotations, parse_request, partition_key,
};
use crate::wire::performative::{AmqpError, AttachOut, Outcome, condition};

/// Credit granted to a publishing client, topped up when half is used.
pub const PUBLISH_CREDIT: u32 = 1000;

/// What a publisher link feeds.
#[derive(Debug)]
pub enum PublishTarget {
    /// `$cbs` requests.
    Cbs,
    /// `$management` requests.
    Management,
    /// Events to a hub (`partition` None: round robin or partition key).
    Events {
        /// The hub.
        hub: Arc<Hub>,
        /// A fixed partition.
        partition: Option<usize>,
    },
}

#[derive(Debug)]
struct Partial {
    delivery_id: Option<u32>,
    settled: bool,
    message_format: u32,
    buf: Vec<u8>,
    oversized: bool,
}

/// A link where the client is the sender.
#[derive(Debug)]
pub struct PublisherLink {
    /// Where its messages go.
    pub target: PublishTarget,
    /// Deliveries received (the link's delivery-count).
    pub delivery_count: u32,
    /// Credit left.
    pub credit: u32,
    partial: Option<Partial>,
}

/// A response to route to the client's reply link.
#[derive(Debug)]
pub struct Reply {
    /// `$cbs` or `$management`.
    pub node: Address,
    /// The request's reply-to.
    pub reply_to: Option<String>,
    /// The encoded response message.
    pub message: Vec<u8>,
    /// What an accepted `$cbs` put-token grants the connection.
    pub grant: Option<Grant>,
}

/// A complete delivery's result.
#[derive(Debug)]
pub struct Completed {
    /// Delivery id to settle (None when the client sent it settled).
    pub settle: Option<u32>,
    /// The outcome to report.
    pub outcome: Outcome,
    /// A response to route.
    pub reply: Option<Reply>,
}

/// Accepts (or refuses with an error) a link on which the client sends.
pub fn attach_publisher(attach: &Attach, broker: &Broker) -> Result<(PublisherLink, AttachOut), AmqpError> {
    let address = attach
        .target
        .as_deref()
        .and_then(|t| match t {
            TargetArchetype::Target(t) => t.address.clone(),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .unwrap_or_default();
    let target = match parse_address(&address) {
        Some(Address::Cbs) => PublishTarget::Cbs,
        Some(Address::Management) => PublishTarget::Management,
        Some(Address::Hub { hub }) => PublishTarget::Events {
            hub: find_hub(broker, &hub)?,
            partition: None,
        },
        Some(Address::Partition { hub, partition }) => {
            let found = find_hub(broker, &hub)?;
            let index = found.partition_index(&partition).ok_or_else(|| {
                AmqpError::new(
                    condition::NOT_FOUND,
                    format!("partition {partition:?} does not exist in event hub {hub:?}"),
                )
            })?;
            PublishTarget::Events {
                hub: found,
                partition: Some(index),
            }
        }
        Some(Address::ConsumerPartition { .. }) => {
            return Err(AmqpError::new(
                condition::NOT_ALLOWED,
                format!("{address:?} is a consumer address; send to <hub> or <hub>/Partitions/<id>"),
            ));
        }
        None => {
            return Err(AmqpError::new(
                condition::NOT_FOUND,
                format!("the messaging entity {address:?} could not be found"),
            ));
        }
    };
    let response = AttachOut {
        name: attach.name.clone(),
        handle: attach.handle.0,
        role_receiver: true,
        snd_settle_mode: settle_mode_code(&attach.snd_settle_mode),
        // We settle on receipt: mode first, whatever was asked (the receiver decides).
        rcv_settle_mode: 0,
        source: echo_terminus(attach.source.as_deref()),
        target: echo_terminus(attach.target.as_deref()),
        initial_delivery_count: None,
        max_message_size: match target {
            PublishTarget::Cbs | PublishTarget::Management => MAX_REQUEST_SIZE as u64,
            PublishTarget::Events { .. } => MAX_MESSAGE_SIZE,
        },
        offered_capabilities: vec![],
        properties: vec![],
    };
    let link = PublisherLink {
        target,
        delivery_count: attach.initial_delivery_count.unwrap_or(0),
        credit: PUBLISH_CREDIT,
        partial: None,
    };
    Ok((link, response))
}

/// The wire code of a sender settle mode.
pub fn settle_mode_code(mode: &SenderSettleMode) -> u8 {
    match mode {
        SenderSettleMode::Unsettled => 0,
        SenderSettleMode::Settled => 1,
        SenderSettleMode::Mixed => 2,
    }
}

fn find_hub(broker: &Broker, name: &str) -> Result<Arc<Hub>, AmqpError> {
    broker.hub(name).ok_or_else(|| {
        AmqpError::new(
            condition::NOT_FOUND,
            format!("the messaging entity (event hub) {name:?} could not be found"),
        )
    })
}

impl PublisherLink {
    /// Bytes held for the unfinished delivery.
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.buf.len())
    }

    /// Whether this link carries `$cbs` / `$management` requests (not events).
    pub fn is_request_link(&self) -> bool {
        matches!(self.target, PublishTarget::Cbs | PublishTarget::Management)
    }

    /// Largest delivery this link accepts.
    fn max_size(&self) -> usize {
        if self.is_request_link() {
            MAX_REQUEST_SIZE
        } else {
            usize::try_from(MAX_MESSAGE_SIZE).unwrap_or(usize::MAX)
        }
    }

    /// Handles one transfer frame; returns the result when a delivery is complete.
    pub fn on_transfer(
        &mut self,
        transfer: &Transfer,
        payload: &[u8],
        broker: &Broker,
        auth: &Authorization,
    ) -> Result<Option<Completed>, AmqpError> {
        if transfer.aborted {
            self.partial = None;
            return Ok(None);
        }
        let partial = match self.partial.take() {
            Some(p) => p,
            None => {
                if self.credit == 0 {
                    return Err(AmqpError::new(
                        "amqp:link:transfer-limit-exceeded",
                        "transfer received without link credit",
                    ));
                }
                self.credit -= 1;
                self.delivery_count = self.delivery_count.wrapping_add(1);
                Partial {
                    delivery_id: transfer.delivery_id,
                    settled: transfer.settled.unwrap_or(false),
                    message_format: transfer.message_format.unwrap_or(0),
                    buf: Vec::new(),
                    oversized: false,
                }
            }
        };
        let mut partial = partial;
        if transfer.settled == Some(true) {
            partial.settled = true;
        }
        let max_size = self.max_size();
        if partial.buf.len().saturating_add(payload.len()) > max_size {
            partial.oversized = true;
            partial.buf = Vec::new();
        } else if !partial.oversized {
            partial.buf.extend_from_slice(payload);
        }
        if transfer.more {
            self.partial = Some(partial);
            return Ok(None);
        }
        let settle = if partial.settled {
            None
        } else {
            partial.delivery_id
        };
        if partial.oversized {
            return Ok(Some(Completed {
                settle,
                outcome: Outcome::Rejected(AmqpError::new(
                    condition::MESSAGE_SIZE_EXCEEDED,
                    format!("the message exceeds the maximum size of {max_size} bytes"),
                )),
                reply: None,
            }));
        }
        let (outcome, reply) = self.process(&partial, broker, auth);
        Ok(Some(Completed {
            settle,
            outcome,
            reply,
        }))
    }

    fn process(&self, partial: &Partial, broker: &Broker, auth: &Authorization) -> (Outcome, Option<Reply>) {
        match &self.target {
            PublishTarget::Events { hub, partition } => {
                let _span =
                    tracing::debug_span!("amqp.publish", hub = %hub.name, partition = ?partition).entered();
                let result = event_messages(&partial.buf, partial.message_format).and_then(|events| {
                    let batch_key = if partial.message_format == crate::wire::message::BATCH_MESSAGE_FORMAT {
                        partition_key(&message_annotations(&partial.buf)?)
                    } else {
                        None
                    };
                    Ok((events, batch_key))
                });
                match result.map_err(|e| e.to_string()).and_then(|(events, key)| {
                    hub.publish(*partition, &events, key).map_err(|e| e.to_string())
                }) {
                    Ok((p, last)) => {
                        tracing::debug!(partition = p, last_sequence_number = last, "published");
                        (Outcome::Accepted, None)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "publish rejected");
                        (
                            Outcome::Rejected(AmqpError::new(condition::DECODE_ERROR, e)),
                            None,
                        )
                    }
                }
            }
            PublishTarget::Cbs | PublishTarget::Management => {
                let request = match parse_request(&partial.buf) {
                    Ok(r) => r,
                    Err(e) => {
                        return (
                            Outcome::Rejected(AmqpError::new(
                                condition::DECODE_ERROR,
                                format!("request: {e}"),
                            )),
                            None,
                        );
                    }
                };
                (Outcome::Accepted, self.answer(&request, broker, auth))
            }
        }
    }

    fn answer(&self, request: &Request, broker: &Broker, auth: &Authorization) -> Option<Reply> {
        let mut grant = None;
        let (node, encoded) = match &self.target {
            PublishTarget::Cbs => {
                let _span = tracing::debug_span!("amqp.cbs.put_token").entered();
                let mut r = handle_put_token(request, &broker.config.sas_key, broker.config.jwt_policy());
                if let Some(Err(e)) = r.grant.as_ref().map(|g| auth.can_grant(g, now_ms() / 1000)) {
                    r = CbsResponse {
                        status: 403,
                        description: format!("put-token: {}", e.description),
                        grant: None,
                    };
                }
                grant.clone_from(&r.grant);
                tracing::debug!(status = r.status, description = %r.description, "put-token answered");
                let cond = (r.status >= 400).then_some(match r.status {
                    401 => condition::UNAUTHORIZED,
                    403 => condition::RESOURCE_LIMIT,
                    _ => condition::INVALID_FIELD,
                });
                (
                    Address::Cbs,
                    encode_response(
                        &request.message_id,
                        r.status,
                        &r.description,
                        cond,
                        serde_amqp::value::Value::Null,
                    ),
                )
            }
            PublishTarget::Management => {
                let _span = tracing::debug_span!("amqp.management.read").entered();
                let r = handle_read(request, broker, auth);
                tracing::debug!(status = r.status, description = %r.description, "management answered");
                (
                    Address::Management,
                    encode_response(
                        &request.message_id,
                        r.status,
                        &r.description,
                        r.error_condition,
                        r.body,
                    ),
                )
            }
            PublishTarget::Events { .. } => return None,
        };
        match encoded {
            Ok(message) => Some(Reply {
                node,
                reply_to: request.reply_to.clone(),
                message,
                grant,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not encode a response");
                None
            }
        }
    }
}
