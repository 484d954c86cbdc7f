//! # sip-transport
//!
//! The facade of the sip-transport crates: the contract ([`sip_transport_api`], re-exported
//! here), each protocol crate behind its cargo feature (`udp`, `tcp`, `tls`, `ws`; all on by
//! default), RFC 3263 server location behind `dns` (on by default), and what ties them
//! together:
//!
//! - [`prelude`]: the names most programs need;
//! - `bind_udp(addr)`, `bind_tcp(addr)`, `bind_tls(addr, cert, key)`, `bind_ws(addr)`,
//!   `bind_wss(addr, cert, key)`: one-line listeners ([`bind`](mod@bind));
//! - [`TransportFactory`]: a client transport of the right kind from a `sip:`/`sips:` URI;
//! - [`TransportManager`]: holds transports, merges their events, and sends: over an open
//!   flow first, responses per RFC 3261 §18.2.2, requests to a URI through RFC 3263 with
//!   failover, hold-back, health checks, load balancing and throttling, and the UDP size rule
//!   of RFC 3261 §18.1.1;
//! - behind `metrics` (off by default): the counters through the `metrics` facade crate.
//!
//! Every combination of features compiles: a manager without `dns` reaches numeric hosts
//! only, a factory without `tls` answers `Error::TransportUnavailable` for `sips:` URIs.
//!
//! ```
//! use sip_transport::{TargetUri, TransportFactory, TransportKind};
//!
//! let uri: TargetUri = "sip:[2001:db8::1]:5070;transport=tcp".parse()?;
//! assert_eq!(TransportFactory::kind_for_uri(&uri)?, TransportKind::Tcp);
//! // `sips:` means TLS or WSS, and never downgrades to UDP (RFC 3261 §26.2.2).
//! let secure: TargetUri = "sips:example.com;transport=ws".parse()?;
//! assert_eq!(TransportFactory::kind_for_uri(&secure)?, TransportKind::Wss);
//! assert!(matches!(
//!     "sips:example.com;transport=udp".parse::<TargetUri>(),
//!     Err(sip_transport::Error::InvalidUri { .. })
//! ));
//! # Ok::<(), sip_transport::Error>(())
//! ```
#![cfg_attr(
    all(feature = "udp", feature = "tcp", feature = "dns"),
    doc = "\nA client transport from a SIP URI:\n",
    doc = include_str!("../docs/factory_example.md"),
    doc = "\nA manager holding listeners, sending by RFC 3263 with failover, and answering:\n",
    doc = include_str!("../docs/manager_example.md")
)]

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

pub mod bind;
#[cfg(feature = "dns")]
pub mod dns;
pub mod factory;
pub mod manager;
pub mod prelude;
pub mod uri;

#[cfg(feature = "tcp")]
pub use bind::bind_tcp;
#[cfg(feature = "tls")]
pub use bind::bind_tls;
#[cfg(feature = "udp")]
pub use bind::bind_udp;
#[cfg(feature = "ws")]
pub use bind::bind_ws;
#[cfg(all(feature = "ws", feature = "tls"))]
pub use bind::bind_wss;
#[cfg(feature = "dns")]
pub use dns::{SipResolver, SipResolverConfig};
pub use factory::{CreatedTransport, TransportFactory};
pub use manager::{
    HealthCheck, LoadBalancing, ManagerConfig, ManagerEvent, ManagerStats, SendTo, Sent,
    TransportId, TransportManager,
};
pub use uri::TargetUri;

/// The README's Rust examples, compiled as doc tests (they need the default transports).
#[cfg(all(doctest, feature = "udp", feature = "tcp", feature = "dns"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod readme_tests {
    /// The README's `## Using the library` shows the crate docs' examples, byte for byte.
    #[test]
    fn readme_shows_the_crate_examples() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## Using the library")
            .nth(1)
            .expect("README has a `## Using the library` section");
        for example in [
            include_str!("../docs/factory_example.md"),
            include_str!("../docs/manager_example.md"),
        ] {
            assert!(section.contains(example), "README differs from:\n{example}");
        }
    }
}
