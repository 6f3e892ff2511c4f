//! What one connection may make the emulator hold, and the accounting that enforces it.
//!
//! Every buffer a client can grow is capped per connection, so a hostile connection (even an
//! unauthenticated one) pins a bounded amount of memory and hitting a cap never touches another
//! connection:
//!
//! | what | cap | on hitting it |
//! |---|---|---|
//! | sessions | [`MAX_SESSIONS`] | `begin` refused: connection closed with `amqp:resource-limit-exceeded` |
//! | links (all sessions) | [`MAX_LINKS`] | `attach` refused with `amqp:resource-limit-exceeded` |
//! | one `$cbs` / `$management` request | [`MAX_REQUEST_SIZE`] | delivery rejected with `amqp:link:message-size-exceeded` |
//! | unfinished request deliveries | [`MAX_BUFFERED_REQUEST_BYTES`] | connection closed with `amqp:resource-limit-exceeded` |
//! | unfinished event deliveries | [`MAX_BUFFERED_EVENT_BYTES`] | connection closed with `amqp:resource-limit-exceeded` |
//! | responses waiting for credit | [`MAX_PENDING_REPLIES`], [`MAX_PENDING_REPLY_BYTES`] | response dropped (the client gave no credit) |
//! | put-token grants | [`crate::auth::MAX_GRANTS`], audiences of [`crate::cbs::MAX_AUDIENCE_LEN`] | put-token answered 403 `amqp:resource-limit-exceeded` |

use crate::session::Link;
use crate::wire::performative::{AmqpError, condition};

/// Sessions one connection may hold.
pub const MAX_SESSIONS: usize = 256;
/// Links one connection may hold across its sessions (attached or waiting for a refusal's
/// detach). A processor over a 1024-partition hub needs about one per partition.
pub const MAX_LINKS: usize = 4096;
/// Largest `$cbs` or `$management` request: a put-token carries a SAS token (~300 bytes) or an
/// Entra ID JWT (a few KiB); a READ a few names.
pub const MAX_REQUEST_SIZE: usize = 16 * 1024;
/// Bytes of unfinished `$cbs` / `$management` deliveries one connection may hold. Reachable
/// without any token, so small.
pub const MAX_BUFFERED_REQUEST_BYTES: usize = 256 * 1024;
/// Bytes of unfinished event deliveries one connection may hold (sixteen 1 MiB messages in
/// flight at once; only links a token authorized can send events).
pub const MAX_BUFFERED_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// Responses waiting for the client's credit on its reply links, per connection.
pub const MAX_PENDING_REPLIES: usize = 256;
/// Bytes of responses waiting for the client's credit, per connection.
pub const MAX_PENDING_REPLY_BYTES: usize = 1024 * 1024;

/// Bytes held in unfinished deliveries on one connection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Buffered {
    /// On `$cbs` and `$management` links.
    pub requests: usize,
    /// On links sending events.
    pub events: usize,
}

impl Buffered {
    /// Records that a publisher link's unfinished delivery went from `before` to `after` bytes,
    /// and checks the connection's caps.
    pub fn update(&mut self, request_link: bool, before: usize, after: usize) -> Result<(), AmqpError> {
        let (held, cap, what) = if request_link {
            (
                &mut self.requests,
                MAX_BUFFERED_REQUEST_BYTES,
                "$cbs/$management request",
            )
        } else {
            (&mut self.events, MAX_BUFFERED_EVENT_BYTES, "event")
        };
        *held = held.saturating_sub(before).saturating_add(after);
        if *held > cap {
            return Err(AmqpError::new(
                condition::RESOURCE_LIMIT,
                format!(
                    "the connection holds {} bytes of unfinished {what} deliveries; at most {cap} are allowed",
                    *held
                ),
            ));
        }
        Ok(())
    }

    /// Forgets what a link that is going away held.
    pub fn forget(&mut self, link: &Link) {
        if let Link::Publisher(p) = link {
            let held = p.buffered();
            if p.is_request_link() {
                self.requests = self.requests.saturating_sub(held);
            } else {
                self.events = self.events.saturating_sub(held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_event_budgets_are_separate_and_capped() {
        let mut b = Buffered::default();
        b.update(true, 0, MAX_BUFFERED_REQUEST_BYTES).unwrap();
        b.update(false, 0, MAX_BUFFERED_EVENT_BYTES).unwrap();
        let err = b.update(true, 0, 1).unwrap_err();
        assert_eq!(err.condition, condition::RESOURCE_LIMIT);
        assert!(err.description.contains("request"), "{}", err.description);
        // A delivery completing gives its bytes back.
        let mut b = Buffered::default();
        b.update(true, 0, 10_000).unwrap();
        b.update(true, 10_000, 0).unwrap();
        assert_eq!(b, Buffered::default());
        assert!(b.update(false, 0, MAX_BUFFERED_EVENT_BYTES + 1).is_err());
    }
}
