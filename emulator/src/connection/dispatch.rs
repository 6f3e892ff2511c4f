//! The connection's frame loop and the performatives that are not attach.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fe2o3_amqp_types::performatives::{Begin, Detach, Flow, Performative, Transfer};
use tokio::io::AsyncWrite;
use tokio::sync::{Notify, mpsc, watch};

use super::{ConnError, HOUSEKEEPING, decode, flush};
use crate::auth::Authorization;
use crate::broker::{Broker, ConnectionCommand};
use crate::faults::Signal;
use crate::limits::{Buffered, MAX_SESSIONS};
use crate::link::publisher::{PUBLISH_CREDIT, PublishTarget};
use crate::link::reply::{pump_replies, route_reply};
use crate::session::{HANDLE_MAX, INCOMING_WINDOW, Link, Output, Session};
use crate::wire::frame::{FRAME_TYPE_AMQP, FrameError, RawFrame, encode_frame};
use crate::wire::performative::{self as perf, AmqpError, Outcome, condition};

pub(super) struct Connection {
    pub(super) id: u64,
    pub(super) broker: Arc<Broker>,
    pub(super) notify: Arc<Notify>,
    pub(super) commands: mpsc::UnboundedSender<ConnectionCommand>,
    pub(super) out: Output,
    pub(super) sessions: HashMap<u16, Session>,
    /// What this connection may touch: everything, or what its put-tokens cover.
    pub(super) auth: Authorization,
    /// Bytes held in unfinished deliveries (capped, see [`crate::limits`]).
    pub(super) buffered: Buffered,
}

pub(super) enum Step {
    Continue,
    Closed,
}

impl Connection {
    pub(super) async fn event_loop<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        mut frames: mpsc::Receiver<Result<RawFrame, FrameError>>,
        mut commands: mpsc::UnboundedReceiver<ConnectionCommand>,
        mut shutdown: watch::Receiver<bool>,
        heartbeat: Option<Duration>,
    ) -> Result<(), ConnError> {
        let mut ticker = tokio::time::interval(HOUSEKEEPING);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heartbeat = tokio::time::Instant::now();
        let mut faults = self.broker.faults.subscribe();
        loop {
            let step = match self.pump_all() {
                Ok(more) => {
                    if more {
                        self.notify.notify_one();
                    }
                    Step::Continue
                }
                Err(e) => self.close_with(e),
            };
            let latency = self.broker.faults.reply_latency();
            if !latency.is_zero() && !self.out.buf.is_empty() {
                tokio::time::sleep(latency).await;
            }
            flush(writer, &mut self.out).await?;
            if matches!(step, Step::Closed) {
                return Ok(());
            }
            let step = tokio::select! {
                frame = frames.recv() => match frame {
                    Some(Ok(frame)) => self.on_frame(&frame).unwrap_or_else(|e| self.close_with(e)),
                    Some(Err(FrameError::Io(e))) => return Err(ConnError::Io(e)),
                    Some(Err(e)) => {
                        let step = self.close_with(AmqpError::new(condition::FRAMING_ERROR, e.to_string()));
                        flush(writer, &mut self.out).await?;
                        let _ = step;
                        return Err(ConnError::Frame(e));
                    }
                    None => return Ok(()),
                },
                _ = self.notify.notified() => Step::Continue,
                Some(command) = commands.recv() => self.on_command(command).unwrap_or_else(|e| self.close_with(e)),
                _ = ticker.tick() => {
                    if heartbeat.is_some_and(|every| last_heartbeat.elapsed() >= every) {
                        encode_frame(&mut self.out.buf, FRAME_TYPE_AMQP, 0, &[]);
                        last_heartbeat = tokio::time::Instant::now();
                    }
                    self.detach_overdue_refusals().unwrap_or_else(|e| self.close_with(e))
                }
                signal = faults.recv() => match signal {
                    Ok(Signal::Drop) => {
                        self.broker.faults.count_dropped();
                        tracing::debug!("connection dropped (fault injection)");
                        return Err(ConnError::Io(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "dropped by fault injection",
                        )));
                    }
                    Ok(Signal::Detach { hub, partition }) => self.detach_forced(&hub, partition),
                    Err(_) => Step::Continue,
                },
                _ = shutdown.changed() => self.close_with(AmqpError::new(
                    "amqp:connection:forced", "the emulator is shutting down")),
            };
            if matches!(step, Step::Closed) {
                flush(writer, &mut self.out).await?;
                return Ok(());
            }
        }
    }

    pub(super) fn close_with(&mut self, error: AmqpError) -> Step {
        tracing::debug!(condition = %error.condition, description = %error.description, "closing connection");
        let _ = self.out.close(Some(&error));
        Step::Closed
    }

    pub(super) fn session(&mut self, channel: u16) -> Result<&mut Session, AmqpError> {
        session_on(&mut self.sessions, channel)
    }

    fn on_frame(&mut self, frame: &RawFrame) -> Result<Step, AmqpError> {
        if frame.frame_type != FRAME_TYPE_AMQP {
            return Err(AmqpError::new(
                condition::FRAMING_ERROR,
                "unexpected SASL frame after open",
            ));
        }
        if frame.body.is_empty() {
            return Ok(Step::Continue);
        }
        let (performative, payload) = decode(&frame.body)?;
        let channel = frame.channel;
        tracing::trace!(channel, ?performative, payload = payload.len(), "frame in");
        match performative {
            Performative::Open(_) => Err(AmqpError::new("amqp:illegal-state", "open received twice")),
            Performative::Begin(begin) => self.on_begin(channel, &begin),
            Performative::Attach(attach) => self.on_attach(channel, &attach),
            Performative::Flow(flow) => self.on_flow(channel, &flow),
            Performative::Transfer(transfer) => self.on_transfer(channel, &transfer, payload),
            Performative::Disposition(_) => Ok(Step::Continue),
            Performative::Detach(detach) => self.on_detach(channel, &detach),
            Performative::End(_) => self.on_end(channel),
            Performative::Close(_) => {
                self.out.close(None)?;
                Ok(Step::Closed)
            }
        }
    }

    fn on_begin(&mut self, channel: u16, begin: &Begin) -> Result<Step, AmqpError> {
        if self.sessions.contains_key(&channel) {
            return Err(AmqpError::new(
                "amqp:connection:framing-error",
                format!("channel {channel} already has a session"),
            ));
        }
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(AmqpError::new(
                condition::RESOURCE_LIMIT,
                format!("at most {MAX_SESSIONS} sessions per connection"),
            ));
        }
        let session = Session::new(channel, begin.next_outgoing_id, begin.incoming_window);
        let reply = perf::begin(channel, session.next_outgoing_id, INCOMING_WINDOW, HANDLE_MAX);
        self.out.frame(channel, &reply, &[])?;
        self.sessions.insert(channel, session);
        Ok(Step::Continue)
    }

    fn on_flow(&mut self, channel: u16, flow: &Flow) -> Result<Step, AmqpError> {
        let out = &mut self.out;
        let session = session_on(&mut self.sessions, channel)?;
        let base = flow.next_incoming_id.unwrap_or(0);
        session.remote_incoming_window = base
            .wrapping_add(flow.incoming_window)
            .wrapping_sub(session.next_outgoing_id);
        if session.remote_incoming_window > flow.incoming_window {
            // The peer counted fewer transfers than we sent (in flight): never trust more than it offered.
            session.remote_incoming_window = flow.incoming_window.min(session.remote_incoming_window);
        }
        let Some(handle) = flow.handle.as_ref().map(|h| h.0) else {
            if flow.echo {
                out.frame(channel, &session.flow(None, false), &[])?;
            }
            return Ok(Step::Continue);
        };
        let their_count = flow.delivery_count.unwrap_or(0);
        let their_credit = flow.link_credit.unwrap_or(0);
        let state = match session.links.get_mut(&handle) {
            Some(Link::Consumer(c)) => {
                c.credit = their_count
                    .wrapping_add(their_credit)
                    .wrapping_sub(c.delivery_count);
                c.drain = flow.drain;
                Some((c.delivery_count, c.credit))
            }
            Some(Link::Reply(r)) => {
                r.credit = their_count
                    .wrapping_add(their_credit)
                    .wrapping_sub(r.delivery_count);
                Some((r.delivery_count, r.credit))
            }
            Some(Link::Publisher(p)) => Some((p.delivery_count, p.credit)),
            None => None,
        };
        if let (true, Some((count, credit))) = (flow.echo, state) {
            out.frame(
                channel,
                &session.flow(Some((handle, count, credit, 0)), false),
                &[],
            )?;
        }
        Ok(Step::Continue)
    }

    fn on_transfer(&mut self, channel: u16, transfer: &Transfer, payload: &[u8]) -> Result<Step, AmqpError> {
        let broker = Arc::clone(&self.broker);
        let out = &mut self.out;
        let session = session_on(&mut self.sessions, channel)?;
        session.on_incoming_transfer(out)?;
        let handle = transfer.handle.0;
        let Some(Link::Publisher(link)) = session.links.get_mut(&handle) else {
            return Err(AmqpError::new(
                "amqp:session:unattached-handle",
                format!("transfer on handle {handle}, which is not a sending link"),
            ));
        };
        let before = link.buffered();
        let done = link.on_transfer(transfer, payload, &broker, &self.auth)?;
        self.buffered
            .update(link.is_request_link(), before, link.buffered())?;
        let Some(done) = done else {
            return Ok(Step::Continue);
        };
        let top_up = (link.credit < PUBLISH_CREDIT / 2).then(|| {
            link.credit = PUBLISH_CREDIT;
            (link.delivery_count, link.credit)
        });
        if let Some(id) = done.settle {
            out.frame(channel, &perf::disposition(id, id, &done.outcome), &[])?;
        } else if let Outcome::Rejected(e) = &done.outcome {
            tracing::debug!(condition = %e.condition, "settled delivery rejected: {}", e.description);
        }
        if let Some((count, credit)) = top_up {
            out.frame(
                channel,
                &session.flow(Some((handle, count, credit, 0)), false),
                &[],
            )?;
        }
        if let Some(mut reply) = done.reply {
            if let Some(grant) = reply.grant.take() {
                tracing::debug!(path = %grant.path, expires = grant.expires, "put-token granted");
                // Checked before the answer was encoded; nothing ran in between.
                if let Err(e) = self.auth.grant(grant, crate::broker::now_ms() / 1000) {
                    tracing::debug!(description = %e.description, "put-token grant not recorded");
                }
            }
            route_reply(&mut self.sessions, channel, reply);
        }
        Ok(Step::Continue)
    }

    fn on_detach(&mut self, channel: u16, detach: &Detach) -> Result<Step, AmqpError> {
        let handle = detach.handle.0;
        let session = self.session(channel)?;
        if let Some((error, _)) = session.refusals.remove(&handle) {
            self.out
                .frame(channel, &perf::detach(handle, true, Some(&error)), &[])?;
            return Ok(Step::Continue);
        }
        let Some(link) = session.links.remove(&handle) else {
            // Already detached by us (stolen): this is the peer's answer.
            return Ok(Step::Continue);
        };
        tracing::debug!(handle, "link detached by the client");
        self.buffered.forget(&link);
        release(&link);
        self.out
            .frame(channel, &perf::detach(handle, detach.closed, None), &[])?;
        Ok(Step::Continue)
    }

    fn on_end(&mut self, channel: u16) -> Result<Step, AmqpError> {
        if let Some(session) = self.sessions.remove(&channel) {
            session.links.values().for_each(|link| {
                self.buffered.forget(link);
                release(link);
            });
            self.out.frame(channel, &perf::end(None), &[])?;
        }
        Ok(Step::Continue)
    }

    fn on_command(&mut self, command: ConnectionCommand) -> Result<Step, AmqpError> {
        match command {
            ConnectionCommand::Stolen { link_id, description } => {
                for (channel, session) in &mut self.sessions {
                    let found = session.links.iter().find_map(|(h, l)| match l {
                        Link::Consumer(c) if c.link_id == link_id => Some(*h),
                        _ => None,
                    });
                    if let Some(handle) = found {
                        session.links.remove(&handle);
                        tracing::debug!(handle, "link stolen");
                        let error = AmqpError::new(condition::LINK_STOLEN, description);
                        self.out
                            .frame(*channel, &perf::detach(handle, true, Some(&error)), &[])?;
                        break;
                    }
                }
            }
        }
        Ok(Step::Continue)
    }

    /// Detaches the entity links of `hub` (only the receivers of `partition` when given) with
    /// `amqp:link:detach-forced` (fault injection).
    fn detach_forced(&mut self, hub: &str, partition: Option<usize>) -> Step {
        let mut count = 0;
        let mut failed = None;
        'sessions: for (channel, session) in &mut self.sessions {
            let handles: Vec<u32> = session
                .links
                .iter()
                .filter(|(_, link)| match link {
                    Link::Consumer(c) => c.hub.name == hub && partition.is_none_or(|p| p == c.partition),
                    Link::Publisher(p) => {
                        partition.is_none()
                            && matches!(&p.target, PublishTarget::Events { hub: h, .. } if h.name == hub)
                    }
                    Link::Reply(_) => false,
                })
                .map(|(h, _)| *h)
                .collect();
            for handle in handles {
                if let Some(link) = session.links.remove(&handle) {
                    self.buffered.forget(&link);
                    release(&link);
                }
                let error = AmqpError::new(
                    condition::DETACH_FORCED,
                    "the link was detached by the emulator's fault injection",
                );
                if let Err(e) = self
                    .out
                    .frame(*channel, &perf::detach(handle, true, Some(&error)), &[])
                {
                    failed = Some(e);
                    break 'sessions;
                }
                count += 1;
            }
        }
        if let Some(e) = failed {
            return self.close_with(e);
        }
        tracing::debug!(links = count, %hub, ?partition, "links detached (fault injection)");
        self.broker.faults.count_detached(count);
        Step::Continue
    }

    /// Sends the detach of refused links whose client has not detached in time.
    fn detach_overdue_refusals(&mut self) -> Result<Step, AmqpError> {
        let now = std::time::Instant::now();
        for (channel, session) in &mut self.sessions {
            let overdue: Vec<u32> = session
                .refusals
                .iter()
                .filter(|(_, (_, at))| *at <= now)
                .map(|(h, _)| *h)
                .collect();
            for handle in overdue {
                if let Some((error, _)) = session.refusals.remove(&handle) {
                    self.out
                        .frame(*channel, &perf::detach(handle, true, Some(&error)), &[])?;
                }
            }
        }
        Ok(Step::Continue)
    }

    /// Sends what every receiver's credit allows. Returns true when more is ready to send.
    fn pump_all(&mut self) -> Result<bool, AmqpError> {
        let mut more = false;
        for session in self.sessions.values_mut() {
            let handles: Vec<u32> = session.links.keys().copied().collect();
            for handle in handles {
                let Some(mut link) = session.links.remove(&handle) else {
                    continue;
                };
                let result = match &mut link {
                    Link::Consumer(c) => c.pump(handle, session, &mut self.out),
                    Link::Reply(r) => pump_replies(r, handle, session, &mut self.out),
                    Link::Publisher(_) => Ok(false),
                };
                session.links.insert(handle, link);
                more |= result?;
            }
        }
        Ok(more)
    }

    /// Forgets every receiver this connection registered (it is going away).
    pub(super) fn release_all(&mut self) {
        for session in self.sessions.values() {
            session.links.values().for_each(release);
        }
        self.sessions.clear();
    }
}

/// The session on `channel`; a frame for a channel without one is a framing error.
fn session_on(sessions: &mut HashMap<u16, Session>, channel: u16) -> Result<&mut Session, AmqpError> {
    sessions.get_mut(&channel).ok_or_else(|| {
        AmqpError::new(
            condition::FRAMING_ERROR,
            format!("no session on channel {channel}"),
        )
    })
}

pub(super) fn release(link: &Link) {
    if let Link::Consumer(c) = link {
        c.hub.unregister_receiver(&c.group, c.partition, c.link_id);
    }
}
