//! Targets held back after a recoverable failure (failover, RFC 3263 §4.3 "the client SHOULD
//! try the next"), and when they are tried again.
//!
//! A held-back target is skipped while other targets remain. Without health checks it is
//! re-admitted when its hold time is over; with them, only when a probe succeeds (the health
//! task asks [`HoldBack::due`] which ones to probe). Bounded by `max_held_targets`. The clock
//! is passed in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sip_transport_api::TransportKind;

use super::lock;

/// One held-back target, as [`TransportManager::held_targets`](super::TransportManager::held_targets)
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldTarget {
    /// Its transport.
    pub kind: TransportKind,
    /// Its address.
    pub addr: SocketAddr,
    /// The name to verify TLS against when probing it.
    pub server_name: Option<Arc<str>>,
    /// Consecutive failures (sends and probes).
    pub failures: u32,
    /// When the hold time ends (probes start then, with health checks).
    pub until: Instant,
}

#[derive(Debug)]
pub(crate) struct HoldBack {
    hold_time: Duration,
    max: usize,
    until_probed: bool,
    held: Mutex<HashMap<(TransportKind, SocketAddr), HeldTarget>>,
}

impl HoldBack {
    pub(crate) fn new(hold_time: Duration, max: usize, until_probed: bool) -> Self {
        HoldBack {
            hold_time,
            max,
            until_probed,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Holds a target back (again) from `now`. Returns false when the table is full.
    pub(crate) fn hold(
        &self,
        kind: TransportKind,
        addr: SocketAddr,
        server_name: Option<Arc<str>>,
        now: Instant,
    ) -> bool {
        let mut held = lock(&self.held);
        let until = now + self.hold_time;
        if let Some(h) = held.get_mut(&(kind, addr)) {
            h.until = until;
            h.failures = h.failures.saturating_add(1);
            return true;
        }
        if held.len() >= self.max {
            // Forget targets that are free to go anyway before refusing.
            let probed = self.until_probed;
            held.retain(|_, h| probed || h.until > now);
            if held.len() >= self.max {
                return false;
            }
        }
        held.insert(
            (kind, addr),
            HeldTarget {
                kind,
                addr,
                server_name,
                failures: 1,
                until,
            },
        );
        true
    }

    /// True while the target is held back.
    pub(crate) fn is_held(&self, kind: TransportKind, addr: SocketAddr, now: Instant) -> bool {
        let mut held = lock(&self.held);
        match held.get(&(kind, addr)) {
            None => false,
            Some(_) if self.until_probed => true,
            Some(h) if h.until > now => true,
            Some(_) => {
                held.remove(&(kind, addr));
                false
            }
        }
    }

    /// Re-admits a target (a send or a probe to it succeeded). True if it was held.
    pub(crate) fn release(&self, kind: TransportKind, addr: SocketAddr) -> bool {
        lock(&self.held).remove(&(kind, addr)).is_some()
    }

    /// Held targets whose hold time is over, at most `max`: the ones to probe now.
    pub(crate) fn due(&self, now: Instant, max: usize) -> Vec<HeldTarget> {
        let held = lock(&self.held);
        let mut due: Vec<HeldTarget> = held.values().filter(|h| h.until <= now).cloned().collect();
        due.sort_by_key(|h| h.until);
        due.truncate(max);
        due
    }

    /// Targets held back now.
    pub(crate) fn snapshot(&self, now: Instant) -> Vec<HeldTarget> {
        let held = lock(&self.held);
        held.values()
            .filter(|h| self.until_probed || h.until > now)
            .cloned()
            .collect()
    }

    /// How many targets are held back now.
    pub(crate) fn count(&self, now: Instant) -> usize {
        let held = lock(&self.held);
        held.values()
            .filter(|h| self.until_probed || h.until > now)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn expires_without_probes() {
        let hb = HoldBack::new(Duration::from_secs(10), 2, false);
        let t0 = Instant::now();
        assert!(hb.hold(TransportKind::Tcp, a(1), None, t0));
        assert!(hb.is_held(TransportKind::Tcp, a(1), t0 + Duration::from_secs(9)));
        assert!(!hb.is_held(TransportKind::Udp, a(1), t0));
        assert_eq!(hb.count(t0), 1);
        assert!(!hb.is_held(TransportKind::Tcp, a(1), t0 + Duration::from_secs(10)));
        assert_eq!(hb.count(t0), 0);
    }

    #[test]
    fn probed_targets_stay_until_released_and_table_is_bounded() {
        let hb = HoldBack::new(Duration::from_secs(1), 2, true);
        let t0 = Instant::now();
        assert!(hb.hold(TransportKind::Udp, a(1), None, t0));
        assert!(hb.hold(TransportKind::Udp, a(1), None, t0));
        assert!(hb.hold(TransportKind::Udp, a(2), None, t0));
        assert!(!hb.hold(TransportKind::Udp, a(3), None, t0), "full");
        let later = t0 + Duration::from_secs(5);
        assert!(hb.is_held(TransportKind::Udp, a(1), later));
        assert!(hb.due(t0, 10).is_empty());
        let due = hb.due(later, 1);
        assert_eq!(due.len(), 1);
        assert!(hb.snapshot(later).iter().any(|h| h.failures == 2));
        assert!(hb.release(TransportKind::Udp, a(1)));
        assert!(!hb.is_held(TransportKind::Udp, a(1), later));
        assert_eq!(hb.count(later), 1);
    }
}
