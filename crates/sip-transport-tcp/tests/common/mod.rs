//! Helpers for this crate's integration tests: binding transports on loopback, waiting for
//! events with a bound, and a stateless responder. Every wait here is bounded.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::{Limits, Message, Transport, TransportEvent};
use sip_transport_tcp::{TcpConfig, TcpTransport};
use tokio::sync::mpsc;

/// The bound on any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A listening transport on `127.0.0.1:0`.
pub async fn server(limits: Limits) -> (Arc<TcpTransport>, mpsc::Receiver<TransportEvent>) {
    bind(loopback(), limits).await
}

/// A listening transport on `addr` (port 0 picks one).
pub async fn bind(
    addr: SocketAddr,
    limits: Limits,
) -> (Arc<TcpTransport>, mpsc::Receiver<TransportEvent>) {
    TcpTransport::bind(TcpConfig::default().with_bind(addr).with_limits(limits))
        .await
        .expect("bind")
}

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// Waits (bounded) for the first event `f` accepts; other events are skipped.
pub async fn wait_for<T>(
    rx: &mut mpsc::Receiver<TransportEvent>,
    mut f: impl FnMut(TransportEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.recv().await.expect("event channel open");
            if let Some(t) = f(ev) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// Waits for the next received message.
pub async fn next_message(
    rx: &mut mpsc::Receiver<TransportEvent>,
) -> sip_transport_api::ReceivedMessage {
    wait_for(rx, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await
}

/// An OPTIONS request with Via sent-by `via` and sequence `n`.
pub fn options(via: SocketAddr, n: u64) -> Message {
    sip_transport_testkit::options_request("sip:ping@example.invalid", "TCP", &via.to_string(), n)
}

/// Runs a stateless UAS on `transport`: each request is answered with 200 over its flow
/// (`send_response`), and every event is forwarded to the returned receiver.
pub fn spawn_uas(
    transport: Arc<TcpTransport>,
    mut rx: mpsc::Receiver<TransportEvent>,
) -> mpsc::UnboundedReceiver<TransportEvent> {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let TransportEvent::Message(m) = &ev
                && m.message.is_request()
            {
                let resp = sip_transport_testkit::ok_response(&m.message);
                if let Err(e) = transport.send_response(&resp, m.flow).await {
                    panic!("responding failed: {e}");
                }
            }
            let closed = matches!(ev, TransportEvent::Closed);
            if tx.send(ev).is_err() || closed {
                break;
            }
        }
    });
    out
}

/// Waits (bounded) for the first forwarded event `f` accepts.
pub async fn wait_fwd<T>(
    rx: &mut mpsc::UnboundedReceiver<TransportEvent>,
    mut f: impl FnMut(TransportEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.recv().await.expect("forwarder open");
            if let Some(t) = f(ev) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for a forwarded event")
}
