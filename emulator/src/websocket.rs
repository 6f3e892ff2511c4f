//! AMQP over WebSockets, as the service serves it (`wss://<namespace>/$servicebus/websocket`,
//! subprotocol `AMQPWSB10`): the listener can expect an HTTP upgrade on every connection
//! (after TLS, when it speaks TLS), then carries AMQP frames in binary WebSocket messages.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

/// The subprotocols we speak: the AMQP WebSocket binding's name, and the one fe2o3-amqp asks
/// for.
const SUBPROTOCOLS: [&str; 2] = ["AMQPWSB10", "amqp"];

/// Answers the upgrade of `stream` when it asks for an AMQP subprotocol (refused with 400
/// otherwise), echoing the one it asked for.
///
/// # Errors
/// The handshake's failure (not an upgrade, no AMQP subprotocol, the peer hung up).
pub async fn accept<S>(stream: S) -> Result<WsBytes<S>, tokio_tungstenite::tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    #[allow(
        clippy::result_large_err,
        reason = "the callback's signature is tokio-tungstenite's"
    )]
    let choose = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let offered = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find(|p| SUBPROTOCOLS.iter().any(|ours| ours.eq_ignore_ascii_case(p)))
            .map(str::to_owned);
        match offered.and_then(|p| HeaderValue::from_str(&p).ok()) {
            Some(protocol) => {
                response.headers_mut().insert("Sec-WebSocket-Protocol", protocol);
                Ok(response)
            }
            None => {
                let mut refusal =
                    ErrorResponse::new(Some("Sec-WebSocket-Protocol must offer AMQPWSB10".to_owned()));
                *refusal.status_mut() = StatusCode::BAD_REQUEST;
                Err(refusal)
            }
        }
    };
    let ws = tokio_tungstenite::accept_hdr_async(stream, choose).await?;
    Ok(WsBytes {
        inner: ws,
        read: Vec::new(),
        at: 0,
    })
}

/// A WebSocket as a byte stream: reads the bytes of binary messages in order, writes each
/// write as one binary message.
#[derive(Debug)]
pub struct WsBytes<S> {
    inner: WebSocketStream<S>,
    read: Vec<u8>,
    at: usize,
}

fn io_error(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    io::Error::other(e)
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsBytes<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.at < self.read.len() {
                let n = buf.remaining().min(self.read.len() - self.at);
                let at = self.at;
                buf.put_slice(&self.read[at..at + n]);
                self.at += n;
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => {
                    self.read = data.to_vec();
                    self.at = 0;
                }
                // Pings are answered by the library; text has no place in the binding.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a text WebSocket message on an AMQP connection",
                    )));
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsBytes<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.inner).poll_ready(cx)).map_err(io_error)?;
        Pin::new(&mut self.inner)
            .start_send(Message::Binary(buf.to_vec().into()))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx).map_err(io_error)
    }
}
