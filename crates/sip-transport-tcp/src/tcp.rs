//! `TcpTransport`: SIP over plain TCP (RFC 3261 §18) as the identity instance of the stream
//! machinery. Everything TCP needs beyond the generic part is "do nothing to the socket".

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use async_trait::async_trait;
use sip_transport_api::{Destination, Result, TransportKind};
use tokio::net::TcpStream;

use crate::{StreamConfig, StreamConnector, StreamTransport, StreamTransportConfig};

/// SIP over TCP: `TcpTransport::bind(TcpConfig)` returns the transport and its event receiver.
pub type TcpTransport = StreamTransport<TcpConnector>;

/// The TCP connector: a connected socket is already a SIP stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

#[async_trait]
impl StreamConnector for TcpConnector {
    type Stream = TcpStream;
    type PeerInfo = ();

    fn kind(&self) -> TransportKind {
        TransportKind::Tcp
    }

    async fn accept(&self, tcp: TcpStream, _peer: SocketAddr) -> Result<TcpStream> {
        Ok(tcp)
    }

    async fn connect(&self, tcp: TcpStream, _dest: &Destination) -> Result<TcpStream> {
        Ok(tcp)
    }

    fn peer_info(&self, _stream: &TcpStream) {}

    fn poll_read_ready(stream: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        stream.poll_read_ready(cx)
    }
}

impl StreamTransportConfig for StreamConfig {
    type Connector = TcpConnector;

    fn into_parts(self) -> Result<(TcpConnector, StreamConfig)> {
        Ok((TcpConnector, self))
    }
}
