//! [`EventHubClient`]: one AMQP connection and session to a namespace, for one event hub.
//!
//! Authentication is claims-based: before the first link to the hub (and before management
//! calls) the client puts a SAS token for the audience `sb://<namespace>/<hub>` on `$cbs`,
//! valid for one hour. The token is put again on the next operation once it is older than
//! 50 minutes; there is no background renewal, so a receiver attached for longer than the
//! token's life relies on the service not re-checking it (the emulator does not).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::messaging::Outcome;
use fe2o3_amqp::types::primitives::Value;
use fe2o3_amqp::{Connection, Sender, Session};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::amqp::errors::{Failure, amqp_error, classify, condition_of};
use crate::amqp::{message, request};
use crate::connection_string::ConnectionString;
use crate::error::{Error, ErrorKind, Result};
use crate::event::EventData;
use crate::management;
use crate::receiver::{PartitionReceiver, ReceiverOptions};
use crate::sas::SasCredential;

/// How long a put token is valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// When a token is put again (on the next operation that needs it).
const TOKEN_REFRESH_AFTER: Duration = Duration::from_secs(50 * 60);

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

pub(crate) struct Amqp {
    connection: ConnectionHandle<()>,
    pub(crate) session: SessionHandle<()>,
    /// When each audience's token was put.
    tokens: HashMap<String, Instant>,
}

struct Inner {
    namespace: String,
    hub: String,
    credential: SasCredential,
    amqp: Mutex<Amqp>,
    /// Senders by address (`<hub>` or `<hub>/Partitions/<id>`).
    senders: Mutex<HashMap<String, Arc<Mutex<Sender>>>>,
    closed: AtomicBool,
}

impl fmt::Debug for EventHubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHubClient")
            .field("namespace", &self.inner.namespace)
            .field("event_hub", &self.inner.hub)
            .field("credential", &self.inner.credential)
            .finish()
    }
}

fn closed() -> Error {
    Error::new(classify(&Failure::Closed), "the client was closed")
}

impl EventHubClient {
    /// Connects with a connection string. The hub is `event_hub`, else the string's
    /// `EntityPath`; [`ErrorKind::InvalidInput`] when neither names one. With
    /// `UseDevelopmentEmulator=true` the client speaks plain AMQP to the endpoint's host and
    /// port (default 5672), else AMQP over TLS on port 5671. Connects, begins a session and
    /// puts a token for the hub right away, so bad credentials fail here.
    pub async fn from_connection_string(connection_string: &str, event_hub: Option<&str>) -> Result<Self> {
        let parsed = ConnectionString::parse(connection_string)?;
        let hub = event_hub
            .or(parsed.event_hub())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "no event hub: pass one or put EntityPath in the connection string",
                )
            })?
            .to_owned();
        let namespace = parsed.fully_qualified_namespace().to_owned();
        let url = if parsed.use_development_emulator() {
            format!("amqp://{namespace}:{}", parsed.port().unwrap_or(5672))
        } else {
            format!("amqps://{namespace}:5671")
        };
        let (connection, session) = connect(&url, &namespace).await?;
        let inner = Inner {
            namespace,
            hub,
            credential: parsed.credential(),
            amqp: Mutex::new(Amqp {
                connection,
                session,
                tokens: HashMap::new(),
            }),
            senders: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        };
        let client = EventHubClient {
            inner: Arc::new(inner),
        };
        drop(client.lock_authorized().await?);
        Ok(client)
    }

    /// The namespace host, e.g. `ns.servicebus.windows.net`.
    pub fn fully_qualified_namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The event hub's name.
    pub fn event_hub(&self) -> &str {
        &self.inner.hub
    }

    /// Locks the session after making sure a valid token covers the hub.
    pub(crate) async fn lock_authorized(&self) -> Result<tokio::sync::MutexGuard<'_, Amqp>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let mut amqp = self.inner.amqp.lock().await;
        let audience = format!("sb://{}/{}", self.inner.namespace, self.inner.hub);
        let fresh = amqp
            .tokens
            .get(&audience)
            .is_some_and(|put| put.elapsed() < TOKEN_REFRESH_AFTER);
        if !fresh {
            put_token(&mut amqp.session, &self.inner.credential, &audience).await?;
            amqp.tokens.insert(audience, Instant::now());
        }
        Ok(amqp)
    }

    /// The hub's properties.
    pub async fn properties(&self) -> Result<EventHubProperties> {
        let mut amqp = self.lock_authorized().await?;
        management::read_hub(&mut amqp.session, &self.inner.hub).await
    }

    /// One partition's properties; [`ErrorKind::NotFound`] for an unknown partition.
    pub async fn partition_properties(&self, partition_id: &str) -> Result<PartitionProperties> {
        let mut amqp = self.lock_authorized().await?;
        management::read_partition(&mut amqp.session, &self.inner.hub, partition_id).await
    }

    /// All events in one transfer (batch format when more than one), to one partition, or
    /// round robin / hash when None. Sending no events does nothing.
    pub async fn send(&self, partition_id: Option<&str>, events: Vec<EventData>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let address = match partition_id {
            Some(id) => format!("{}/Partitions/{id}", self.inner.hub),
            None => self.inner.hub.clone(),
        };
        let span = tracing::debug_span!("eventhubs.send", address = %address, events = events.len());
        async {
            let sender = self.sender(&address).await?;
            let mut sender = sender.lock().await;
            let outcome = if events.len() == 1 {
                let mut events = events;
                match events.pop() {
                    Some(event) => sender.send(message::single(event)).await,
                    None => return Ok(()),
                }
            } else {
                sender.send(message::batch(events)?).await
            };
            let result = match outcome {
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
                Err(e) => {
                    // The link is unusable: forget it so the next send attaches a new one.
                    self.inner.senders.lock().await.remove(&address);
                    Err(amqp_error(&format!("send to {address}"), e))
                }
            };
            tracing::debug!(ok = result.is_ok(), "sent");
            result
        }
        .instrument(span)
        .await
    }

    async fn sender(&self, address: &str) -> Result<Arc<Mutex<Sender>>> {
        let mut senders = self.inner.senders.lock().await;
        if let Some(sender) = senders.get(address) {
            return Ok(Arc::clone(sender));
        }
        let mut amqp = self.lock_authorized().await?;
        let name = format!("sender-{address}-{}", uuid::Uuid::new_v4());
        let sender = Sender::attach(&mut amqp.session, name, address)
            .instrument(tracing::debug_span!("eventhubs.attach_sender", address = %address))
            .await
            .map_err(|e| amqp_error(&format!("attach sender to {address}"), e))?;
        let sender = Arc::new(Mutex::new(sender));
        senders.insert(address.to_owned(), Arc::clone(&sender));
        Ok(sender)
    }

    /// Opens a receiver on one partition of `consumer_group`.
    pub async fn open_receiver(
        &self,
        consumer_group: &str,
        partition_id: &str,
        options: ReceiverOptions,
    ) -> Result<PartitionReceiver> {
        let mut amqp = self.lock_authorized().await?;
        PartitionReceiver::attach(
            self.clone(),
            &mut amqp.session,
            consumer_group,
            partition_id,
            options,
        )
        .await
    }

    /// Closes the senders, the session and the connection. Later calls on any clone fail
    /// with [`ErrorKind::Closed`]; receivers already open stop working.
    pub async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let span = tracing::debug_span!("eventhubs.close", namespace = %self.inner.namespace);
        async {
            let senders: Vec<_> = self.inner.senders.lock().await.drain().collect();
            for (_, sender) in senders {
                if let Ok(sender) = Arc::try_unwrap(sender) {
                    let _ = sender.into_inner().close().await;
                }
            }
            let mut amqp = self.inner.amqp.lock().await;
            let ended = amqp.session.end().await;
            let closed = amqp.connection.close().await;
            ended.map_err(|e| amqp_error("end session", e))?;
            closed.map_err(|e| amqp_error("close connection", e))
        }
        .instrument(span)
        .await
    }
}

async fn connect(url: &str, namespace: &str) -> Result<(ConnectionHandle<()>, SessionHandle<()>)> {
    let span = tracing::debug_span!("eventhubs.connect", url = %url);
    async {
        let mut connection = Connection::builder()
            .container_id(format!("eventhubs-client-{}", uuid::Uuid::new_v4()))
            .hostname(namespace)
            .sasl_profile(SaslProfile::Anonymous)
            .open(url)
            .await
            .map_err(|e| amqp_error(&format!("connect to {url}"), e))?;
        let session = Session::begin(&mut connection)
            .await
            .map_err(|e| amqp_error("begin session", e))?;
        tracing::debug!("connected");
        Ok((connection, session))
    }
    .instrument(span)
    .await
}

async fn put_token(
    session: &mut SessionHandle<()>,
    credential: &SasCredential,
    audience: &str,
) -> Result<()> {
    let span =
        tracing::debug_span!("eventhubs.put_token", audience = %audience, key_name = %credential.key_name());
    async {
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_add(TOKEN_LIFETIME.as_secs());
        let token = credential.token(audience, i64::try_from(expiry).unwrap_or(i64::MAX))?;
        let response = request::request(
            session,
            "$cbs",
            &[
                ("operation", "put-token"),
                ("type", "servicebus.windows.net:sastoken"),
                ("name", audience),
            ],
            Value::String(token),
        )
        .await?;
        tracing::debug!(status = response.status, "put-token answered");
        response.success(&format!("put-token for {audience}"))?;
        Ok(())
    }
    .instrument(span)
    .await
}
