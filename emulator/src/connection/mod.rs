//! One client connection: protocol headers, SASL, open, then the frame loop that dispatches
//! performatives to sessions and links and pumps deliveries to receivers.
//!
//! A connection that breaks the protocol (garbage, truncated or oversized frames, unknown
//! channels or handles) is closed with an AMQP error; nothing it does reaches other connections.

mod attach;
mod dispatch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fe2o3_amqp_types::performatives::Performative;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tracing::Instrument;

use crate::auth::Authorization;
use crate::broker::Broker;
use crate::sasl;
use crate::session::Output;
use crate::wire::frame::{AMQP_HEADER, FrameError, RawFrame, SASL_HEADER, read_frame};
use crate::wire::performative::{self as perf, decode_performative as decode};
use dispatch::Connection;

/// Largest frame we accept.
pub const MAX_FRAME_SIZE: u32 = 256 * 1024;
/// Idle timeout we announce; a peer silent for twice as long is disconnected.
pub const IDLE_TIMEOUT_MS: u32 = 60_000;
/// Time allowed for headers, SASL and open.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one write before the peer is considered stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a refused link waits for the client's detach before we send ours.
const REFUSAL_DETACH_DELAY: Duration = Duration::from_secs(1);
/// How long a closing connection waits for the client to read our `close` and hang up.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and discarded while lingering.
const LINGER_BYTES: usize = 4 * 1024 * 1024;
/// How often the loop looks at heartbeats and overdue refusals.
const HOUSEKEEPING: Duration = Duration::from_millis(250);

/// Serves one accepted TCP connection until it closes, fails, or the server shuts down.
pub async fn serve(stream: TcpStream, broker: Arc<Broker>, shutdown: watch::Receiver<bool>, id: u64) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let span = tracing::info_span!("amqp.connection", id, %peer);
    async move {
        let (reader, writer) = stream.into_split();
        log_end(run(reader, writer, broker, shutdown, id).await);
    }
    .instrument(span)
    .await;
}

/// Serves one accepted connection over TLS or WebSockets (their handshakes done) as [`serve`]
/// does a TCP one.
pub async fn serve_io<S>(
    stream: S,
    peer: String,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
    id: u64,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let span = tracing::info_span!("amqp.connection", id, %peer);
    async move {
        let (reader, writer) = tokio::io::split(stream);
        log_end(run(reader, writer, broker, shutdown, id).await);
    }
    .instrument(span)
    .await;
}

fn log_end(result: Result<(), ConnError>) {
    match result {
        Ok(()) => tracing::debug!("connection closed"),
        Err(e) => tracing::debug!(error = %e, "connection ended"),
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("handshake: {0}")]
    Handshake(String),
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
}

async fn run<R, W>(
    mut reader: R,
    writer: W,
    broker: Arc<Broker>,
    shutdown: watch::Receiver<bool>,
    id: u64,
) -> Result<(), ConnError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin,
{
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut reader, &mut writer, &broker))
        .await
        .map_err(|_| ConnError::Timeout("handshake"));
    let (remote_open, mechanism) = match handshake {
        Ok(Ok(done)) => done,
        Ok(Err(
            e @ (ConnError::Handshake(_)
            | ConnError::Frame(FrameError::TooLarge { .. } | FrameError::Malformed(_))),
        )) => {
            // What we answered (a protocol header, a SASL outcome) reaches the client intact.
            linger(writer, reader).await;
            return Err(e);
        }
        Ok(Err(e)) | Err(e) => return Err(e),
    };

    let remote_max = remote_open
        .max_frame_size
        .0
        .clamp(crate::wire::frame::MIN_MAX_FRAME_SIZE, MAX_FRAME_SIZE);
    let mut out = Output {
        buf: Vec::new(),
        remote_max_frame_size: remote_max,
    };
    let open = perf::open(
        &format!("eventhubs-emulator-{id}"),
        MAX_FRAME_SIZE,
        IDLE_TIMEOUT_MS,
    );
    if out.frame(0, &open, &[]).is_err() {
        return Err(ConnError::Handshake("encoding open".into()));
    }
    flush(&mut writer, &mut out).await?;

    let (frames_tx, frames_rx) = mpsc::channel::<Result<RawFrame, FrameError>>(16);
    let (stop_reading, mut stop) = watch::channel(false);
    let reader_task = tokio::spawn(
        async move {
            let silence = Duration::from_millis(u64::from(IDLE_TIMEOUT_MS) * 2);
            loop {
                let result = tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    read = tokio::time::timeout(silence, read_frame(&mut reader, MAX_FRAME_SIZE)) => match read {
                        Ok(r) => r,
                        Err(_) => Err(FrameError::Malformed("idle timeout: no frame received")),
                    },
                };
                let failed = result.is_err();
                if frames_tx.send(result).await.is_err() || failed {
                    break;
                }
            }
            reader
        }
        .in_current_span(),
    );
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let heartbeat = remote_open
        .idle_time_out
        .filter(|ms| *ms > 0)
        .map(|ms| Duration::from_millis(u64::from(ms / 2).max(100)));
    // SASL PLAIN proved the key: everything is open, as on the service. Otherwise (ANONYMOUS,
    // or no SASL at all) links and management requests need put-tokens.
    let auth = if broker.config.open_access || mechanism.as_deref() == Some("PLAIN") {
        Authorization::everything()
    } else {
        Authorization::default()
    };
    let mut conn = Connection {
        auth,
        id,
        broker,
        notify: Arc::new(Notify::new()),
        commands: commands_tx,
        out,
        sessions: HashMap::new(),
        buffered: crate::limits::Buffered::default(),
    };
    let result = conn
        .event_loop(&mut writer, frames_rx, commands_rx, shutdown, heartbeat)
        .await;
    conn.release_all();
    match result {
        // We sent `close` (or answered the client's): let it arrive before the socket goes.
        Ok(()) | Err(ConnError::Frame(_)) => {
            let _ = stop_reading.send(true);
            if let Ok(Ok(reader)) = tokio::time::timeout(LINGER, reader_task).await {
                linger(writer, reader).await;
            }
        }
        // The peer is gone, or a fault cut the connection on purpose: nothing to deliver.
        Err(_) => reader_task.abort(),
    }
    result
}

/// Headers, SASL and the client's `open`.
async fn handshake<R, W>(
    reader: &mut R,
    writer: &mut W,
    broker: &Broker,
) -> Result<(fe2o3_amqp_types::performatives::Open, Option<String>), ConnError>
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut header = [0u8; 8];
    reader.read_exact(&mut header).await?;
    let mut mechanism = None;
    if header == SASL_HEADER {
        let chosen = sasl::negotiate(reader, writer, &broker.config.sas_key)
            .await
            .map_err(|e| ConnError::Handshake(e.to_string()))?;
        tracing::debug!(mechanism = %chosen, "SASL done");
        mechanism = Some(chosen);
        reader.read_exact(&mut header).await?;
    }
    if header != AMQP_HEADER {
        let _ = crate::wire::frame::write_header(writer, &AMQP_HEADER).await;
        return Err(ConnError::Handshake(format!(
            "unsupported protocol header {header:?}"
        )));
    }
    crate::wire::frame::write_header(writer, &AMQP_HEADER).await?;
    let frame = read_frame(reader, MAX_FRAME_SIZE).await?;
    match decode(&frame.body) {
        Ok((Performative::Open(open), _)) => Ok((open, mechanism)),
        _ => Err(ConnError::Handshake("the first frame must be open".into())),
    }
}

/// Closes gracefully after our last frame: flushes it, shuts our side down (FIN), then reads
/// and discards what the client still sends until it closes too, for at most [`LINGER`] and
/// [`LINGER_BYTES`]. Dropping a socket with unread input makes the kernel send a reset, which
/// can destroy the `close` frame (and its error) before the client reads it.
async fn linger<W, R>(mut writer: W, mut reader: R)
where
    W: AsyncWrite + Unpin,
    R: tokio::io::AsyncRead + Unpin,
{
    let drain = async {
        let _ = writer.shutdown().await;
        let mut scratch = vec![0u8; 16 * 1024];
        let mut read = 0usize;
        while read < LINGER_BYTES {
            match reader.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

async fn flush<W: AsyncWrite + Unpin>(writer: &mut W, out: &mut Output) -> Result<(), ConnError> {
    if out.buf.is_empty() {
        return Ok(());
    }
    let buf = std::mem::take(&mut out.buf);
    tokio::time::timeout(WRITE_TIMEOUT, async {
        writer.write_all(&buf).await?;
        writer.flush().await
    })
    .await
    .map_err(|_| ConnError::Timeout("write"))??;
    // Keep the allocation for the next round unless it grew large.
    if buf.capacity() <= 1024 * 1024 {
        out.buf = buf;
        out.buf.clear();
    }
    Ok(())
}
