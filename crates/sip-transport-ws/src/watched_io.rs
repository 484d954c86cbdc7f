//! `WatchedIo`: the byte stream under tungstenite, with a note of when the message now
//! arriving started and how many bytes have been read. The driver reads both to enforce
//! `Limits::header_read_timeout` on a message trickled in (slowloris, byte by byte or in
//! fragments) and to see whether anything came back after a keepalive ping.
//!
//! Why a wrapper: tungstenite yields whole messages only, and a message in progress lives in
//! its private buffer. Watching the bytes it reads, through the sans-IO [`FrameScanner`],
//! tells exactly when the input leaves and regains a message boundary, whatever tungstenite
//! buffers. Writes pass straight through; reads are passed through unchanged and only
//! looked at.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::frame_scanner::FrameScanner;

/// A stream whose reads are watched for WebSocket message boundaries.
#[derive(Debug)]
pub(crate) struct WatchedIo<S> {
    inner: S,
    scanner: FrameScanner,
    /// When the first byte of the message in progress arrived; `None` at a message boundary.
    partial_since: Option<Instant>,
    /// Bytes read so far (any progress answers a keepalive ping).
    bytes_read: u64,
}

impl<S> WatchedIo<S> {
    /// Wraps a stream before its HTTP upgrade (the scanner skips the HTTP head).
    pub(crate) fn new(inner: S) -> Self {
        WatchedIo {
            inner,
            scanner: FrameScanner::before_upgrade(),
            partial_since: None,
            bytes_read: 0,
        }
    }

    /// From now on every byte read is WebSocket frames: for the accepting side once the
    /// handshake is done (tungstenite refuses bytes after the upgrade request, so all it read
    /// was the request, whatever its line ends).
    pub(crate) fn start_frames(&mut self) {
        self.scanner = FrameScanner::frames_only();
        self.partial_since = None;
    }

    /// Bytes read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// When the message now arriving started, if one is partly read.
    pub(crate) fn partial_since(&self) -> Option<Instant> {
        self.partial_since
    }

    /// Frames of any kind completed so far (a pong included).
    #[cfg(test)]
    pub(crate) fn frames(&self) -> u64 {
        self.scanner.frames()
    }

    /// Starts the clock of a message in progress over at `now`: we stopped reading for a
    /// while (backpressure), and that time was ours, not the peer's.
    pub(crate) fn restart_clock(&mut self, now: Instant) {
        if self.partial_since.is_some() {
            self.partial_since = Some(now);
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.bytes_read += bytes.len() as u64;
        let boundaries = self.scanner.boundaries();
        self.scanner.feed(bytes);
        self.partial_since = if self.scanner.at_boundary() {
            None
        } else if self.partial_since.is_none() || self.scanner.boundaries() != boundaries {
            // A new message began in this read (possibly right after the end of another).
            Some(Instant::now())
        } else {
            self.partial_since
        };
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.saw(&buf.filled()[before..]);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn marks_a_partial_message_and_clears_it_at_the_boundary() {
        let (mut tx, rx) = tokio::io::duplex(256);
        let mut w = WatchedIo::new(rx);
        let mut buf = [0u8; 256];
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"GET / HTTP/1.1\r\n\r\n\x81\x83")
            .await
            .expect("write");
        let _ = w.read(&mut buf).await.expect("read");
        let started = w.partial_since().expect("a frame is in progress");
        assert_eq!(w.frames(), 0);
        w.restart_clock(started + std::time::Duration::from_secs(1));
        assert!(w.partial_since() > Some(started));
        tokio::io::AsyncWriteExt::write_all(&mut tx, &[1, 2, 3, 4, b'a', b'b', b'c'])
            .await
            .expect("write");
        let _ = w.read(&mut buf).await.expect("read");
        assert_eq!(w.partial_since(), None);
        assert_eq!(w.frames(), 1);
        assert_eq!(w.bytes_read(), 27);
        // After a handshake the accepting side only sees frames: a head-like prefix is not
        // skipped any more.
        w.start_frames();
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"\x81\x80")
            .await
            .expect("write");
        let _ = w.read(&mut buf).await.expect("read");
        assert!(w.partial_since().is_some(), "mask key still to come");
    }
}
