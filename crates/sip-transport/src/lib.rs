//! # sip-transport
//!
//! The facade: re-exports the contract ([`sip_transport_api`]) and, behind the cargo features
//! `udp`, `tcp`, `tls` and `ws`, each protocol crate; behind `dns`, RFC 3263 server location
//! ([`dns`]).

pub use sip_transport_api::*;

/// UDP transport (feature `udp`).
#[cfg(feature = "udp")]
pub use sip_transport_udp as udp;

/// TCP transport (feature `tcp`).
#[cfg(feature = "tcp")]
pub use sip_transport_tcp as tcp;

/// TLS transport (feature `tls`).
#[cfg(feature = "tls")]
pub use sip_transport_tls as tls;

/// WebSocket transport (feature `ws`).
#[cfg(feature = "ws")]
pub use sip_transport_ws as ws;

#[cfg(feature = "dns")]
pub mod dns;

#[cfg(feature = "dns")]
pub use dns::{SipResolver, SipResolverConfig, TargetUri};
