//! Counters every transport keeps, and the snapshot users read (quinn's `ConnectionStats` style:
//! pull-based, plain numbers, no exporter in the library).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A point-in-time copy of a transport's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Messages received and delivered as events.
    pub messages_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Bytes received (all reads, framing overhead included).
    pub bytes_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Received messages or streams that failed framing.
    pub malformed: u64,
    /// Received messages dropped because the event channel was full (UDP).
    pub dropped: u64,
    /// Sends that returned an error, plus messages a send had accepted that a closing
    /// connection could not write (each also reported in a `TransportEvent::Error`).
    pub send_errors: u64,
    /// Keepalive pings and pongs received.
    pub keepalives_received: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Inbound connections accepted since start.
    pub connections_accepted: u64,
    /// Outbound connections opened since start.
    pub connections_dialed: u64,
    /// Inbound connections refused (limits, failed handshakes).
    pub connections_refused: u64,
    /// Connections closed by a timeout (idle, header or message read, handshake, write, an
    /// unanswered keepalive ping).
    pub timeouts: u64,
}

/// The live counters behind [`TransportStats`]. Cheap to update from many tasks.
#[derive(Debug, Default)]
pub struct Counters {
    /// See [`TransportStats::messages_received`].
    pub messages_received: AtomicU64,
    /// See [`TransportStats::messages_sent`].
    pub messages_sent: AtomicU64,
    /// See [`TransportStats::bytes_received`].
    pub bytes_received: AtomicU64,
    /// See [`TransportStats::bytes_sent`].
    pub bytes_sent: AtomicU64,
    /// See [`TransportStats::malformed`].
    pub malformed: AtomicU64,
    /// See [`TransportStats::dropped`].
    pub dropped: AtomicU64,
    /// See [`TransportStats::send_errors`].
    pub send_errors: AtomicU64,
    /// See [`TransportStats::keepalives_received`].
    pub keepalives_received: AtomicU64,
    /// See [`TransportStats::connections_open`].
    pub connections_open: AtomicU64,
    /// See [`TransportStats::connections_accepted`].
    pub connections_accepted: AtomicU64,
    /// See [`TransportStats::connections_dialed`].
    pub connections_dialed: AtomicU64,
    /// See [`TransportStats::connections_refused`].
    pub connections_refused: AtomicU64,
    /// See [`TransportStats::timeouts`].
    pub timeouts: AtomicU64,
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Adds `n` to a counter.
pub fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Relaxed);
}

/// Subtracts one from a gauge, never below zero.
pub fn dec(c: &AtomicU64) {
    let _ = c.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
}

impl Counters {
    /// Reads every counter.
    pub fn snapshot(&self) -> TransportStats {
        TransportStats {
            messages_received: self.messages_received.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            keepalives_received: self.keepalives_received.load(Relaxed),
            connections_open: self.connections_open.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_dialed: self.connections_dialed.load(Relaxed),
            connections_refused: self.connections_refused.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
        }
    }
}

impl std::ops::AddAssign<&TransportStats> for TransportStats {
    fn add_assign(&mut self, o: &TransportStats) {
        self.messages_received += o.messages_received;
        self.messages_sent += o.messages_sent;
        self.bytes_received += o.bytes_received;
        self.bytes_sent += o.bytes_sent;
        self.malformed += o.malformed;
        self.dropped += o.dropped;
        self.send_errors += o.send_errors;
        self.keepalives_received += o.keepalives_received;
        self.connections_open += o.connections_open;
        self.connections_accepted += o.connections_accepted;
        self.connections_dialed += o.connections_dialed;
        self.connections_refused += o.connections_refused;
        self.timeouts += o.timeouts;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_and_sum() {
        let c = Counters::default();
        inc(&c.messages_received);
        add(&c.bytes_received, 10);
        inc(&c.connections_open);
        dec(&c.connections_open);
        dec(&c.connections_open);
        let s = c.snapshot();
        assert_eq!(s.messages_received, 1);
        assert_eq!(s.bytes_received, 10);
        assert_eq!(s.connections_open, 0);
        let mut t = TransportStats::default();
        t += &s;
        t += &s;
        assert_eq!(t.bytes_received, 20);
    }
}
