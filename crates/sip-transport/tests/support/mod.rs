//! Helpers shared by the facade's integration tests: a stateless responder over any of our
//! transports, and bounded waits on event receivers.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sip_transport::{FlowId, Message, ReceivedMessage, Transport, TransportEvent};
use sip_transport_testkit::ok_response;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// Runs a test body under a hard time limit.
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test took longer than 60 s")
}

/// A stateless responder: answers every request but ACK with 200 (RFC 3261 §8.2.6) over the
/// request's flow or per its Via, and reports each request it saw.
pub struct Responder {
    pub transport: Arc<dyn Transport>,
    pub requests: mpsc::Receiver<ReceivedMessage>,
    task: JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Responder {
    pub fn start<T: Transport>(bound: (Arc<T>, mpsc::Receiver<TransportEvent>)) -> Responder {
        let (transport, mut events) = bound;
        let transport: Arc<dyn Transport> = transport;
        let (tx, requests) = mpsc::channel(4096);
        let t = Arc::clone(&transport);
        let task = tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let TransportEvent::Message(m) = ev else {
                    continue;
                };
                if !m.message.is_request() {
                    continue;
                }
                if m.message.method() != Some("ACK") {
                    let ok = ok_response(&m.message);
                    let _ = t.send_response(&ok, m.flow).await;
                }
                let _ = tx.try_send(m);
            }
        });
        Responder {
            transport,
            requests,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.transport.local_addr().port()
    }

    /// The next request it answered.
    pub async fn next_request(&mut self) -> ReceivedMessage {
        tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("no request in time")
            .expect("responder stopped")
    }

    /// How many requests arrived within `quiet` of each other.
    pub async fn drain_count(&mut self, quiet: Duration) -> usize {
        let mut n = 0;
        while let Ok(Some(_)) = tokio::time::timeout(quiet, self.requests.recv()).await {
            n += 1;
        }
        n
    }
}

// Not every test binary waits for messages.
#[allow(unused_imports)]
pub use sip_transport_testkit::events::next_message;

/// Waits for `ConnectionClosed` of `flow`.
pub async fn closed(events: &mut mpsc::Receiver<TransportEvent>, flow: FlowId) {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(TransportEvent::ConnectionClosed { flow: f, .. }) if f == flow => return,
                Some(_) => {}
                None => panic!("event channel ended"),
            }
        }
    })
    .await
    .expect("flow did not close in time");
}

/// The top Via's branch.
pub fn branch(m: &Message) -> String {
    m.top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_owned))
        .unwrap_or_default()
}
