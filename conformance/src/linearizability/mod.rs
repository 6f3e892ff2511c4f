//! Linearizability of concurrent histories, as etcd's robustness tests check their store with
//! Porcupine and Jepsen with Knossos: record what concurrent clients did and saw, then search
//! for one order of their operations that the contract's sequential rules explain.
//!
//! - [`checker`]: the search (Wing–Gong with memoization), generic over a [`checker::Model`],
//!   with operations whose outcome is unknown allowed to take effect or not;
//! - [`model`]: one partition's ownership record and checkpoint as that model;
//! - [`history`]: running and recording histories, and splitting them by partition
//!   (operations on different partitions commute; a listing is one read per partition);
//! - [`report`]: the smallest sub-history no order explains, as a timeline, and the whole
//!   history as JSON and an HTML/SVG timeline.

pub mod checker;
pub mod history;
pub mod model;
pub mod report;
