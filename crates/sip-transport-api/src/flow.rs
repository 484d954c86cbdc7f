//! `FlowId`: a process-unique name for one connection (or WebSocket session).
//!
//! A flow is what RFC 5626 calls a flow: responses and later requests can be sent back over it
//! (RFC 3261 §18.2.2). The id says nothing about the peer; transports map it to a connection.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one connection-oriented flow for the lifetime of the process. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(NonZeroU64);

static NEXT: AtomicU64 = AtomicU64::new(1);

impl FlowId {
    /// Allocates a new, never before used id.
    pub fn next() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // The counter starts at 1 and a u64 does not wrap in practice (one per connection).
        FlowId(NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN))
    }

    /// The numeric value, for logs and maps.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_and_increasing() {
        let a = FlowId::next();
        let b = FlowId::next();
        assert_ne!(a, b);
        assert!(b.get() > a.get());
        assert_eq!(a.to_string(), format!("flow#{}", a.get()));
    }
}
