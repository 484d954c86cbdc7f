//! Helpers for this crate's integration tests: binding transports on loopback; the bounded
//! event waits and the stateless responder come from the testkit.

#![allow(dead_code, unreachable_pub)]
// Each test binary uses some of the re-exported helpers, none uses all.
#![allow(unused_imports)]

use std::net::SocketAddr;
use std::sync::Arc;

use sip_transport_api::{Limits, Message};
use sip_transport_tcp::{TcpConfig, TcpTransport};

pub use sip_transport_testkit::events::{
    Events, WAIT, next_error, next_message, spawn_uas, wait_for, wait_fwd,
};

/// A listening transport on `127.0.0.1:0`.
pub async fn server(limits: Limits) -> (Arc<TcpTransport>, Events) {
    bind(loopback(), limits).await
}

/// A listening transport on `addr` (port 0 picks one).
pub async fn bind(addr: SocketAddr, limits: Limits) -> (Arc<TcpTransport>, Events) {
    TcpTransport::bind(TcpConfig::default().with_bind(addr).with_limits(limits))
        .await
        .expect("bind")
}

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// An OPTIONS request with Via sent-by `via` and sequence `n`.
pub fn options(via: SocketAddr, n: u64) -> Message {
    sip_transport_testkit::options_request("sip:ping@example.invalid", "TCP", &via.to_string(), n)
}
