//! The AMQP 1.0 wire: frames, value boundaries, performative and message encoding.
//!
//! Incoming performatives are decoded with `fe2o3-amqp-types` (it accepts every legal encoding,
//! trimmed lists included). Outgoing performatives are encoded here, field by field, because the
//! official Python client (pyamqp) reads performatives by position: fe2o3's derive trims trailing
//! null fields and writes defaults as null, which pyamqp cannot read (`frame[11]` of a transfer is
//! its payload, `frame[4]` of a begin its handle-max).

pub mod codec;
pub mod frame;
pub mod message;
pub mod performative;
