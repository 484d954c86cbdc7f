//! The merged event stream: one forwarder task per added transport moves its events into the
//! manager's bounded channel, tagged with the transport they came from.
//!
//! Backpressure is kept, not hidden: a forwarder waits while the merged channel is full, so
//! the transport's own bounded channel fills and the transport applies its rule (streams stop
//! reading, UDP drops and counts). Responses to the manager's health checks are taken out
//! here and never reach the application.

use std::sync::Arc;

use sip_transport_api::{ReceivedMessage, TransportEvent, TransportKind};
use tokio::sync::{mpsc, watch};

use super::TransportId;
use super::health::Probes;
use super::stats::{ManagerCounters, inc};

/// An event from one of the manager's transports.
#[derive(Debug)]
#[non_exhaustive]
pub struct ManagerEvent {
    /// The transport it came from.
    pub transport: TransportId,
    /// That transport's kind.
    pub kind: TransportKind,
    /// The event, as the transport reported it. `Closed` means that transport has closed.
    pub event: TransportEvent,
}

impl ManagerEvent {
    /// The received message, for [`TransportEvent::Message`] events.
    pub fn message(&self) -> Option<&ReceivedMessage> {
        match &self.event {
            TransportEvent::Message(m) => Some(m),
            _ => None,
        }
    }
}

/// What one forwarder needs.
pub(crate) struct Forwarder {
    pub(crate) transport: TransportId,
    pub(crate) kind: TransportKind,
    pub(crate) events: mpsc::Receiver<TransportEvent>,
    pub(crate) merged: mpsc::Sender<ManagerEvent>,
    pub(crate) probes: Arc<Probes>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) counters: Arc<ManagerCounters>,
}

impl Forwarder {
    /// Forwards until the transport reports `Closed` or its channel ends, the merged receiver
    /// is dropped, or the manager stops (closed past its grace period, or dropped).
    pub(crate) async fn run(mut self) {
        loop {
            let ev = tokio::select! {
                ev = self.events.recv() => ev,
                _ = self.stop.wait_for(|s| *s) => return,
            };
            let Some(ev) = ev else { return };
            if self.probes.intercept(&ev) {
                continue;
            }
            let last = matches!(ev, TransportEvent::Closed);
            let out = ManagerEvent {
                transport: self.transport,
                kind: self.kind,
                event: ev,
            };
            tokio::select! {
                sent = self.merged.send(out) => {
                    if sent.is_err() {
                        return;
                    }
                    inc(&self.counters.events_forwarded);
                }
                _ = self.stop.wait_for(|s| *s) => return,
            }
            if last {
                return;
            }
        }
    }
}
