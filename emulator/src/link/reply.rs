//! Reply links: the client's receivers on `$cbs` and `$management`, and routing responses.

use std::collections::{HashMap, VecDeque};

use fe2o3_amqp_types::performatives::Attach;

use super::address::Address;
use super::publisher::Reply;
use super::{MAX_MESSAGE_SIZE, echo_terminus};
use crate::limits::{MAX_PENDING_REPLIES, MAX_PENDING_REPLY_BYTES};
use crate::session::{Link, Output, Session};
use crate::wire::performative::{AmqpError, AttachOut};

/// A reply link: the client's receiver on `$cbs` or `$management`.
#[derive(Debug)]
pub struct ReplyLink {
    /// `$cbs` or `$management`.
    pub node: Address,
    /// The client's target address (where replies are addressed).
    pub reply_address: Option<String>,
    /// Credit the client granted.
    pub credit: u32,
    /// Our delivery count.
    pub delivery_count: u32,
    /// Responses waiting for credit (bounded per connection, see [`crate::limits`]).
    pub pending: VecDeque<Vec<u8>>,
}

/// Queues a response on the client's reply link: the one whose address matches reply-to,
/// else any reply link on the same node, preferring the request's session. A connection whose
/// reply links already hold [`MAX_PENDING_REPLIES`] responses or [`MAX_PENDING_REPLY_BYTES`]
/// (the client sends requests without giving credit to read the answers) loses the response.
pub fn route_reply(sessions: &mut HashMap<u16, Session>, channel: u16, reply: Reply) {
    let mut order: Vec<u16> = vec![channel];
    order.extend(sessions.keys().copied().filter(|c| *c != channel));
    let mut fallback: Option<(u16, u32)> = None;
    let mut exact: Option<(u16, u32)> = None;
    let (mut held, mut held_bytes) = (0usize, 0usize);
    for ch in order {
        let Some(session) = sessions.get(&ch) else {
            continue;
        };
        for (handle, link) in &session.links {
            if let Link::Reply(r) = link {
                held += r.pending.len();
                held_bytes += r.pending.iter().map(Vec::len).sum::<usize>();
                if r.node != reply.node {
                    continue;
                }
                if reply.reply_to.is_some() && r.reply_address == reply.reply_to {
                    exact = exact.or(Some((ch, *handle)));
                }
                fallback = fallback.or(Some((ch, *handle)));
            }
        }
    }
    if held >= MAX_PENDING_REPLIES || held_bytes.saturating_add(reply.message.len()) > MAX_PENDING_REPLY_BYTES
    {
        tracing::debug!(
            held,
            held_bytes,
            "reply links hold too many responses; one dropped"
        );
        return;
    }
    match exact.or(fallback) {
        Some((ch, handle)) => {
            if let Some(Link::Reply(r)) = sessions.get_mut(&ch).and_then(|s| s.links.get_mut(&handle)) {
                r.pending.push_back(reply.message);
            }
        }
        None => tracing::debug!(reply_to = ?reply.reply_to, "no reply link for a response; dropped"),
    }
}

/// Accepts a reply link on `node`.
pub fn reply_link(attach: &Attach, node: Address) -> (Link, AttachOut, Option<(u32, u32)>) {
    let reply_address = attach.target.as_ref().and_then(|t| match t.as_ref() {
        fe2o3_amqp_types::messaging::TargetArchetype::Target(t) => t.address.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    });
    let response = AttachOut {
        name: attach.name.clone(),
        handle: attach.handle.0,
        role_receiver: false,
        snd_settle_mode: crate::link::publisher::settle_mode_code(&attach.snd_settle_mode),
        rcv_settle_mode: 0,
        source: echo_terminus(attach.source.as_deref()),
        target: echo_terminus(attach.target.as_deref()),
        initial_delivery_count: Some(0),
        max_message_size: MAX_MESSAGE_SIZE,
        offered_capabilities: vec![],
        properties: vec![],
    };
    let link = ReplyLink {
        node,
        reply_address,
        credit: 0,
        delivery_count: 0,
        pending: std::collections::VecDeque::new(),
    };
    (Link::Reply(link), response, None)
}

/// Sends queued responses while the client's credit lasts.
pub fn pump_replies(
    r: &mut ReplyLink,
    handle: u32,
    session: &mut Session,
    out: &mut Output,
) -> Result<bool, AmqpError> {
    while r.credit > 0 {
        let Some(message) = r.pending.front() else { break };
        if !session.send_delivery(out, handle, true, &[message.as_slice()])? {
            return Ok(false);
        }
        r.pending.pop_front();
        r.credit -= 1;
        r.delivery_count = r.delivery_count.wrapping_add(1);
    }
    Ok(false)
}
