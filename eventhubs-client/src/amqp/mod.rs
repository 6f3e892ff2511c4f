//! Private AMQP plumbing: error classification, request/response on `$cbs` and
//! `$management`, and message conversion.

pub(crate) mod errors;
pub(crate) mod message;
pub(crate) mod request;
