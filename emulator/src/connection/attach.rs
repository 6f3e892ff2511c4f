//! Attach: accepting publisher, consumer and reply links, or refusing them with an error.

use std::sync::Arc;

use fe2o3_amqp_types::definitions::{Role, SenderSettleMode};
use fe2o3_amqp_types::performatives::Attach;
use serde_amqp::value::Value;
use tokio::sync::{Notify, mpsc};

use super::REFUSAL_DETACH_DELAY;
use super::dispatch::{Connection, Step};
use crate::auth::unauthorized;
use crate::broker::{Broker, ConnectionCommand, lock, now_ms};
use crate::limits::MAX_LINKS;
use crate::link::MAX_MESSAGE_SIZE;
use crate::link::address::{Address, parse_address};
use crate::link::consumer::{ConsumerLink, consumer_attach_response, resolve_consumer};
use crate::link::publisher::attach_publisher;
use crate::link::reply::reply_link;
use crate::session::{HANDLE_MAX, Link};
use crate::wire::performative::{self as perf, AmqpError, AttachOut, condition};

impl Connection {
    pub(super) fn on_attach(&mut self, channel: u16, attach: &Attach) -> Result<Step, AmqpError> {
        let address = node_address(attach);
        let span =
            tracing::debug_span!("amqp.attach", name = %attach.name, role = ?attach.role, address = ?address);
        let _guard = span.enter();
        let handle = attach.handle.0;
        let id = self.id;
        let broker = Arc::clone(&self.broker);
        let notify = Arc::clone(&self.notify);
        let commands = self.commands.clone();
        let links: usize = self
            .sessions
            .values()
            .map(|s| s.links.len() + s.refusals.len())
            .sum();
        let session = self.session(channel)?;
        if handle > HANDLE_MAX {
            // AMQP 1.0, 2.7.3: a handle above the announced handle-max is a framing error.
            return Err(AmqpError::new(
                condition::FRAMING_ERROR,
                format!("attach on handle {handle}, above the session's handle-max {HANDLE_MAX}"),
            ));
        }
        if session.links.contains_key(&handle) || session.refusals.contains_key(&handle) {
            return Err(AmqpError::new(
                "amqp:session:handle-in-use",
                format!("handle {handle} is in use"),
            ));
        }
        let entity = !matches!(
            parse_address(address.as_deref().unwrap_or_default()),
            Some(Address::Cbs | Address::Management)
        );
        if entity && broker.faults.hold_attach_now() {
            tracing::debug!("attach left unanswered (fault injection)");
            return Ok(Step::Continue);
        }
        let accepted = links_left(links)
            .and_then(|()| self.authorize(address.as_deref()))
            .and_then(|()| match attach.role {
                Role::Sender => attach_publisher(attach, &broker).map(|(link, response)| {
                    let credit = link.credit;
                    let count = link.delivery_count;
                    (Link::Publisher(link), response, Some((count, credit)))
                }),
                Role::Receiver => match parse_address(address.as_deref().unwrap_or_default()) {
                    Some(node @ (Address::Cbs | Address::Management)) => Ok(reply_link(attach, node)),
                    _ => attach_consumer(attach, &broker, id, &notify, commands)
                        .map(|(link, response)| (link, response, None)),
                },
            });
        match accepted {
            Ok((link, response, grant)) => {
                self.out.frame(channel, &perf::attach(&response), &[])?;
                let session = self.session(channel)?;
                if let Some((count, credit)) = grant {
                    let flow = session.flow(Some((handle, count, credit, 0)), false);
                    self.out.frame(channel, &flow, &[])?;
                }
                self.session(channel)?.links.insert(handle, link);
            }
            Err(error) => {
                tracing::debug!(condition = %error.condition, description = %error.description, "attach refused");
                // Refuse as the spec says: attach with a null terminus, then detach with the error.
                let refusal = AttachOut {
                    name: attach.name.clone(),
                    handle,
                    role_receiver: matches!(attach.role, Role::Sender),
                    snd_settle_mode: 0,
                    rcv_settle_mode: 0,
                    source: Value::Null,
                    target: Value::Null,
                    initial_delivery_count: matches!(attach.role, Role::Receiver).then_some(0),
                    max_message_size: MAX_MESSAGE_SIZE,
                    offered_capabilities: vec![],
                    properties: vec![],
                };
                self.out.frame(channel, &perf::attach(&refusal), &[])?;
                let deadline = std::time::Instant::now() + REFUSAL_DETACH_DELAY;
                self.session(channel)?.refusals.insert(handle, (error, deadline));
            }
        }
        Ok(Step::Continue)
    }
}

impl Connection {
    /// An entity link needs a put-token covering the entity (or a connection that may touch
    /// everything); `$cbs` and `$management` links are always open (management requests are
    /// checked one by one). An address the emulator does not serve is left to the attach code,
    /// which refuses it as not found.
    fn authorize(&self, address: Option<&str>) -> Result<(), AmqpError> {
        let (entity, claim) = match parse_address(address.unwrap_or_default()) {
            None | Some(Address::Cbs | Address::Management) => return Ok(()),
            Some(Address::Hub { hub }) => (hub, "Send"),
            Some(Address::Partition { hub, partition }) => (format!("{hub}/Partitions/{partition}"), "Send"),
            Some(Address::ConsumerPartition {
                hub,
                group,
                partition,
            }) => (
                format!("{hub}/ConsumerGroups/{group}/Partitions/{partition}"),
                "Listen",
            ),
        };
        if self.auth.permits(&entity, now_ms() / 1000) {
            Ok(())
        } else {
            Err(AmqpError::new(
                condition::UNAUTHORIZED,
                unauthorized(&entity, claim),
            ))
        }
    }
}

/// A connection holds at most [`MAX_LINKS`] links; one more is refused (not the connection).
fn links_left(held: usize) -> Result<(), AmqpError> {
    if held >= MAX_LINKS {
        return Err(AmqpError::new(
            condition::RESOURCE_LIMIT,
            format!("the connection already holds {held} links; at most {MAX_LINKS} are allowed"),
        ));
    }
    Ok(())
}

/// The node a link points at: its target for a link the client sends on, its source for one
/// it receives on.
fn node_address(attach: &Attach) -> Option<String> {
    match attach.role {
        Role::Sender => attach.target.as_ref().and_then(|t| match t.as_ref() {
            fe2o3_amqp_types::messaging::TargetArchetype::Target(t) => t.address.clone(),
            #[allow(unreachable_patterns)]
            _ => None,
        }),
        Role::Receiver => attach.source.as_ref().and_then(|s| s.address.clone()),
    }
}

/// Accepts (or refuses) a consumer link: registers it under the owner-level and quota rules,
/// and positions it in its partition.
fn attach_consumer(
    attach: &Attach,
    broker: &Arc<Broker>,
    connection: u64,
    notify: &Arc<Notify>,
    commands: mpsc::UnboundedSender<ConnectionCommand>,
) -> Result<(Link, AttachOut), AmqpError> {
    let request = resolve_consumer(attach, broker)?;
    let link_id = broker.next_id();
    request
        .hub
        .register_receiver(
            &request.group,
            request.partition,
            (link_id, &attach.name),
            request.owner_level,
            commands,
        )
        .map_err(|refused| AmqpError::new(refused.condition(), refused.description()))?;
    let next_sequence = match request.hub.partitions.get(request.partition) {
        Some(log) => {
            let mut log = lock(log);
            log.add_waiter(connection, notify);
            log.resolve(request.position)
        }
        None => 0,
    };
    let response = consumer_attach_response(attach, &request);
    let link = ConsumerLink {
        link_id,
        hub: request.hub,
        group: request.group,
        partition: request.partition,
        next_sequence,
        credit: 0,
        delivery_count: 0,
        settled: matches!(attach.snd_settle_mode, SenderSettleMode::Settled),
        runtime_metrics: request.runtime_metrics,
        drain: false,
    };
    tracing::debug!(next_sequence, owner_level = ?request.owner_level, "consumer attached");
    Ok((Link::Consumer(Box::new(link)), response))
}
