//! Helpers shared by this crate's integration tests: bounded waits on the event channel and
//! transports bound on loopback. Peers and message builders live in the testkit.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::{ReceivedMessage, Transport, TransportEvent, TransportStats};
use sip_transport_udp::{UdpConfig, UdpTransport};
use tokio::sync::mpsc::Receiver;

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(5);

/// Awaits `f` for at most [`WAIT`].
pub async fn bounded<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// The next event, within [`WAIT`].
pub async fn next_event(rx: &mut Receiver<TransportEvent>) -> TransportEvent {
    bounded("an event", rx.recv())
        .await
        .expect("event channel ended")
}

/// The next event, which must be a message.
pub async fn next_message(rx: &mut Receiver<TransportEvent>) -> ReceivedMessage {
    match next_event(rx).await {
        TransportEvent::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// A transport on `127.0.0.1`, ephemeral port, default config otherwise.
pub fn bind_v4() -> (Arc<UdpTransport>, Receiver<TransportEvent>) {
    bind(UdpConfig::default())
}

/// Binds or panics.
pub fn bind(config: UdpConfig) -> (Arc<UdpTransport>, Receiver<TransportEvent>) {
    UdpTransport::bind(config).expect("bind")
}

/// Polls `t.stats()` until `pred` holds, within [`WAIT`].
pub async fn wait_stats(
    t: &UdpTransport,
    what: &str,
    pred: impl Fn(&TransportStats) -> bool,
) -> TransportStats {
    bounded(what, async {
        loop {
            let s = t.stats();
            if pred(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// The text of the `Via` header of a message (the first one).
pub fn top_via_text(m: &sip_transport_api::Message) -> String {
    m.header("Via")
        .and_then(|h| h.value())
        .expect("Via")
        .to_owned()
}

/// A raw tokio socket on the same family as `peer`, for sending hand-made datagrams.
pub async fn raw_socket_for(peer: SocketAddr) -> tokio::net::UdpSocket {
    let local: SocketAddr = if peer.is_ipv6() {
        "[::1]:0".parse().expect("addr")
    } else {
        "127.0.0.1:0".parse().expect("addr")
    };
    tokio::net::UdpSocket::bind(local).await.expect("raw bind")
}
