//! `WsIo`: the byte stream under one WebSocket connection — plain TCP, or our own rustls
//! session (client or server side) over TCP — so that one driver type serves `ws` and `wss`.
//!
//! Only delegation to tokio's and tokio-rustls' streams; no buffering of its own. TLS
//! sessions are boxed so a plain connection stays small.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The transport under a WebSocket: TCP, or TLS over TCP.
#[derive(Debug)]
pub(crate) enum WsIo {
    /// `ws`.
    Plain(TcpStream),
    /// `wss`, we connected.
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// `wss`, the peer connected.
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            WsIo::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            WsIo::Client($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
            WsIo::Server($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WsIo::Plain(s) => s.is_write_vectored(),
            WsIo::Client(s) => s.is_write_vectored(),
            WsIo::Server(s) => s.is_write_vectored(),
        }
    }
}
