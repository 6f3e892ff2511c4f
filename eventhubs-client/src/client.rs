//! [`EventHubClient`]: a recovering AMQP connection and session to a namespace, for one
//! event hub.
//!
//! Recovery is one mechanism: every operation goes through
//! `with_retries` (crate::retry) (bounded exponential backoff with jitter, a
//! timeout on every network step), the AMQP classifier decides what is retryable, and a
//! failure that breaks the connection (transport error, timeout, connection or session error)
//! drops it: the next step connects again. Senders and receivers remember the connection they
//! were attached on and attach again through the new one.
//!
//! Authentication is claims-based: before the first link to the hub (and before management
//! calls) the client puts a token for the audience `sb://<namespace>/<hub>` on `$cbs` (a SAS
//! token signed for one hour, a given shared access signature, or an Entra ID JWT), on every
//! new connection. A background task puts a fresh one after four fifths of its lifetime, so
//! long-lived senders and receivers stay authorized.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fe2o3_amqp::Sender;
use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::messaging::Outcome;
use fe2o3_amqp::types::primitives::Value;
use time::OffsetDateTime;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};
use tracing::Instrument;

use crate::amqp::errors::{Failure, amqp_error, classify, condition_of};
use crate::amqp::{message, request};
use crate::batch::{BatchOptions, EventDataBatch};
use crate::builder::EventHubClientBuilder;
use crate::credential::Credential;
use crate::error::{Error, ErrorKind, Result};
use crate::event::EventData;
use crate::management;
use crate::receiver::{PartitionReceiver, ReceiverOptions};
use crate::retry::{RetryOptions, timed, with_retries};
use crate::transport::{Endpoint, connect};

/// The least time between two puts of the hub's token (a token about to expire is put again
/// no faster than this).
const MIN_TOKEN_REFRESH: Duration = Duration::from_secs(1);
/// The longest the background task sleeps before it looks at the token again.
const TOKEN_CHECK_EVERY: Duration = Duration::from_secs(60);

/// A client for one event hub: sends events, opens partition receivers and answers
/// management queries. Cheap to clone (all clones share one connection).
#[derive(Clone)]
pub struct EventHubClient {
    inner: Arc<Inner>,
}

/// The properties of an event hub (`$management` READ of `com.microsoft:eventhub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHubProperties {
    /// The event hub's name.
    pub name: String,
    /// Its partition ids, e.g. `["0", "1", "2", "3"]`.
    pub partition_ids: Vec<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// The properties of one partition (`$management` READ of `com.microsoft:partition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProperties {
    /// The event hub's name.
    pub event_hub: String,
    /// The partition id.
    pub id: String,
    /// The sequence number of the oldest retained event.
    pub beginning_sequence_number: i64,
    /// The sequence number of the newest event (-1 when none was ever sent).
    pub last_enqueued_sequence_number: i64,
    /// The offset of the newest event (`"-1"` when none was ever sent).
    pub last_enqueued_offset: String,
    /// When the newest event was enqueued; `None` for an empty partition.
    pub last_enqueued_time: Option<OffsetDateTime>,
    /// Whether the partition retains no event.
    pub is_empty: bool,
}

/// One connection and its session.
pub(crate) struct Amqp {
    connection: ConnectionHandle<()>,
    pub(crate) session: SessionHandle<()>,
    /// Which connection of the client's life this is (1, 2, …).
    pub(crate) generation: u64,
    /// When the hub's token on this connection must be put again; `None` before the first.
    token_refresh_at: Option<Instant>,
}

impl Amqp {
    fn is_broken(&self) -> bool {
        self.connection.is_closed() || self.session.is_ended()
    }
}

/// The largest message when the service announces no limit (the service's own: 1 MiB).
const DEFAULT_MAX_MESSAGE_SIZE: u64 = 1024 * 1024;

/// A message ready to send: one event, or a batch of them.
#[derive(Clone)]
enum Outgoing {
    Single(fe2o3_amqp::types::messaging::Message<fe2o3_amqp::types::messaging::Data>),
    Batch(
        fe2o3_amqp::link::delivery::Sendable<
            fe2o3_amqp::types::messaging::Batch<fe2o3_amqp::types::messaging::Data>,
        >,
    ),
}

/// A sender and the connection it was attached on.
type SharedSender = Arc<Mutex<(u64, Sender)>>;

struct Inner {
    /// The fully qualified namespace as the official SDKs derive it (host, `:port` when the
    /// endpoint has one): the scope processors of every SDK share in a checkpoint store.
    namespace: String,
    /// The namespace's host alone, for the AMQP open's hostname.
    host: String,
    /// Where connections go (the namespace, or a custom endpoint) and whether over TLS.
    endpoint: Endpoint,
    hub: String,
    credential: Credential,
    retry: RetryOptions,
    /// The current connection; `None` before the first and after one broke.
    amqp: Mutex<Option<Amqp>>,
    generations: AtomicU64,
    /// Senders by address (`<hub>` or `<hub>/Partitions/<id>`).
    senders: Mutex<HashMap<String, SharedSender>>,
    closed: AtomicBool,
}

impl fmt::Debug for EventHubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHubClient")
            .field("namespace", &self.inner.namespace)
            .field("event_hub", &self.inner.hub)
            .field("endpoint", &self.inner.endpoint.to_string())
            .field("credential", &self.inner.credential)
            .finish()
    }
}

fn closed() -> Error {
    Error::new(classify(&Failure::Closed), "the client was closed")
}

impl EventHubClient {
    /// Connects with a connection string and the default [`RetryOptions`]; see
    /// [`EventHubClient::with_options`].
    ///
    /// # Errors
    /// As [`EventHubClient::with_options`].
    pub async fn from_connection_string(connection_string: &str, event_hub: Option<&str>) -> Result<Self> {
        Self::with_options(connection_string, event_hub, RetryOptions::default()).await
    }

    /// Connects with a connection string. The hub is `event_hub`, else the string's
    /// `EntityPath`; [`ErrorKind::InvalidInput`] when neither names one. With
    /// `UseDevelopmentEmulator=true` the client speaks plain AMQP to the endpoint's host and
    /// port (default 5672), else AMQP over TLS to the endpoint's port (default 5671). The
    /// string may carry a key (`SharedAccessKeyName`, `SharedAccessKey`) or a
    /// `SharedAccessSignature`. Connects, begins a session and puts a token for the hub right
    /// away (retrying as `retry` says), so bad credentials fail here. For Entra ID, a custom
    /// endpoint or trusted roots, use [`EventHubClient::builder`].
    ///
    /// # Errors
    /// `InvalidInput` for a bad connection string or options; `Unauthorized` for a refused
    /// key; `Unavailable` when the namespace cannot be reached within the retries.
    pub async fn with_options(
        connection_string: &str,
        event_hub: Option<&str>,
        retry: RetryOptions,
    ) -> Result<Self> {
        EventHubClientBuilder::from_connection_string(connection_string, event_hub)?
            .retry_options(retry)
            .open()
            .await
    }

    /// A builder for a client of `event_hub` in `fully_qualified_namespace` (a host, with
    /// `:port` when not the default, e.g. `my-ns.servicebus.windows.net`) that authenticates
    /// with `credential` (a key, a shared access signature, or Entra ID).
    pub fn builder(
        fully_qualified_namespace: &str,
        event_hub: &str,
        credential: Credential,
    ) -> EventHubClientBuilder {
        EventHubClientBuilder::new(fully_qualified_namespace, event_hub, credential)
    }

    /// Connects as the builder resolved it.
    pub(crate) async fn open(
        namespace: String,
        host: String,
        hub: String,
        credential: Credential,
        retry: RetryOptions,
        endpoint: Endpoint,
    ) -> Result<Self> {
        let inner = Arc::new(Inner {
            namespace,
            host,
            endpoint,
            hub,
            credential,
            retry,
            amqp: Mutex::new(None),
            generations: AtomicU64::new(0),
            senders: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let client = EventHubClient { inner };
        let retry = client.inner.retry.clone();
        with_retries("connect", &retry, |_| async { client.session().await.map(drop) }).await?;
        tokio::spawn(renew_tokens(Arc::downgrade(&client.inner)));
        Ok(client)
    }

    /// The fully qualified namespace as the official SDKs derive it from the endpoint: the
    /// host, with `:port` when the endpoint carries one (`ns.servicebus.windows.net`,
    /// `localhost:5672`). Processors of every SDK record ownership and checkpoints under it.
    pub fn fully_qualified_namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The event hub's name.
    pub fn event_hub(&self) -> &str {
        &self.inner.hub
    }

    /// The retry options every operation of this client uses.
    pub fn retry_options(&self) -> &RetryOptions {
        &self.inner.retry
    }

    /// Which connection of the client's life is current (1 for the first, 2 after one
    /// recovery, …); 0 before the first connect. Tests and diagnostics read it.
    pub fn connection_generation(&self) -> u64 {
        self.inner.generations.load(Ordering::Acquire)
    }

    /// The current connection's session, authorized for the hub: connects first when there is
    /// no connection or the last one broke, puts the hub's token when this connection has none
    /// or it is getting old. One step; the caller retries.
    pub(crate) async fn session(&self) -> Result<MappedMutexGuard<'_, Amqp>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let timeout = self.inner.retry.try_timeout;
        let mut guard = self.inner.amqp.lock().await;
        if guard.as_ref().is_some_and(Amqp::is_broken) {
            tracing::debug!("the connection broke; connecting again");
            *guard = None;
        }
        if guard.is_none() {
            let (connection, session) =
                // Boxed: the TLS handshake's future is large, and every operation awaits this one.
                timed("connect", timeout, Box::pin(connect(&self.inner.endpoint, &self.inner.host))).await?;
            let generation = self.inner.generations.fetch_add(1, Ordering::AcqRel) + 1;
            tracing::debug!(generation, "connected");
            if generation > 1 {
                crate::telemetry::reconnected(&self.inner.hub);
            }
            *guard = Some(Amqp {
                connection,
                session,
                generation,
                token_refresh_at: None,
            });
        }
        if let Some(amqp) = guard.as_mut()
            && amqp.token_refresh_at.is_none_or(|at| Instant::now() >= at)
        {
            let audience = format!("sb://{}/{}", self.inner.namespace, self.inner.hub);
            let put = Box::pin(put_token(&mut amqp.session, &self.inner.credential, &audience));
            match timed("put-token", timeout, put).await {
                Ok(refresh_after) => amqp.token_refresh_at = Some(Instant::now() + refresh_after),
                Err(e) => {
                    if e.is_connection_failure() {
                        *guard = None;
                    }
                    return Err(e);
                }
            }
        }
        MutexGuard::try_map(guard, Option::as_mut).map_err(|_| closed())
    }

    /// Drops connection `generation` when it is still the current one, after a step on it
    /// failed in a way that breaks it (`error.is_connection_failure()`). Returns `error`.
    pub(crate) async fn failed(&self, generation: u64, error: Error) -> Error {
        if error.is_connection_failure() {
            let mut guard = self.inner.amqp.lock().await;
            if guard.as_ref().is_some_and(|a| a.generation == generation)
                && let Some(mut old) = guard.take()
            {
                tracing::debug!(generation, error = %error, "dropping the broken connection");
                tokio::spawn(async move {
                    let _ = old.connection.close().await;
                });
            }
        }
        error
    }

    /// Returns once connection `generation` is gone (replaced, dropped or its engine stopped).
    /// Polls: the connection's own handle sits behind the session lock.
    async fn connection_lost(&self, generation: u64) {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Ok(guard) = self.inner.amqp.try_lock()
                && guard
                    .as_ref()
                    .is_none_or(|a| a.generation != generation || a.is_broken())
            {
                return;
            }
        }
    }

    /// Runs one management step on the current session, bounded by the step timeout; a
    /// failure that breaks the connection drops it.
    async fn on_session<T>(
        &self,
        what: &str,
        step: impl AsyncFnOnce(&mut SessionHandle<()>) -> Result<T>,
    ) -> Result<T> {
        let mut amqp = self.session().await?;
        let generation = amqp.generation;
        let result = timed(what, self.inner.retry.try_timeout, step(&mut amqp.session)).await;
        drop(amqp);
        match result {
            Ok(value) => Ok(value),
            Err(e) => Err(self.failed(generation, e).await),
        }
    }

    /// The hub's properties.
    ///
    /// # Errors
    /// As the management request fails, after the retries.
    pub async fn properties(&self) -> Result<EventHubProperties> {
        let hub = &self.inner.hub;
        with_retries("get event hub properties", &self.inner.retry, |_| {
            self.on_session("get event hub properties", async |session| {
                management::read_hub(session, hub).await
            })
        })
        .await
    }

    /// One partition's properties; [`ErrorKind::NotFound`] for an unknown partition.
    ///
    /// # Errors
    /// As the management request fails, after the retries.
    pub async fn partition_properties(&self, partition_id: &str) -> Result<PartitionProperties> {
        let hub = &self.inner.hub;
        with_retries("get partition properties", &self.inner.retry, |_| {
            self.on_session("get partition properties", async |session| {
                management::read_partition(session, hub, partition_id).await
            })
        })
        .await
    }

    /// All events in one transfer (batch format when more than one), to one partition, or
    /// round robin when None. Sending no events does nothing. A send that fails in a
    /// retryable way (lost connection, detached link, no settlement in time) is sent again
    /// over a new link: at least once, as with every Event Hubs client. For partition keys and
    /// a size bound, use [`EventHubClient::create_batch`].
    ///
    /// # Errors
    /// `InvalidInput` for events that cannot be sent (see [`EventDataBatch::try_add`]) or that
    /// the service refuses (too large); the last failure after the retries.
    pub async fn send(&self, partition_id: Option<&str>, events: Vec<EventData>) -> Result<()> {
        let outgoing = match events.as_slice() {
            [] => return Ok(()),
            [event] => Outgoing::Single(message::single(event, None)?),
            events => {
                let encoded = events
                    .iter()
                    .map(|e| message::encode(e, None))
                    .collect::<Result<Vec<_>>>()?;
                Outgoing::Batch(message::batch(&encoded, None))
            }
        };
        self.transfer(&self.address(partition_id), &outgoing, events.len())
            .await
    }

    /// An empty batch for the partition, partition key or round robin that `options` name,
    /// bounded by the largest message the service accepts on that link (attached now, so the
    /// limit is the service's).
    ///
    /// # Errors
    /// `InvalidInput` naming the option that is wrong; the last failure to attach after the
    /// retries.
    pub async fn create_batch(&self, options: BatchOptions) -> Result<EventDataBatch> {
        options.validate()?;
        let address = self.address(options.partition_id.as_deref());
        let span = tracing::debug_span!("eventhubs.create_batch", address = %address);
        let link_max = with_retries("create batch", &self.inner.retry, |_| async {
            let sender = self.sender(&address).await?;
            let sender = sender.lock().await;
            Ok(sender.1.max_message_size().unwrap_or(DEFAULT_MAX_MESSAGE_SIZE))
        })
        .instrument(span)
        .await?;
        Ok(EventDataBatch::new(address, options, link_max))
    }

    /// Sends a batch made by [`EventHubClient::create_batch`] in one transfer. An empty batch
    /// sends nothing. Retried as [`EventHubClient::send`] is: at least once.
    ///
    /// # Errors
    /// `InvalidInput` when the batch was made by a client of another hub; as
    /// [`EventHubClient::send`] otherwise.
    pub async fn send_batch(&self, batch: &EventDataBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if batch.address != self.address(batch.partition_id.as_deref()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "batch: made for {}, not for event hub {}",
                    batch.address, self.inner.hub
                ),
            ));
        }
        let outgoing = Outgoing::Batch(message::batch(&batch.encoded, batch.partition_key.as_deref()));
        self.transfer(&batch.address, &outgoing, batch.len()).await
    }

    /// The link address for a partition, or the hub's for round robin and partition keys.
    fn address(&self, partition_id: Option<&str>) -> String {
        match partition_id {
            Some(id) => format!("{}/Partitions/{id}", self.inner.hub),
            None => self.inner.hub.clone(),
        }
    }

    /// One message to `address`, retried over new links until settled.
    async fn transfer(&self, address: &str, outgoing: &Outgoing, events: usize) -> Result<()> {
        let span = tracing::debug_span!("eventhubs.send", address = %address, events);
        async {
            with_retries("send", &self.inner.retry, |_| async move {
                let sender = self.sender(address).await?;
                let mut sender = sender.lock().await;
                let generation = sender.0;
                let send = async {
                    match outgoing.clone() {
                        Outgoing::Single(m) => sender.1.send(m).await,
                        Outgoing::Batch(b) => sender.1.send(b).await,
                    }
                };
                // fe2o3 leaves a settlement pending when the connection dies under it:
                // stop waiting as soon as the connection is gone.
                let outcome = tokio::select! {
                    outcome = send => outcome,
                    () = self.connection_lost(generation) => return Err(self.failed(generation, Error::new(
                        ErrorKind::Unavailable,
                        format!("send to {address}: the connection was lost before the send was settled"),
                    ).connection_failure()).await),
                };
                drop(sender);
                match settled(address, outcome) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        if e.is_retryable() {
                            // The link is unusable: forget it so the next try attaches anew.
                            self.inner.senders.lock().await.remove(address);
                        }
                        Err(self.failed(generation, e).await)
                    }
                }
            })
            .await
        }
        .instrument(span)
        .await
    }

    /// The sender for `address` on the current connection, attached if needed.
    async fn sender(&self, address: &str) -> Result<SharedSender> {
        let mut senders = self.inner.senders.lock().await;
        let mut amqp = self.session().await?;
        if let Some(sender) = senders.get(address)
            && sender.lock().await.0 == amqp.generation
        {
            return Ok(Arc::clone(sender));
        }
        let generation = amqp.generation;
        let name = format!("sender-{address}-{}", uuid::Uuid::new_v4());
        let attach = async {
            Sender::attach(&mut amqp.session, name, address)
                .await
                .map_err(|e| amqp_error(&format!("attach sender to {address}"), e))
        };
        let attached = timed("attach sender", self.inner.retry.try_timeout, attach)
            .instrument(tracing::debug_span!("eventhubs.attach_sender", address = %address))
            .await;
        drop(amqp);
        let sender = match attached {
            Ok(sender) => sender,
            Err(e) => return Err(self.failed(generation, e).await),
        };
        let sender = Arc::new(Mutex::new((generation, sender)));
        senders.insert(address.to_owned(), Arc::clone(&sender));
        Ok(sender)
    }

    /// Opens a receiver on one partition of `consumer_group`. The receiver recovers by
    /// itself: see [`PartitionReceiver::receive`].
    ///
    /// # Errors
    /// `InvalidInput` for a bad start position; `NotFound`, `OwnerLevelConflict`,
    /// `QuotaExceeded` as the service refuses the link; the last failure after the retries.
    pub async fn open_receiver(
        &self,
        consumer_group: &str,
        partition_id: &str,
        options: ReceiverOptions,
    ) -> Result<PartitionReceiver> {
        PartitionReceiver::open(self.clone(), consumer_group, partition_id, options).await
    }

    /// Whether [`EventHubClient::close`] was called on any clone.
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Closes the senders, the session and the connection. Later calls on any clone fail
    /// with [`ErrorKind::Closed`]; receivers already open stop working.
    ///
    /// # Errors
    /// The connection's error on close (the client is closed either way).
    pub async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let span = tracing::debug_span!("eventhubs.close", namespace = %self.inner.namespace);
        async {
            let senders: Vec<_> = self.inner.senders.lock().await.drain().collect();
            for (_, sender) in senders {
                if let Ok(sender) = Arc::try_unwrap(sender) {
                    let _ = sender.into_inner().1.close().await;
                }
            }
            let Some(mut amqp) = self.inner.amqp.lock().await.take() else {
                return Ok(());
            };
            let ended = amqp.session.end().await;
            let closed = amqp.connection.close().await;
            ended.map_err(|e| amqp_error("end session", e))?;
            closed.map_err(|e| amqp_error("close connection", e))
        }
        .instrument(span)
        .await
    }
}

/// A send's outcome as a result.
fn settled(address: &str, outcome: Result<Outcome, fe2o3_amqp::link::SendError>) -> Result<()> {
    match outcome {
        Ok(Outcome::Accepted(_)) => Ok(()),
        Ok(Outcome::Rejected(rejected)) => {
            let failure = rejected.error.as_ref().map_or(Failure::Protocol, condition_of);
            let description = rejected
                .error
                .as_ref()
                .and_then(|e| e.description.clone())
                .unwrap_or_default();
            Err(Error::new(
                classify(&failure),
                format!("send to {address}: rejected: {description}"),
            ))
        }
        Ok(other) => Err(Error::new(
            classify(&Failure::Transport),
            format!("send to {address}: not accepted ({other:?})"),
        )),
        Err(e) => Err(amqp_error(&format!("send to {address}"), e)),
    }
}

/// Puts the hub's token again before it expires, for as long as the client lives, so links
/// attached long ago (senders included) stay authorized. A failure is logged; the next
/// operation connects or puts again by itself.
async fn renew_tokens(inner: Weak<Inner>) {
    let mut wait = next_token_check(&inner).await;
    loop {
        tokio::time::sleep(wait).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let client = EventHubClient { inner };
        if let Err(e) = client.session().await {
            tracing::debug!(error = %e, "background token renewal failed; the next operation retries");
        }
        wait = next_token_check(&Arc::downgrade(&client.inner)).await;
    }
}

/// How long until the current token must be put again (at most [`TOKEN_CHECK_EVERY`]).
async fn next_token_check(inner: &Weak<Inner>) -> Duration {
    let Some(inner) = inner.upgrade() else {
        return TOKEN_CHECK_EVERY;
    };
    let guard = inner.amqp.lock().await;
    guard
        .as_ref()
        .and_then(|a| a.token_refresh_at)
        .map_or(TOKEN_CHECK_EVERY, |at| {
            at.saturating_duration_since(Instant::now())
                .clamp(MIN_TOKEN_REFRESH, TOKEN_CHECK_EVERY)
        })
}

/// Puts a token for `audience` on `$cbs`; answers how long until it must be put again.
async fn put_token(
    session: &mut SessionHandle<()>,
    credential: &Credential,
    audience: &str,
) -> Result<Duration> {
    let span = tracing::debug_span!(
        "eventhubs.put_token",
        audience = %audience,
        key_name = credential.key_name().unwrap_or("")
    );
    async {
        let token = credential.cbs_token(audience).await?;
        let response = request::request(
            session,
            "$cbs",
            &[
                ("operation", "put-token"),
                ("type", token.token_type),
                ("name", audience),
            ],
            Value::String(token.value.clone()),
        )
        .await?;
        tracing::debug!(
            status = response.status,
            token_type = token.token_type,
            "put-token answered"
        );
        response.success(&format!("put-token for {audience}"))?;
        Ok(token.refresh_after().max(MIN_TOKEN_REFRESH))
    }
    .instrument(span)
    .await
}
