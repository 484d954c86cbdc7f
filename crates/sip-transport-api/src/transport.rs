//! The `Transport` trait and what transports tell the application (`TransportEvent`).
//!
//! The trait is dyn-compatible (`Arc<dyn Transport>`) through `async-trait`. Transports are
//! created by each protocol crate's `bind(config)`, which also returns the event receiver.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::codec::response_target;
use crate::{Error, FlowId, Message, PeerIdentity, Result, TransportKind, TransportStats};

/// Where to send: an address, plus the name the target is known by (for TLS server name
/// verification and SNI, and the WebSocket `Host`) and, for WebSocket, the resource path.
///
/// Build it with [`Destination::new`] (or `From<SocketAddr>`) and the `with_*` setters: it is
/// `#[non_exhaustive]`, so settings can be added without breaking callers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Destination {
    /// The socket address to connect or send to.
    pub addr: SocketAddr,
    /// The host name from the SIP URI (not the resolved IP), if there was one.
    pub server_name: Option<Arc<str>>,
    /// The WebSocket resource (path and query), `/` when absent.
    pub resource: Option<Arc<str>>,
    /// UDP only: send a request even when it is over the RFC 3261 §18.1.1 size threshold.
    /// That section allows it when the congestion-controlled transport it should go over was
    /// refused or reset (the retry it asks for), or when the path MTU is known to be larger.
    /// The datagram maximum and `Limits::max_message_size` still hold. Other transports
    /// ignore it.
    pub udp_size_rule_waived: bool,
    /// UDP only: the TTL (IPv4) or hop limit (IPv6) of a datagram sent to a multicast
    /// address; `None` sends with 1. A response to a Via `maddr` carries the Via's `ttl`, or 1
    /// (RFC 3261 §18.2.2); a request to a multicast address should go with the `ttl` its top
    /// Via states (§18.1.1 recommends 1 for IPv4). Ignored for unicast addresses and by other
    /// transports.
    pub multicast_ttl: Option<u8>,
}

impl Destination {
    /// A destination known only by address.
    pub fn new(addr: SocketAddr) -> Self {
        Destination {
            addr,
            server_name: None,
            resource: None,
            udp_size_rule_waived: false,
            multicast_ttl: None,
        }
    }

    /// Sets the host name used for TLS verification and the WebSocket `Host` header.
    pub fn with_server_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Sets the WebSocket resource path.
    pub fn with_resource(mut self, path: impl Into<Arc<str>>) -> Self {
        self.resource = Some(path.into());
        self
    }

    /// Waives the RFC 3261 §18.1.1 size rule for a UDP request (see
    /// [`Destination::udp_size_rule_waived`]).
    pub fn with_udp_size_rule_waived(mut self) -> Self {
        self.udp_size_rule_waived = true;
        self
    }

    /// Sets the multicast TTL (IPv4) or hop limit (IPv6) for a UDP send to a multicast
    /// address (see [`Destination::multicast_ttl`]).
    pub fn with_multicast_ttl(mut self, ttl: u8) -> Self {
        self.multicast_ttl = Some(ttl);
        self
    }
}

impl From<SocketAddr> for Destination {
    fn from(addr: SocketAddr) -> Self {
        Destination::new(addr)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.server_name {
            Some(n) => write!(f, "{n} ({})", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer connected to our listener.
    Inbound,
    /// We dialed the peer.
    Outbound,
}

/// Why a connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side (FIN or WebSocket close).
    PeerClosed,
    /// No traffic for `Limits::idle_timeout`.
    IdleTimeout,
    /// A header block (on WebSocket: a whole message, which carries one SIP message) did not
    /// complete within `Limits::header_read_timeout` of its first byte.
    HeaderReadTimeout,
    /// A write did not complete within `Limits::write_timeout`.
    WriteTimeout,
    /// A keepalive ping we sent got no pong in time: the flow is dead (RFC 5626 §4.4.1).
    KeepaliveTimeout,
    /// The bytes received could not be framed; an `Error` event carries the details.
    ProtocolError,
    /// A socket error (reset, ...).
    Io(std::io::ErrorKind),
    /// The TLS or WebSocket handshake failed or timed out.
    HandshakeFailed,
    /// The transport was closed locally.
    LocalClose,
}

/// A message that arrived, with where it came from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReceivedMessage {
    /// The message. Requests have their top Via stamped (received/rport).
    pub message: Message,
    /// The peer address (after PROXY protocol, the original client).
    pub source: SocketAddr,
    /// Our address it arrived on.
    pub local: SocketAddr,
    /// The transport it arrived over.
    pub kind: TransportKind,
    /// The connection it arrived on; `None` for UDP.
    pub flow: Option<FlowId>,
    /// On secure flows whose peer presented a verified certificate (TLS servers, mutual-TLS
    /// clients): its identity. Shared by every message of the flow.
    pub peer_identity: Option<Arc<PeerIdentity>>,
}

impl ReceivedMessage {
    /// Builds the event payload (transports call this).
    pub fn new(
        message: Message,
        source: SocketAddr,
        local: SocketAddr,
        kind: TransportKind,
        flow: Option<FlowId>,
    ) -> Self {
        ReceivedMessage {
            message,
            source,
            local,
            kind,
            flow,
            peer_identity: None,
        }
    }

    /// Attaches the peer's verified certificate identity (TLS transports call this).
    pub fn with_peer_identity(mut self, identity: Option<Arc<PeerIdentity>>) -> Self {
        self.peer_identity = identity;
        self
    }
}

/// What a transport reports to the application, in order per connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportEvent {
    /// A SIP message arrived.
    Message(ReceivedMessage),
    /// A connection opened.
    ConnectionOpened {
        /// Its flow.
        flow: FlowId,
        /// The peer.
        peer: SocketAddr,
        /// Our side.
        local: SocketAddr,
        /// Its transport.
        kind: TransportKind,
        /// Who opened it.
        direction: Direction,
    },
    /// A connection closed.
    ConnectionClosed {
        /// Its flow.
        flow: FlowId,
        /// The peer.
        peer: SocketAddr,
        /// Its transport.
        kind: TransportKind,
        /// Why.
        reason: CloseReason,
    },
    /// A keepalive pong arrived (RFC 5626 §4.4.1): the flow is alive.
    Pong {
        /// The flow.
        flow: FlowId,
        /// The peer.
        peer: SocketAddr,
    },
    /// Something went wrong with received data (a malformed datagram, a framing error that
    /// closes a connection) or with a queued send. The transport keeps serving.
    Error {
        /// The peer involved, if known.
        peer: Option<SocketAddr>,
        /// The flow involved, if any.
        flow: Option<FlowId>,
        /// What happened.
        error: Error,
    },
    /// The transport has closed; no more events follow.
    Closed,
}

/// A SIP transport: one listening socket (or none, for client-only use) and its flows.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// The protocol.
    fn kind(&self) -> TransportKind;

    /// The bound local address.
    fn local_addr(&self) -> SocketAddr;

    /// Sends a message to a destination: over an open flow to that address if there is one,
    /// else over a new connection (streams) or as a datagram (UDP). Returns the flow used, or
    /// `None` for UDP.
    async fn send_message(&self, message: &Message, dest: &Destination) -> Result<Option<FlowId>>;

    /// Sends a message over a known flow. `Error::FlowClosed` if it is gone.
    async fn send_on_flow(&self, flow: FlowId, message: &Message) -> Result<()>;

    /// Stops listening, flushes queued writes within the close grace period, closes every
    /// connection, then reports `TransportEvent::Closed`.
    async fn close(&self);

    /// True after `close()`.
    fn is_closed(&self) -> bool;

    /// A snapshot of the counters.
    fn stats(&self) -> TransportStats;

    /// Sends a response as RFC 3261 §18.2.2 says: over the request's flow when it is still
    /// open, otherwise to the address the top Via gives (`maddr`/`received`/`rport`/sent-by),
    /// with the Via's multicast TTL ([`Destination::multicast_ttl`]) when that is `maddr`.
    /// A Via host that is a name needs RFC 3263 resolution, which the facade's manager does.
    async fn send_response(&self, response: &Message, flow: Option<FlowId>) -> Result<()> {
        if let Some(flow) = flow {
            match self.send_on_flow(flow, response).await {
                Err(Error::FlowClosed { .. }) => {}
                other => return other,
            }
        }
        let target = response_target(response)?;
        let addr = target
            .socket_addr()
            .ok_or_else(|| Error::InvalidDestination {
                reason: format!(
                    "Via host {:?} needs DNS resolution (RFC 3263 §5)",
                    target.host
                ),
            })?;
        let mut dest = Destination::new(addr);
        if let Some(ttl) = target.ttl {
            dest = dest.with_multicast_ttl(ttl);
        }
        self.send_message(response, &dest).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::future::Future;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    /// Records the destinations `send_message` is given; has no flows.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<Destination>>);

    #[async_trait]
    impl Transport for Recorder {
        fn kind(&self) -> TransportKind {
            TransportKind::Udp
        }
        fn local_addr(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], 5060))
        }
        async fn send_message(&self, _: &Message, dest: &Destination) -> Result<Option<FlowId>> {
            self.0.lock().expect("lock").push(dest.clone());
            Ok(None)
        }
        async fn send_on_flow(&self, flow: FlowId, _: &Message) -> Result<()> {
            Err(Error::FlowClosed { flow })
        }
        async fn close(&self) {}
        fn is_closed(&self) -> bool {
            false
        }
        fn stats(&self) -> TransportStats {
            TransportStats::default()
        }
    }

    /// The recorder's futures never wait: one poll finishes them.
    fn now<F: Future>(f: F) -> F::Output {
        match std::pin::pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the recorder does not wait"),
        }
    }

    fn sent_to(via: &str) -> Destination {
        let response = Message::parse(Bytes::from(format!(
            "SIP/2.0 200 OK\r\nVia: {via}\r\nContent-Length: 0\r\n\r\n"
        )))
        .expect("parses");
        let t = Recorder::default();
        now(t.send_response(&response, None)).expect("sent");
        t.0.lock().expect("lock").pop().expect("one send")
    }

    // RFC 3261 §18.2.2: the Via's ttl for a maddr, 1 without one, nothing for unicast.
    #[test]
    fn send_response_carries_the_maddr_ttl() {
        let d = sent_to("SIP/2.0/UDP h:5070;maddr=239.255.0.1;ttl=4;branch=z9hG4bK1");
        assert_eq!(d.addr, SocketAddr::from(([239, 255, 0, 1], 5070)));
        assert_eq!(d.multicast_ttl, Some(4));
        let d = sent_to("SIP/2.0/UDP h:5070;maddr=239.255.0.1;branch=z9hG4bK1");
        assert_eq!(d.multicast_ttl, Some(1));
        let d = sent_to("SIP/2.0/UDP 192.0.2.1:5070;ttl=9;branch=z9hG4bK1");
        assert_eq!(d.multicast_ttl, None);
        assert_eq!(
            Destination::new(d.addr).with_multicast_ttl(0).multicast_ttl,
            Some(0)
        );
    }
}
