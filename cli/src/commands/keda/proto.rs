//! The code generated from KEDA's `externalscaler.proto` (by `build.rs`, with `protox`: no
//! `protoc` needed).
#![allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

tonic::include_proto!("externalscaler");
