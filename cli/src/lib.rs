//! `ehstore`: the command-line tool of the Event Hubs checkpoint stores, and the library behind
//! it.
//!
//! The library's centre is [`open::open_store`], which maps a store URL (`memory:`,
//! `sqlite:PATH`, `file:DIR`, `postgres://…`, a blob container URL or connection string) to an
//! `Arc<dyn CheckpointStore>`, so tests and tools pick a backend at run time. [`redact`] keeps
//! secrets out of every message, [`format`] is the documented JSON Lines export format, [`legacy`]
//! reads the checkpoints of the legacy SDKs, and [`commands`] holds one module per `ehstore`
//! command.
//!
//! See the crate's README for the commands and a walk-through.

pub mod backends;
pub mod cli;
pub mod commands;
pub mod duration;
pub mod format;
pub mod legacy;
pub mod location;
pub mod open;
pub mod redact;
pub mod sync;
pub mod table;

pub use open::{OpenOptions, open_store, open_store_with};

/// The README's Rust example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
