//! Bounded waits on a transport's events and a stateless responder, for every transport's
//! integration tests (the same helpers the tcp and tls tests each used to carry a copy of).
//!
//! Every wait is bounded by [`WAIT`], so a test that misses an event fails instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::{Error, ReceivedMessage, Transport, TransportEvent};
use tokio::sync::mpsc;

/// The bound on any single wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// A transport's event receiver.
pub type Events = mpsc::Receiver<TransportEvent>;

/// Waits (bounded) for the first event `f` accepts; other events are skipped.
pub async fn wait_for<T>(rx: &mut Events, mut f: impl FnMut(TransportEvent) -> Option<T>) -> T {
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
pub async fn next_message(rx: &mut Events) -> ReceivedMessage {
    wait_for(rx, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await
}

/// Waits for the next `TransportEvent::Error` and returns its error.
pub async fn next_error(rx: &mut Events) -> Error {
    wait_for(rx, |ev| match ev {
        TransportEvent::Error { error, .. } => Some(error),
        _ => None,
    })
    .await
}

/// Runs a stateless UAS on `transport`: each request is answered with 200 over its flow
/// (`send_response`, RFC 3261 §18.2.2); every event is forwarded to the returned receiver.
pub fn spawn_uas<T: Transport + ?Sized>(
    transport: Arc<T>,
    mut rx: Events,
) -> mpsc::UnboundedReceiver<TransportEvent> {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let TransportEvent::Message(m) = &ev
                && m.message.is_request()
            {
                let resp = crate::ok_response(&m.message);
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
