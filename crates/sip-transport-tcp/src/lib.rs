//! # sip-transport-tcp
//!
//! SIP over TCP (RFC 3261 §18), built as one instance of a generic stream transport that TLS
//! reuses without a second copy of framing, pooling, limits or keepalive.
//!
//! - [`StreamTransport<C>`] is the whole stream machinery: the listener and accept loop, TCP
//!   dialing (connect timeout, `TCP_NODELAY`), the [`Limits`](sip_transport_api::Limits), the
//!   connection pool keyed by remote address with in-flight dial de-duplication, and one driver
//!   task per connection that frames with [`StreamDecoder`](sip_transport_api::StreamDecoder),
//!   answers RFC 5626 keepalives and writes a bounded queue. On flows it dialed it can also
//!   ping ([`StreamConfig::keepalive_interval`]) and closes a flow whose peer sends nothing
//!   for [`StreamConfig::pong_timeout`] after a ping (RFC 5626 §4.4.1, 10 s by default) with
//!   `CloseReason::KeepaliveTimeout`.
//! - [`StreamConnector`] is the only part that differs between TCP and TLS: what runs on a fresh
//!   TCP socket before SIP flows over it (nothing for TCP, a handshake for TLS).
//! - [`TcpTransport`] = `StreamTransport<TcpConnector>`, configured by [`TcpConfig`].
//! - Behind a layer-4 load balancer, [`StreamConfig::proxy_protocol`] takes the PROXY
//!   protocol header (v1 or v2, [`proxy`]) off each accepted connection, from trusted
//!   sources only, before the connector (TLS) sees a byte; the client's address becomes the
//!   message source.
//! - Every socket (listener, accepted, dialed) gets [`StreamConfig::dscp`] (DSCP marking,
//!   off by default) and [`StreamConfig::tcp_keepalive`] (kernel TCP keepalive, on by
//!   default with the OS's timing), through [`socket_options`].
//!
//! ## Another stream protocol on the same machinery (how TLS plugs in)
//!
//! A protocol crate implements [`StreamConnector`] (its `accept`/`connect` wrap the
//! `TcpStream`, e.g. in a `tokio_rustls` stream; `peer_info` reads the certificate identity
//! once; `annotate` copies it into each [`ReceivedMessage`](sip_transport_api::ReceivedMessage)),
//! implements [`StreamTransportConfig`] for its own config (holding a [`StreamConfig`]), and
//! exports `type TlsTransport = StreamTransport<TlsConnector>`. Then
//! `TlsTransport::bind(tls_config)` works, and framing, limits, pooling, keepalive, timeouts,
//! `close()` and stats come from here unchanged.
//!
//! ```no_run
//! use sip_transport_api::{Transport, TransportEvent};
//! use sip_transport_tcp::{TcpConfig, TcpTransport};
//!
//! # async fn run() -> sip_transport_api::Result<()> {
//! let config = TcpConfig::default().with_bind("127.0.0.1:5060".parse().expect("addr"));
//! let (transport, mut events) = TcpTransport::bind(config).await?;
//! while let Some(event) = events.recv().await {
//!     if let TransportEvent::Message(m) = event {
//!         println!("{} from {} on {:?}", m.message.len(), m.source, m.flow);
//!     }
//! }
//! transport.close().await;
//! # Ok(()) }
//! ```

mod config;
mod connection;
mod connector;
mod dial;
mod driver;
mod listener;
mod pool;
pub mod proxy;
pub mod socket_options;
mod tasks;
mod tcp;
mod transport;

pub use config::{StreamConfig, StreamTransportConfig, TcpConfig};
pub use connector::StreamConnector;
pub use dial::{bound_unacked, listen};
pub use driver::deadline_after;
pub use proxy::{IpPrefix, ProxyProtocolConfig};
pub use socket_options::{StreamSocketOptions, TcpKeepaliveConfig};
pub use tcp::{TcpConnector, TcpTransport};
pub use transport::StreamTransport;
