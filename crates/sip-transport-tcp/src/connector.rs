//! `StreamConnector`: the one thing that differs between SIP over TCP and SIP over TLS.
//!
//! The generic machinery ([`StreamTransport`](crate::StreamTransport)) accepts and dials plain
//! TCP sockets, applies the limits, and drives framing, keepalive and writes. A connector only
//! turns a connected `TcpStream` into the byte stream SIP runs over: TCP returns it as is, TLS
//! runs the handshake (server side in `accept`, client side with SNI in `connect`). The
//! transport runs both under `Limits::handshake_timeout` and at most
//! `Limits::max_concurrent_handshakes` accepts at once, so a connector needs no timers.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use async_trait::async_trait;
use sip_transport_api::{Destination, Error, ReceivedMessage, Result, TransportKind};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Turns connected TCP sockets into SIP byte streams. Implemented by [`TcpConnector`]
/// (identity) and by the TLS crate.
///
/// [`TcpConnector`]: crate::TcpConnector
#[async_trait]
pub trait StreamConnector: Send + Sync + 'static {
    /// The stream SIP bytes flow over (`TcpStream`, or a TLS stream around one).
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// What is known about the peer once the stream is up, kept for the life of the connection
    /// (`()` for TCP; the verified certificate identity for TLS).
    type PeerInfo: Send + Sync + 'static;

    /// The protocol, reported in events and by `Transport::kind`.
    fn kind(&self) -> TransportKind;

    /// Prepares an accepted connection (TLS: the server handshake). Runs under the handshake
    /// timeout; an error refuses the connection (counted in `connections_refused`).
    async fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> Result<Self::Stream>;

    /// Prepares a dialed connection (TLS: the client handshake, SNI and verification from
    /// `dest.server_name`). Runs under the handshake timeout; the error reaches the sender.
    async fn connect(&self, tcp: TcpStream, dest: &Destination) -> Result<Self::Stream>;

    /// Reads the peer information from an established stream (called once per connection).
    fn peer_info(&self, stream: &Self::Stream) -> Self::PeerInfo;

    /// Whether a connection whose peer is `info` may carry requests for the TLS server name
    /// `name` (a `Destination::server_name`, trailing dot removed) without a new handshake.
    /// The pool asks before reusing a connection for a named destination that the connection
    /// was not dialed for (an inbound one, or one dialed for another name); when it says no,
    /// the transport dials and verifies `name` itself (RFC 5922 §7.2, RFC 5923 §6).
    /// Default: true (TCP: any flow to the address serves any name).
    fn serves_name(&self, info: &Self::PeerInfo, name: &str) -> bool {
        let _ = (info, name);
        true
    }

    /// Extension point, called for every message received on a connection before it is
    /// delivered: TLS attaches the peer's certificate identity here. Default: nothing.
    fn annotate(&self, info: &Self::PeerInfo, message: &mut ReceivedMessage) {
        let _ = (info, message);
    }

    /// Maps an I/O error of an established stream to the error the connection reports. TLS
    /// turns a certificate the peer rejected after the handshake (TLS 1.3 client
    /// authentication) or another TLS alert into its typed error. Default: `Error::Io`.
    fn stream_error(&self, peer: SocketAddr, error: io::Error) -> Error {
        Error::Io {
            peer,
            source: error,
        }
    }

    /// Polls whether `stream` may have bytes to read, without a read buffer. The driver calls
    /// it before giving an idle connection a read buffer, so idle connections hold none.
    /// `Ready` is always safe (the default); `Pending` must arrange a wakeup when readable.
    fn poll_read_ready(stream: &Self::Stream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = (stream, cx);
        Poll::Ready(Ok(()))
    }
}
