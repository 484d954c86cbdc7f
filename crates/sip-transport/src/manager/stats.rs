//! The manager's counters and the [`ManagerStats`] snapshot (per transport and its own), and
//! behind the `metrics` feature their export through the `metrics` facade crate.
//!
//! Pull-based like the transports' [`TransportStats`]: plain numbers read on demand.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sip_transport_api::{TransportKind, TransportStats};

use super::TransportId;

/// The live counters of a manager.
#[derive(Debug, Default)]
pub(crate) struct ManagerCounters {
    pub(crate) requests_sent: AtomicU64,
    pub(crate) responses_sent: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) failovers: AtomicU64,
    pub(crate) udp_to_tcp: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) targets_held_total: AtomicU64,
    pub(crate) health_checks_sent: AtomicU64,
    pub(crate) health_checks_ok: AtomicU64,
    pub(crate) health_checks_failed: AtomicU64,
    pub(crate) events_forwarded: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// One transport's counters, as the manager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportSnapshot {
    /// The manager's id for it.
    pub id: TransportId,
    /// Its kind.
    pub kind: TransportKind,
    /// Its local address.
    pub local: SocketAddr,
    /// Its counters.
    pub stats: TransportStats,
}

/// A snapshot of a manager: each transport's counters, their sum, and the manager's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerStats {
    /// Per transport.
    pub transports: Vec<TransportSnapshot>,
    /// The sum over the transports (messages, bytes, errors, drops, open connections, ...).
    pub total: TransportStats,
    /// Requests sent (after failover, one per request).
    pub requests_sent: u64,
    /// Responses sent.
    pub responses_sent: u64,
    /// Sends that failed after every target was tried.
    pub send_errors: u64,
    /// Requests that reached a target other than the first one tried.
    pub failovers: u64,
    /// Requests moved from UDP to TCP by the size rule (RFC 3261 §18.1.1).
    pub udp_to_tcp: u64,
    /// Targets skipped, or sends refused, because of the per-destination cap.
    pub throttled: u64,
    /// Targets held back now.
    pub targets_held_back: u64,
    /// Times a target was held back, since start.
    pub targets_held_total: u64,
    /// OPTIONS health checks sent.
    pub health_checks_sent: u64,
    /// Health checks answered (the target was re-admitted).
    pub health_checks_ok: u64,
    /// Health checks unanswered, failed or answered 503.
    pub health_checks_failed: u64,
    /// Events delivered on the merged stream.
    pub events_forwarded: u64,
}

impl ManagerCounters {
    pub(crate) fn snapshot(&self, transports: Vec<TransportSnapshot>, held: u64) -> ManagerStats {
        let mut total = TransportStats::default();
        for t in &transports {
            total += &t.stats;
        }
        ManagerStats {
            transports,
            total,
            requests_sent: self.requests_sent.load(Relaxed),
            responses_sent: self.responses_sent.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            failovers: self.failovers.load(Relaxed),
            udp_to_tcp: self.udp_to_tcp.load(Relaxed),
            throttled: self.throttled.load(Relaxed),
            targets_held_back: held,
            targets_held_total: self.targets_held_total.load(Relaxed),
            health_checks_sent: self.health_checks_sent.load(Relaxed),
            health_checks_ok: self.health_checks_ok.load(Relaxed),
            health_checks_failed: self.health_checks_failed.load(Relaxed),
            events_forwarded: self.events_forwarded.load(Relaxed),
        }
    }
}

#[cfg(feature = "metrics")]
impl ManagerStats {
    /// Publishes this snapshot through the `metrics` facade (feature `metrics`): every
    /// transport counter as `sip_transport_<name>` with labels `kind`, `local`, `transport`
    /// (counters set to their absolute value; `connections_open` a gauge), and the manager's
    /// as `sip_manager_<name>` (`targets_held_back` a gauge). Whatever recorder the program
    /// installed receives them; without one this does nothing.
    pub fn publish_metrics(&self) {
        for t in &self.transports {
            let labels = [
                ("kind", t.kind.to_string()),
                ("local", t.local.to_string()),
                ("transport", t.id.get().to_string()),
            ];
            let s = &t.stats;
            let counters: [(&'static str, u64); 12] = [
                ("sip_transport_messages_received", s.messages_received),
                ("sip_transport_messages_sent", s.messages_sent),
                ("sip_transport_bytes_received", s.bytes_received),
                ("sip_transport_bytes_sent", s.bytes_sent),
                ("sip_transport_malformed", s.malformed),
                ("sip_transport_dropped", s.dropped),
                ("sip_transport_send_errors", s.send_errors),
                ("sip_transport_keepalives_received", s.keepalives_received),
                ("sip_transport_connections_accepted", s.connections_accepted),
                ("sip_transport_connections_dialed", s.connections_dialed),
                ("sip_transport_connections_refused", s.connections_refused),
                ("sip_transport_timeouts", s.timeouts),
            ];
            for (name, v) in counters {
                metrics::counter!(name, &labels).absolute(v);
            }
            metrics::gauge!("sip_transport_connections_open", &labels)
                .set(s.connections_open as f64);
        }
        let counters: [(&'static str, u64); 11] = [
            ("sip_manager_requests_sent", self.requests_sent),
            ("sip_manager_responses_sent", self.responses_sent),
            ("sip_manager_send_errors", self.send_errors),
            ("sip_manager_failovers", self.failovers),
            ("sip_manager_udp_to_tcp", self.udp_to_tcp),
            ("sip_manager_throttled", self.throttled),
            ("sip_manager_targets_held_total", self.targets_held_total),
            ("sip_manager_health_checks_sent", self.health_checks_sent),
            ("sip_manager_health_checks_ok", self.health_checks_ok),
            (
                "sip_manager_health_checks_failed",
                self.health_checks_failed,
            ),
            ("sip_manager_events_forwarded", self.events_forwarded),
        ];
        for (name, v) in counters {
            metrics::counter!(name).absolute(v);
        }
        metrics::gauge!("sip_manager_targets_held_back").set(self.targets_held_back as f64);
    }
}
