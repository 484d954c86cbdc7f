//! `UdpTransport`: the socket, its receive task and the [`Transport`] implementation.
//!
//! Owns the lifecycle (bind, close, drop) and the send path. Framing is the api crate's, the
//! receive loop is in `receive.rs`, the size and address rules in `send.rs`, the multicast
//! TTL option in `multicast.rs`.

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

use crate::multicast::{DEFAULT_MULTICAST_TTL, is_multicast, set_multicast_ttl};
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
    /// Held across "set the multicast TTL, send" so that two multicast sends with different
    /// TTLs cannot interleave on the shared socket. Unicast sends never take it.
    pub(crate) multicast: tokio::sync::Mutex<()>,
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
            multicast: tokio::sync::Mutex::new(()),
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
        if is_multicast(target) {
            // RFC 3261 §18.2.2: a response to a multicast `maddr` goes with the Via's TTL, or 1.
            // Set on every multicast send: the previous one may have left another value.
            let ttl = dest.multicast_ttl.unwrap_or(DEFAULT_MULTICAST_TTL);
            let _serialised = shared.multicast.lock().await;
            set_multicast_ttl(&shared.socket, target, ttl).map_err(|source| Error::Io {
                peer: dest.addr,
                source,
            })?;
            self.send_to(bytes, target, dest).await?;
        } else {
            self.send_to(bytes, target, dest).await?;
        }
        inc(&shared.counters.messages_sent);
        add(&shared.counters.bytes_sent, bytes.len());
        Ok(())
    }

    /// One `send_to` of a checked datagram to `target` (`dest.addr` mapped onto the socket).
    async fn send_to(&self, bytes: &[u8], target: SocketAddr, dest: &Destination) -> Result<()> {
        let socket = &self.shared.socket;
        // Try at once; a UDP send only waits when the socket's send buffer is full.
        let sent = match socket.try_send_to(bytes, target) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let after = self.shared.limits.write_timeout;
                tokio::time::timeout(after, socket.send_to(bytes, target))
                    .await
                    .map_err(|_| Error::WriteTimeout {
                        peer: dest.addr,
                        after,
                    })?
            }
            other => other,
        };
        sent.map(|_| ()).map_err(|source| Error::Io {
            peer: dest.addr,
            source,
        })
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
    /// UDP has no flows. To a multicast address, the datagram goes with
    /// [`Destination::multicast_ttl`] as its TTL or hop limit, 1 when it is `None`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use socket2::SockRef;
    use std::time::Duration;

    fn options(via: &str) -> Message {
        Message::parse(Bytes::from(format!(
            "OPTIONS sip:x@example.invalid SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK1\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )))
        .expect("parses")
    }

    fn response(via: &str) -> Message {
        Message::parse(Bytes::from(format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK1\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )))
        .expect("parses")
    }

    fn bind(addr: &str) -> Option<Arc<UdpTransport>> {
        let config = UdpConfig::default().with_bind(addr.parse().expect("addr"));
        UdpTransport::bind(config).ok().map(|(t, _rx)| t)
    }

    // The socket option after a send through the transport: what the old code never touched.
    // Group 239.255.77.9 on a socket bound to 127.0.0.1 stays on `lo`.
    #[tokio::test]
    async fn multicast_sends_set_the_ipv4_ttl_and_unicast_sends_do_not() {
        let udp = bind("127.0.0.1:0").expect("bind");
        let ttl = || SockRef::from(&udp.shared.socket).multicast_ttl_v4().ok();
        assert_eq!(ttl(), Some(1));
        udp.send_response(&response("127.0.0.1:9;maddr=239.255.77.9;ttl=6"), None)
            .await
            .expect("multicast response");
        assert_eq!(ttl(), Some(6));
        let unicast = Destination::new(udp.local_addr()).with_multicast_ttl(42);
        udp.send_message(&options("127.0.0.1:9"), &unicast)
            .await
            .expect("unicast");
        assert_eq!(ttl(), Some(6), "a unicast send leaves the option alone");
        let group: SocketAddr = "239.255.77.9:9".parse().expect("addr");
        udp.send_message(&options("127.0.0.1:9"), &Destination::new(group))
            .await
            .expect("multicast request");
        assert_eq!(ttl(), Some(1), "no TTL given: 1");
    }

    // IPv6: the hop limit. `ff01::` is interface-local: it never leaves the host (here, where
    // `lo` has no multicast, the send fails with "unreachable"; the option is set first).
    #[tokio::test]
    async fn multicast_sends_set_the_ipv6_hop_limit() {
        let Some(udp) = bind("[::1]:0") else {
            eprintln!("\n*** SKIPPED: no IPv6 loopback on this host ***\n");
            return;
        };
        let hops = || SockRef::from(&udp.shared.socket).multicast_hops_v6().ok();
        assert_eq!(hops(), Some(1));
        let _ = udp
            .send_response(&response("[::1]:9;maddr=[ff01::5];ttl=5"), None)
            .await;
        assert_eq!(hops(), Some(5));
        assert_eq!(
            SockRef::from(&udp.shared.socket).multicast_ttl_v4().ok(),
            Some(1),
            "the IPv4 option is not the one for an IPv6 group"
        );
    }

    // Only multicast sends take the lock: with it held, a unicast send completes and a
    // multicast send waits for it.
    #[tokio::test]
    async fn only_multicast_sends_take_the_lock() {
        let udp = bind("127.0.0.1:0").expect("bind");
        let held = udp.shared.multicast.lock().await;
        let unicast = Destination::new(udp.local_addr());
        tokio::time::timeout(
            Duration::from_secs(5),
            udp.send_message(&options("127.0.0.1:9"), &unicast),
        )
        .await
        .expect("a unicast send does not wait for the multicast lock")
        .expect("sent");
        let group = Destination::new("239.255.77.9:9".parse().expect("addr"));
        let request = options("127.0.0.1:9");
        let multicast = udp.send_message(&request, &group);
        let mut multicast = std::pin::pin!(multicast);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut multicast)
                .await
                .is_err(),
            "a multicast send waits for the lock"
        );
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), multicast)
            .await
            .expect("then it goes")
            .expect("sent");
    }
}
