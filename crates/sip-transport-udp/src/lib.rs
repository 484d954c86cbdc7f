//! # sip-transport-udp
//!
//! SIP over UDP (RFC 3261 §18): [`UdpTransport`], one socket behind the
//! [`Transport`](sip_transport_api::Transport) trait, configured by [`UdpConfig`].
//!
//! - one SIP message per datagram, framed by the api crate's sans-IO
//!   [`decode_datagram`](sip_transport_api::decode_datagram); requests get their top Via
//!   stamped with `received`/`rport` (RFC 3261 §18.2.1, RFC 3581 §4);
//! - receiving reads into one reused 64 KiB window and copies each datagram into a `Bytes` of
//!   its own size, so a message the application keeps holds only its own bytes;
//! - when the application does not keep up, datagrams are dropped and counted, never queued
//!   without bound;
//! - requests over [`UdpConfig::mtu_threshold`] (1300 bytes) are refused so that the caller
//!   moves them to a congestion-controlled transport (RFC 3261 §18.1.1), unless the
//!   destination waives the rule (`Destination::with_udp_size_rule_waived`: that transport
//!   was refused, or the path MTU is known);
//! - a datagram to a multicast address goes with `Destination::multicast_ttl` as its TTL
//!   (IPv4) or hop limit (IPv6), 1 when none is given: `send_response` fills it in from a
//!   Via `maddr` and `ttl` (RFC 3261 §18.2.2). Multicast sends are serialised on the socket
//!   (set the TTL, then send); unicast sends take no lock and make no extra syscall.
//!
//! What this crate is not: a transaction layer (no retransmissions), a resolver, or a
//! multi-socket server. For one socket per core, bind several transports to the same address
//! with [`UdpConfig::reuse_port`].
//!
//! ```no_run
//! use sip_transport_api::{Transport, TransportEvent};
//! use sip_transport_udp::{UdpConfig, UdpTransport};
//!
//! # async fn run() -> sip_transport_api::Result<()> {
//! let config = UdpConfig::default().with_bind("0.0.0.0:5060".parse().expect("address"));
//! let (udp, mut events) = UdpTransport::bind(config)?;
//! while let Some(event) = events.recv().await {
//!     if let TransportEvent::Message(received) = event {
//!         println!("{} from {}", received.message.len(), received.source);
//!     }
//! }
//! udp.close().await;
//! # Ok(())
//! # }
//! ```

mod config;
mod multicast;
mod receive;
mod send;
mod socket;
mod transport;

pub use config::{DEFAULT_MTU_THRESHOLD, UdpConfig};
pub use send::{MAX_DATAGRAM_V4, MAX_DATAGRAM_V6};
pub use transport::UdpTransport;
