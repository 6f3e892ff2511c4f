//! Per-connection output buffer and per-session state: transfer ids, windows, links.

use std::collections::HashMap;

use serde_amqp::value::Value;

use crate::link::consumer::ConsumerLink;
use crate::link::publisher::PublisherLink;
use crate::wire::frame::{FRAME_TYPE_AMQP, encode_frame};
use crate::wire::performative::{AmqpError, FlowOut, condition, encode, flow, transfer};

/// Transfers we accept on a session before the next flow reopens the window.
pub const INCOMING_WINDOW: u32 = 5000;
/// Largest handle a client may use.
pub const HANDLE_MAX: u32 = 1023;

/// Frames waiting to be written, and the peer's frame size limit.
#[derive(Debug)]
pub struct Output {
    /// Encoded frames.
    pub buf: Vec<u8>,
    /// The peer's max-frame-size.
    pub remote_max_frame_size: u32,
}

impl Output {
    /// Queues one frame: a performative and an optional payload.
    ///
    /// # Errors
    /// The frame would exceed the peer's max-frame-size (`amqp:frame-size-too-small`: a
    /// performative cannot be split, AMQP 1.0 2.7.1); nothing is queued.
    pub fn frame(&mut self, channel: u16, performative: &Value, payload: &[u8]) -> Result<(), AmqpError> {
        tracing::trace!(channel, ?performative, payload = payload.len(), "frame out");
        let bytes = encode(performative)
            .map_err(|e| AmqpError::new(condition::INTERNAL_ERROR, format!("encoding a frame: {e}")))?;
        let size = 8 + bytes.len() + payload.len();
        if size > self.remote_max_frame_size as usize {
            return Err(AmqpError::new(
                condition::FRAME_SIZE_TOO_SMALL,
                format!(
                    "a {size}-byte frame does not fit the client's max-frame-size of {}",
                    self.remote_max_frame_size
                ),
            ));
        }
        encode_frame(&mut self.buf, FRAME_TYPE_AMQP, channel, &[&bytes, payload]);
        Ok(())
    }

    /// Queues a `close` carrying `error`, its description cut so the frame fits the peer's
    /// max-frame-size (at least 512 bytes, so the condition always fits).
    pub fn close(&mut self, error: Option<&AmqpError>) -> Result<(), AmqpError> {
        let Some(error) = error else {
            return self.frame(0, &crate::wire::performative::close(None), &[]);
        };
        let room = (self.remote_max_frame_size as usize)
            .saturating_sub(64 + error.condition.len())
            .max(64);
        let cut = AmqpError::new(
            &error.condition,
            crate::wire::message::truncate_text(&error.description, room).into_owned(),
        );
        self.frame(0, &crate::wire::performative::close(Some(&cut)), &[])
    }
}

/// A link and what it does.
#[derive(Debug)]
pub enum Link {
    /// The client sends: events, `$cbs` or `$management` requests.
    Publisher(PublisherLink),
    /// The client receives events from a partition.
    Consumer(Box<ConsumerLink>),
    /// The client receives `$cbs` / `$management` responses.
    Reply(crate::link::reply::ReplyLink),
}

/// One session.
#[derive(Debug)]
pub struct Session {
    /// Our channel (we use the client's channel number).
    pub channel: u16,
    /// Our next transfer id.
    pub next_outgoing_id: u32,
    /// The client's next transfer id, as we expect it.
    pub next_incoming_id: u32,
    /// Transfers we still accept before reopening the window.
    pub incoming_window_left: u32,
    /// Transfers the client still accepts from us.
    pub remote_incoming_window: u32,
    /// Our next delivery id.
    pub next_delivery_id: u32,
    /// Links by handle (ours equals the client's).
    pub links: HashMap<u32, Link>,
    /// Refused attaches waiting for the client's detach: handle → (error, deadline). The error
    /// goes on our detach, sent as the answer to the client's (clients detach at once when
    /// they see a null terminus) or at the deadline if the client stays silent.
    pub refusals: HashMap<u32, (AmqpError, std::time::Instant)>,
}

impl Session {
    /// A new session answering a begin with `remote_next_outgoing_id` and `remote_incoming_window`.
    pub fn new(channel: u16, remote_next_outgoing_id: u32, remote_incoming_window: u32) -> Self {
        Self {
            channel,
            next_outgoing_id: 0,
            next_incoming_id: remote_next_outgoing_id,
            incoming_window_left: INCOMING_WINDOW,
            remote_incoming_window,
            next_delivery_id: 0,
            links: HashMap::new(),
            refusals: HashMap::new(),
        }
    }

    /// A flow frame with the session fields and optional link fields.
    pub fn flow(&self, link: Option<(u32, u32, u32, u32)>, echo: bool) -> Value {
        flow(&FlowOut {
            next_incoming_id: self.next_incoming_id,
            incoming_window: self.incoming_window_left,
            next_outgoing_id: self.next_outgoing_id,
            outgoing_window: u32::MAX >> 1,
            link,
            echo,
        })
    }

    /// Counts one incoming transfer frame; reopens the window with a session flow when half used.
    pub fn on_incoming_transfer(&mut self, out: &mut Output) -> Result<(), AmqpError> {
        self.next_incoming_id = self.next_incoming_id.wrapping_add(1);
        if self.incoming_window_left == 0 {
            return Err(AmqpError::new(
                "amqp:session:window-violation",
                "transfer received with the session incoming window closed",
            ));
        }
        self.incoming_window_left -= 1;
        if self.incoming_window_left < INCOMING_WINDOW / 2 {
            self.incoming_window_left = INCOMING_WINDOW;
            out.frame(self.channel, &self.flow(None, false), &[])?;
        }
        Ok(())
    }

    /// Sends one delivery on `handle`, split into frames that fit the peer's max-frame-size.
    /// Returns false (sending nothing) when the session window cannot take all its frames.
    pub fn send_delivery(
        &mut self,
        out: &mut Output,
        handle: u32,
        settled: bool,
        payload: &[&[u8]],
    ) -> Result<bool, AmqpError> {
        let total: usize = payload.iter().map(|p| p.len()).sum();
        // Room for the header and the largest transfer performative we write (~40 bytes).
        let room = (out.remote_max_frame_size as usize).saturating_sub(64).max(256);
        let frames = total.div_ceil(room).max(1);
        if (self.remote_incoming_window as usize) < frames {
            return Ok(false);
        }
        let delivery_id = self.next_delivery_id;
        self.next_delivery_id = self.next_delivery_id.wrapping_add(1);
        let tag = delivery_id.to_be_bytes();
        let joined: Vec<u8>;
        let bytes: &[u8] = if payload.len() == 1 {
            payload[0]
        } else {
            joined = payload.concat();
            &joined
        };
        let mut chunks = bytes.chunks(room).peekable();
        let mut first = true;
        loop {
            let chunk = chunks.next().unwrap_or_default();
            let more = chunks.peek().is_some();
            let delivery = first.then_some((delivery_id, &tag[..]));
            out.frame(self.channel, &transfer(handle, delivery, settled, more), chunk)?;
            self.next_outgoing_id = self.next_outgoing_id.wrapping_add(1);
            self.remote_incoming_window = self.remote_incoming_window.saturating_sub(1);
            first = false;
            if !more {
                break;
            }
        }
        Ok(true)
    }
}
