//! The receive loop: one task per socket that reads datagrams, frames each one with the api
//! crate's `decode_datagram`, stamps requests and hands them to the bounded event channel.
//!
//! It never waits on the application: when the channel is full, datagrams are dropped and
//! counted (UDP has no backpressure to give). Not a parser (the api crate frames) and not the
//! send path.

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sip_transport_api::stats::{add, dec, inc};
use sip_transport_api::{
    Datagram, Error, ReceivedMessage, TransportEvent, TransportKind, decode_datagram,
    stamp_received_owned,
};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::send::canonical;
use crate::transport::Shared;

/// Bytes offered to each read. Larger than any UDP payload (65,527 over IPv6), so a datagram
/// that fills it can only have been cut short by the OS.
pub(crate) const RECV_WINDOW: usize = 65_536;

/// Datagrams drained per readiness wakeup before yielding to other tasks, so that a flood on
/// one socket cannot starve the runtime.
const DRAIN_BATCH: usize = 128;

/// Pause after an unexpected receive error, so a persistent one cannot spin the loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// How a drain ended.
enum Drained {
    /// The socket would block: wait for the next readiness.
    Empty,
    /// A full batch was read: yield, then read on.
    Batch,
}

/// The state of the receive task.
pub(crate) struct ReceiveLoop {
    shared: Arc<Shared>,
    events: mpsc::Sender<TransportEvent>,
    /// One window, reused for every read. Each datagram is copied out of it into a buffer of
    /// its own size: slices of a shared receive buffer would let one message the application
    /// keeps (or one queued event) hold the whole buffer, a few hundred bytes pinning
    /// hundreds of kilobytes (review finding). The copy of a datagram is small next to the
    /// system call that read it.
    buf: Box<[u8]>,
}

impl ReceiveLoop {
    pub(crate) fn new(shared: Arc<Shared>, events: mpsc::Sender<TransportEvent>) -> Self {
        ReceiveLoop {
            shared,
            events,
            buf: vec![0; RECV_WINDOW].into_boxed_slice(),
        }
    }

    /// Runs until the application drops the event receiver or the runtime goes away.
    /// `close()` and dropping the transport abort the task from outside.
    pub(crate) async fn run(mut self) {
        tracing::debug!("receive loop started");
        loop {
            if let Err(e) = self.shared.socket.readable().await {
                tracing::debug!(error = %e, "socket no longer pollable; receive loop ends");
                return;
            }
            match self.drain().await {
                ControlFlow::Break(()) => {
                    tracing::debug!("event receiver dropped; receive loop ends");
                    return;
                }
                ControlFlow::Continue(Drained::Batch) => tokio::task::yield_now().await,
                ControlFlow::Continue(Drained::Empty) => {}
            }
        }
    }

    /// Reads datagrams until the socket would block or a batch is done.
    async fn drain(&mut self) -> ControlFlow<(), Drained> {
        for _ in 0..DRAIN_BATCH {
            match self.shared.socket.try_recv_from(&mut self.buf) {
                Ok((len, source)) => self.on_datagram(len, source)?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return ControlFlow::Continue(Drained::Empty);
                }
                Err(e) => self.on_recv_error(e).await,
            }
        }
        ControlFlow::Continue(Drained::Batch)
    }

    fn on_datagram(&mut self, len: usize, source: SocketAddr) -> ControlFlow<()> {
        let bytes = Bytes::copy_from_slice(&self.buf[..len]);
        let counters = &self.shared.counters;
        add(&counters.bytes_received, len);
        let source = canonical(source);
        if len >= RECV_WINDOW {
            // Cannot happen for a real UDP datagram; if the OS ever cut one short, say so.
            inc(&counters.malformed);
            let error = Error::MessageTooLarge {
                size: len,
                limit: self.shared.limits.max_message_size,
            };
            return self.report(source, error);
        }
        match decode_datagram(bytes, &self.shared.limits) {
            Ok(Datagram::Keepalive) => {
                inc(&counters.keepalives_received);
                ControlFlow::Continue(())
            }
            Ok(Datagram::Message(message)) => {
                // RFC 3261 §18.2.1 (received) and RFC 3581 §4 (rport), requests only.
                let message = stamp_received_owned(message, source);
                let event = TransportEvent::Message(ReceivedMessage::new(
                    message,
                    source,
                    self.shared.local,
                    TransportKind::Udp,
                    None,
                ));
                // Counted before it is queued, so a consumer that already holds the event
                // never reads a snapshot without it (as the stream transports do).
                inc(&counters.messages_received);
                match self.events.try_send(event) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(TrySendError::Full(_)) => {
                        dec(&counters.messages_received);
                        inc(&counters.dropped);
                        tracing::trace!(%source, "event channel full; datagram dropped");
                        ControlFlow::Continue(())
                    }
                    Err(TrySendError::Closed(_)) => ControlFlow::Break(()),
                }
            }
            Err(error) => {
                inc(&counters.malformed);
                tracing::debug!(%source, %error, "malformed datagram");
                self.report(source, error)
            }
        }
    }

    /// Reports a bad datagram. The report itself is dropped when the channel is full: a peer
    /// sending junk must not be able to block the loop either.
    fn report(&self, peer: SocketAddr, error: Error) -> ControlFlow<()> {
        let event = TransportEvent::Error {
            peer: Some(peer),
            flow: None,
            error,
        };
        match self.events.try_send(event) {
            Ok(()) | Err(TrySendError::Full(_)) => ControlFlow::Continue(()),
            Err(TrySendError::Closed(_)) => ControlFlow::Break(()),
        }
    }

    async fn on_recv_error(&self, e: io::Error) {
        match e.kind() {
            // ICMP errors for earlier sends (Windows reports them on unconnected sockets):
            // about some other peer, not this socket.
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted => {
                tracing::trace!(error = %e, "ignored receive error");
            }
            _ => {
                tracing::warn!(error = %e, "receive error");
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
}
