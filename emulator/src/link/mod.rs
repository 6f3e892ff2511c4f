//! Links: what an address names, the selector filter, and the per-link state machines.

pub mod address;
pub mod consumer;
pub mod filter;
pub mod publisher;
pub mod reply;

use serde::Serialize;
use serde_amqp::value::Value;

/// A terminus (source or target) as received, re-encoded as a value to echo in our attach.
pub fn echo_terminus<T: Serialize>(terminus: Option<&T>) -> Value {
    terminus
        .and_then(|t| serde_amqp::to_vec(t).ok())
        .and_then(|bytes| serde_amqp::from_slice::<Value>(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// Largest message (or batch) accepted or delivered, as on the Standard tier.
pub const MAX_MESSAGE_SIZE: u64 = 1024 * 1024;
