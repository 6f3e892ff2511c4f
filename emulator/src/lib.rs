//! A small AMQP 1.0 server speaking the Azure Event Hubs dialect, for tests, demos and local
//! development. It starts in milliseconds inside `cargo test` and is checked against the
//! official Python client (`azure-eventhub`).
//!
//! What it speaks (the dialect the official SDKs use):
//! - SASL ANONYMOUS and PLAIN; `$cbs` put-token (SAS tokens verified against the configured
//!   key and the audience they are put for; JWTs refused, or accepted unverified after a check
//!   of shape and expiry with [`EmulatorBuilder::accept_unverified_jwt`]), answered with
//!   status 202. As on the service, an entity link or a `$management` request that no accepted
//!   token covers is refused with `amqp:unauthorized-access` (a connection that authenticated
//!   with SASL PLAIN and the key may touch everything; [`EmulatorBuilder::open_access`] lifts
//!   the rule);
//! - `$management` READ of `com.microsoft:eventhub` and `com.microsoft:partition`;
//! - senders on `<hub>` (round robin, or the service's partition-key hash) and
//!   `<hub>/Partitions/<id>`, single messages and batches (message format `0x80013700`);
//! - receivers on `<hub>/ConsumerGroups/<group>/Partitions/<id>` with the selector filter
//!   (offset, sequence number, enqueued time), owner levels (`com.microsoft:epoch`; a receiver
//!   with an equal or higher level steals the partition, the old link is detached with
//!   `amqp:link:stolen`), at most five receivers without an owner level per partition and
//!   group (a sixth is refused with `amqp:resource-limit-exceeded`, the SDKs' `QuotaExceeded`,
//!   and the service's message) and runtime metrics;
//! - every event carries `x-opt-sequence-number`, `x-opt-offset`, `x-opt-enqueued-time` and,
//!   when sent with one, `x-opt-partition-key`.
//!
//! Each partition is an in-memory log bounded by [`Retention`] (events and bytes).
//!
//! It listens on a TCP port, so what a client can make it do is bounded: decoding work by the
//! bytes present ([`wire::codec`]), memory per connection ([`limits`], each cap answered with
//! the service's error), frames within the client's `max-frame-size`, and a `close` that
//! reaches the client before the socket goes. The decoders are fuzzed from real client
//! sessions ([`fuzz`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), eventhubs_emulator::Error> {
//! use eventhubs_emulator::Emulator;
//!
//! let emulator = Emulator::builder()
//!     .hub("orders", 4)
//!     .consumer_group("orders", "billing")
//!     .start()
//!     .await?;
//! // Endpoint=sb://localhost:PORT;SharedAccessKeyName=…;UseDevelopmentEmulator=true;EntityPath=orders
//! let connection_string = emulator.connection_string(Some("orders"));
//! assert!(connection_string.contains("UseDevelopmentEmulator=true;EntityPath=orders"));
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod auth;
pub mod broker;
pub mod cbs;
pub mod config;
pub(crate) mod connection;
pub mod error;
pub mod faults;
pub mod fuzz;
pub mod hash;
pub mod limits;
pub mod link;
pub mod management;
pub mod partition_log;
pub mod sasl;
mod server;
pub mod session;
pub mod tls;
pub mod websocket;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{EmulatorConfig, HubConfig, Retention, SasKey};
pub use error::{Error, ErrorKind};

use crate::broker::Broker;
use crate::config::{DEFAULT_CONSUMER_GROUP, validate_entity_name, validate_partition_count};

/// Entry point: `Emulator::builder()`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder with no hubs, default retention, Microsoft's emulator key and 127.0.0.1:0.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }
}

/// Configures and starts an emulator. Hub and group names are case-insensitive.
#[derive(Debug)]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
    groups: Vec<(String, String)>,
    bind: SocketAddr,
    tls: Option<tls::TlsIdentity>,
    websockets: bool,
    errors: Vec<Error>,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            config: EmulatorConfig {
                max_connections: 1024,
                ..EmulatorConfig::default()
            },
            groups: Vec::new(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            websockets: false,
            errors: Vec::new(),
        }
    }
}

impl EmulatorBuilder {
    /// Adds a hub with `partitions` partitions (ids "0".."n-1") and the `$default` group.
    pub fn hub(mut self, name: &str, partitions: usize) -> Self {
        if let Err(e) = validate_entity_name("hub name", name).and(validate_partition_count(name, partitions))
        {
            self.errors.push(e);
            return self;
        }
        self.config.hubs.insert(
            name.to_ascii_lowercase(),
            HubConfig {
                partitions,
                consumer_groups: vec![DEFAULT_CONSUMER_GROUP.to_owned()],
            },
        );
        self
    }

    /// Adds a hub from a full [`HubConfig`] (as parsed from `name:partitions[:groups]`).
    pub fn hub_config(mut self, name: &str, hub: HubConfig) -> Self {
        if let Err(e) =
            validate_entity_name("hub name", name).and(validate_partition_count(name, hub.partitions))
        {
            self.errors.push(e);
            return self;
        }
        self.config.hubs.insert(name.to_ascii_lowercase(), hub);
        self
    }

    /// Adds a consumer group to a hub added with [`EmulatorBuilder::hub`].
    pub fn consumer_group(mut self, hub: &str, group: &str) -> Self {
        self.groups.push((hub.to_ascii_lowercase(), group.to_owned()));
        self
    }

    /// Per-partition retention (defaults: 100 000 events, 64 MiB).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.config.retention = retention;
        self
    }

    /// The SAS key name and value tokens must be signed with (default: Microsoft's emulator's).
    pub fn sas_key(mut self, name: &str, key: &str) -> Self {
        self.config.sas_key = SasKey {
            name: name.to_owned(),
            key: key.to_owned(),
        };
        self
    }

    /// Address to listen on (default 127.0.0.1:0, a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Shorthand for listening on 127.0.0.1:`port`.
    pub fn port(self, port: u16) -> Self {
        self.bind(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Most simultaneous connections (default 1024); more are closed on accept.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = max;
        self
    }

    /// Lets links and `$management` requests through without a `$cbs` put-token. Off by
    /// default: like the service, the emulator then refuses an entity link or a management
    /// request that no accepted token covers (`amqp:unauthorized-access`), unless the
    /// connection authenticated with SASL PLAIN and the key. Turn it on only for hand-written
    /// clients that cannot do CBS yet; an SDK always can.
    pub fn open_access(mut self, open: bool) -> Self {
        self.config.open_access = open;
        self
    }

    /// Accepts Entra ID tokens (JWTs put on `$cbs` with type `jwt`) without verifying their
    /// signature: only their shape and `exp` are checked, so anyone who can reach the port can
    /// read and write every hub with a made-up token. Off by default, when a JWT is refused with
    /// status 401 as the service refuses a token it cannot verify. Meant for exercising an
    /// Entra ID client path end to end; the emulator logs a warning at start when it is on.
    pub fn accept_unverified_jwt(mut self, accept: bool) -> Self {
        self.config.accept_unverified_jwt = accept;
        self
    }

    /// Speaks AMQP over TLS only (`amqps`, as the service's port 5671), presenting `identity`
    /// ([`tls::TlsIdentity::self_signed`] makes one for `localhost`). Off by default (plain
    /// AMQP, as Microsoft's emulator speaks).
    pub fn tls(mut self, identity: tls::TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    /// Expects AMQP over WebSockets (after TLS when [`EmulatorBuilder::tls`] is set, as the
    /// service's `wss://…/$servicebus/websocket`): every connection starts with an HTTP
    /// upgrade offering the `AMQPWSB10` (or fe2o3-amqp's `amqp`) subprotocol. Off by default.
    pub fn websockets(mut self, on: bool) -> Self {
        self.websockets = on;
        self
    }

    /// Validates the configuration, binds the listener and starts serving in the background.
    pub async fn start(mut self) -> Result<EmulatorHandle, Error> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        for (hub, group) in self.groups {
            validate_entity_name("consumer group", &group)?;
            let Some(config) = self.config.hubs.get_mut(&hub) else {
                return Err(Error::invalid_config(
                    "consumer group",
                    format!("group {group:?} names hub {hub:?}, which was not added"),
                ));
            };
            let group = group.to_ascii_lowercase();
            if !config.consumer_groups.contains(&group) {
                config.consumer_groups.push(group);
            }
        }
        if self.config.retention.max_events == 0 || self.config.retention.max_bytes == 0 {
            return Err(Error::invalid_config(
                "retention",
                "max_events and max_bytes must be at least 1",
            ));
        }
        let transport = server::Transport {
            tls: match &self.tls {
                Some(identity) => Some(identity.acceptor()?),
                None => None,
            },
            websockets: self.websockets,
        };
        let listener = TcpListener::bind(self.bind)
            .await
            .map_err(|e| Error::io(format!("binding the emulator to {}", self.bind), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the emulator's bound address", e))?;
        let broker = Arc::new(Broker::new(self.config));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        tracing::info!(%local_addr, hubs = broker.config.hubs.len(), tls = transport.tls.is_some(), websockets = transport.websockets, "event hubs emulator listening");
        if broker.config.accept_unverified_jwt {
            tracing::warn!(
                %local_addr,
                "JWT put-tokens are accepted WITHOUT signature verification (accept_unverified_jwt): \
                 anyone reaching this port can use every hub"
            );
        }
        let task = tokio::spawn(server::run(listener, Arc::clone(&broker), transport, shutdown_rx));
        Ok(EmulatorHandle {
            local_addr,
            broker,
            tls: self.tls,
            websockets: self.websockets,
            shutdown: shutdown_tx,
            task: Some(task),
        })
    }
}

/// A running emulator. Dropping it stops accepting connections; call
/// [`EmulatorHandle::shutdown`] to also close the open ones and wait for them.
#[derive(Debug)]
pub struct EmulatorHandle {
    local_addr: SocketAddr,
    broker: Arc<Broker>,
    tls: Option<tls::TlsIdentity>,
    websockets: bool,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// The address the emulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A connection string for the SDKs, with `EntityPath` when `hub` is given. Over TLS it
    /// has no `UseDevelopmentEmulator=true`: clients then speak `amqps` to the endpoint's port.
    pub fn connection_string(&self, hub: Option<&str>) -> String {
        config::connection_string(
            self.local_addr.port(),
            &self.broker.config.sas_key,
            hub,
            self.tls.is_some(),
        )
    }

    /// The identity the TLS listener presents, when it speaks TLS: clients trust its
    /// [`tls::TlsIdentity::certificate_pem`].
    pub fn tls_identity(&self) -> Option<&tls::TlsIdentity> {
        self.tls.as_ref()
    }

    /// The namespace, for inspection in tests (partition contents, receivers).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// The fault injection knobs: cut connections, detach links, refuse or delay new
    /// connections ([`faults`] explains each).
    pub fn faults(&self) -> &faults::Faults {
        &self.broker.faults
    }

    /// Restarts on the same address: closes every connection (with `amqp:connection:forced`),
    /// stops listening for `downtime` (connects are refused meanwhile), then listens again.
    /// The hubs keep their events, as the service's do across a restart.
    ///
    /// # Errors
    /// The address cannot be bound again (another process took the port meanwhile).
    pub async fn restart(&mut self, downtime: std::time::Duration) -> Result<(), Error> {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        tokio::time::sleep(downtime).await;
        let transport = server::Transport {
            tls: match &self.tls {
                Some(identity) => Some(identity.acceptor()?),
                None => None,
            },
            websockets: self.websockets,
        };
        let listener = TcpListener::bind(self.local_addr)
            .await
            .map_err(|e| Error::io(format!("binding the emulator to {} again", self.local_addr), e))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        self.shutdown = shutdown_tx;
        self.task = Some(tokio::spawn(server::run(
            listener,
            Arc::clone(&self.broker),
            transport,
            shutdown_rx,
        )));
        tracing::info!(local_addr = %self.local_addr, "event hubs emulator restarted");
        Ok(())
    }

    /// Closes every connection (with `amqp:connection:forced`) and stops the listener.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
