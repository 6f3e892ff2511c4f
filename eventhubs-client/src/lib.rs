//! Azure Event Hubs over AMQP 1.0 (fe2o3-amqp): a client that sends events, reads partitions
//! and answers management queries, and a load-balancing [`Processor`] that spreads the
//! partitions of a consumer group over many processes through any
//! [`CheckpointStore`](eventhubs_store_core::CheckpointStore).

mod amqp;
mod batch;
mod builder;
mod client;
mod connection_string;
mod credential;
mod error;
mod event;
mod management;
pub mod processor;
mod properties;
mod receiver;
pub mod retry;
mod sas;
pub mod telemetry;
mod transport;

pub use batch::{BatchOptions, EventDataBatch};
pub use builder::EventHubClientBuilder;
pub use client::{EventHubClient, EventHubProperties, PartitionProperties};
pub use connection_string::ConnectionString;
pub use credential::{Credential, EVENT_HUBS_SCOPE};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use event::{BodyType, EventData, LastEnqueuedEventProperties, ReceivedEvent, StartPosition};
pub use processor::{
    LoadBalancingStrategy, LossReason, PartitionClient, Processor, ProcessorEvent, ProcessorOptions,
};
pub use properties::{MessageId, PropertyValue};
pub use receiver::{PartitionReceiver, ReceiverOptions};
pub use retry::RetryOptions;

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
