//! `UdpTransport`: the socket, its receive task and the [`Transport`] implementation.
//!
//! Owns the lifecycle (bind, close, drop) and the send path. Framing is the api crate's, the
//! receive loop is in `receive.rs`, the size and address rules in `send.rs`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sip_transport_api::stats::{add, inc};
use sip_transport_api::{
    Counters, Destination, Error, FlowId, Limits, Message, Result, Transport, TransportEvent,
    TransportKind, TransportStats, async_trait,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::receive::ReceiveLoop;
use crate::send::{check_size, map_destination};
use crate::{UdpConfig, socket};

/// What the transport and its receive task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    pub(crate) dual_stack: bool,
    pub(crate) limits: Limits,
    pub(crate) mtu_threshold: usize,
    pub(crate) counters: Counters,
}

/// SIP over one UDP socket.
///
/// Created by [`UdpTransport::bind`], which also returns the event receiver. Received
/// messages arrive as [`TransportEvent::Message`] with `flow: None`: UDP has no flows, so
/// responses go to the top Via's `received`/`rport` address ([`Transport::send_response`]
/// does this when given `None`, or any flow id).
///
/// The receive task ends on [`close`](Transport::close) and when the last handle is dropped.
/// The socket itself is released when the last handle is dropped.
pub struct UdpTransport {
    shared: Arc<Shared>,
    closed: AtomicBool,
    receive_task: Mutex<Option<JoinHandle<()>>>,
    /// Kept to report `Closed`; taken by `close()` so that the channel then ends.
    events: Mutex<Option<mpsc::Sender<TransportEvent>>>,
    span: tracing::Span,
}

impl fmt::Debug for UdpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpTransport")
            .field("local", &self.shared.local)
            .field("dual_stack", &self.shared.dual_stack)
            .field("closed", &self.is_closed())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UdpTransport {
    /// Binds the socket and starts the receive task. Returns the transport and the receiver of
    /// its events, a channel bounded at `config.limits.event_queue_depth` (at least 1).
    ///
    /// Must be called from inside a Tokio runtime with I/O and time enabled; without a runtime
    /// it fails with [`Error::Bind`]. Socket setup failures are [`Error::Bind`] too.
    pub fn bind(config: UdpConfig) -> Result<(Arc<UdpTransport>, mpsc::Receiver<TransportEvent>)> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| Error::Bind {
            addr: config.bind,
            source: io::Error::other(e),
        })?;
        let bound = socket::bind(&config)?;
        let local = bound.socket.local_addr().map_err(|source| Error::Bind {
            addr: config.bind,
            source,
        })?;
        // tokio panics on a capacity of 0 or above MAX_PERMITS; a config must not panic.
        let depth = sip_transport_api::Limits::capacity(config.limits.event_queue_depth);
        let (tx, rx) = mpsc::channel(depth);
        let span = tracing::info_span!("sip_udp", %local);
        let shared = Arc::new(Shared {
            socket: bound.socket,
            local,
            dual_stack: bound.dual_stack,
            limits: config.limits,
            mtu_threshold: config.mtu_threshold,
            counters: Counters::default(),
        });
        let task = runtime.spawn(
            ReceiveLoop::new(Arc::clone(&shared), tx.clone())
                .run()
                .instrument(span.clone()),
        );
        span.in_scope(|| {
            tracing::info!(dual_stack = shared.dual_stack, "UDP transport bound");
        });
        let transport = UdpTransport {
            shared,
            closed: AtomicBool::new(false),
            receive_task: Mutex::new(Some(task)),
            events: Mutex::new(Some(tx)),
            span,
        };
        Ok((Arc::new(transport), rx))
    }

    /// The size above which requests are refused (RFC 3261 §18.1.1).
    pub fn mtu_threshold(&self) -> usize {
        self.shared.mtu_threshold
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// True when the socket is bound to `[::]` and also carries IPv4.
    pub fn is_dual_stack(&self) -> bool {
        self.shared.dual_stack
    }

    async fn send_datagram(&self, message: &Message, dest: &Destination) -> Result<()> {
        if self.is_closed() {
            return Err(Error::TransportClosed);
        }
        let shared = &self.shared;
        let target = map_destination(shared.local, shared.dual_stack, dest.addr)?;
        let threshold = if dest.udp_size_rule_waived {
            usize::MAX
        } else {
            shared.mtu_threshold
        };
        check_size(message, target, threshold, &shared.limits)?;
        let bytes = message.as_bytes();
        // Try at once; a UDP send only waits when the socket's send buffer is full.
        let sent = match shared.socket.try_send_to(bytes, target) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let after = shared.limits.write_timeout;
                tokio::time::timeout(after, shared.socket.send_to(bytes, target))
                    .await
                    .map_err(|_| Error::WriteTimeout {
                        peer: dest.addr,
                        after,
                    })?
            }
            other => other,
        };
        sent.map_err(|source| Error::Io {
            peer: dest.addr,
            source,
        })?;
        inc(&shared.counters.messages_sent);
        add(&shared.counters.bytes_sent, bytes.len());
        Ok(())
    }
}

#[async_trait]
impl Transport for UdpTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Udp
    }

    fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Sends one datagram. Requests over the MTU threshold fail with
    /// [`Error::UdpMessageTooLarge`], anything over the datagram maximum with
    /// [`Error::DatagramTooLarge`], a destination of the other address family with
    /// [`Error::AddressFamilyMismatch`], OS errors with [`Error::Io`]. Always `Ok(None)`:
    /// UDP has no flows.
    async fn send_message(&self, message: &Message, dest: &Destination) -> Result<Option<FlowId>> {
        let result = self.send_datagram(message, dest).await;
        if let Err(error) = &result {
            inc(&self.shared.counters.send_errors);
            tracing::debug!(parent: &self.span, peer = %dest.addr, %error, "send failed");
        }
        result.map(|()| None)
    }

    /// UDP has no flows: always [`Error::FlowClosed`] (or [`Error::TransportClosed`] after
    /// `close()`), so that [`Transport::send_response`] falls back to the Via address.
    async fn send_on_flow(&self, flow: FlowId, _message: &Message) -> Result<()> {
        if self.is_closed() {
            return Err(Error::TransportClosed);
        }
        Err(Error::FlowClosed { flow })
    }

    /// Stops the receive task, then reports [`TransportEvent::Closed`], waiting for room in
    /// the event channel for at most [`Limits::close_grace`]. The channel ends after it.
    /// Later sends fail with [`Error::TransportClosed`]. A second call returns at once.
    async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = lock(&self.receive_task).take();
        if let Some(task) = task {
            task.abort();
            // Wait for it to be gone, so that no message event follows `Closed`.
            let _ = task.await;
        }
        let events = lock(&self.events).take();
        if let Some(events) = events {
            let grace = self.shared.limits.close_grace;
            match tokio::time::timeout(grace, events.send(TransportEvent::Closed)).await {
                Ok(_) => {}
                Err(_) => tracing::debug!(
                    parent: &self.span,
                    ?grace,
                    "event channel still full; Closed not reported"
                ),
            }
        }
        tracing::info!(parent: &self.span, "UDP transport closed");
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn stats(&self) -> TransportStats {
        self.shared.counters.snapshot()
    }
}

impl Drop for UdpTransport {
    fn drop(&mut self) {
        // The task holds only `Shared`, never the transport, so this runs when the last
        // handle goes; the socket closes once the aborted task has released `Shared`.
        if let Some(task) = lock(&self.receive_task).take() {
            task.abort();
        }
    }
}
