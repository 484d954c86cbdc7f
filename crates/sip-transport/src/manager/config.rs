//! [`ManagerConfig`]: the manager's knobs (event queue, hold-back, health checks, load
//! balancing, throttling, the UDP size rule), with defaults and builder-style setters.
//!
//! Plain data: nothing here starts a task or opens a socket.

use std::time::Duration;

/// How requests to a URI are spread over targets of equal SRV priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LoadBalancing {
    /// RFC 2782's weighted random order, drawn afresh for every request (the resolver's
    /// order): over many requests each target gets its weight's share. The default.
    #[default]
    Weighted,
    /// Smooth weighted round-robin among targets of one priority: deterministic, each target
    /// first in turn by its SRV weight (all weights equal, or all zero: strict alternation).
    /// The others follow in the resolver's order, for failover.
    RoundRobin,
}

/// OPTIONS health checks that re-admit held-back targets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthCheck {
    /// How often the held-back targets whose hold time is over are probed.
    pub interval: Duration,
    /// How long to wait for an answer to one probe.
    pub timeout: Duration,
    /// At most this many probes in one round (the rest wait for the next round).
    pub max_probes_per_round: usize,
}

impl Default for HealthCheck {
    /// Every 5 s, 2 s per probe, at most 32 probes a round.
    fn default() -> Self {
        HealthCheck {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            max_probes_per_round: 32,
        }
    }
}

impl HealthCheck {
    /// Sets [`HealthCheck::interval`] (at least 1 ms).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets [`HealthCheck::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`HealthCheck::max_probes_per_round`] (at least 1).
    pub fn with_max_probes_per_round(mut self, n: usize) -> Self {
        self.max_probes_per_round = n.max(1);
        self
    }
}

/// Configuration of a [`TransportManager`](super::TransportManager).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Capacity of the merged event channel, clamped to `1..=Limits::MAX_CAPACITY` (see
    /// [`Limits::capacity`](sip_transport_api::Limits::capacity)). When it is full the per-transport forwarders
    /// wait, so each transport's own bounded channel fills and its backpressure applies
    /// (streams stop reading, UDP drops and counts). Default 1,024.
    pub event_queue_depth: usize,
    /// How long a target that failed with a recoverable error (refused, reset, timeout) is
    /// held back: skipped while other targets remain. Default 30 s.
    pub hold_time: Duration,
    /// At most this many targets are held back at once (a bound on memory). Default 1,024.
    pub max_held_targets: usize,
    /// OPTIONS health checks. `None` (the default): a held-back target is re-admitted when its
    /// hold time is over. With checks, it is re-admitted only when a probe sent after the hold
    /// time gets a final response other than 503.
    pub health_check: Option<HealthCheck>,
    /// How requests are spread over targets of equal priority.
    pub load_balancing: LoadBalancing,
    /// Cap on requests per second to one destination address (a token bucket of that size).
    /// Over the cap a target is skipped for the next one, and with none left the send fails
    /// with `Error::Throttled`. Responses are never throttled. Default `None`.
    pub max_sends_per_second: Option<u32>,
    /// Requests larger than this go over TCP instead of UDP (RFC 3261 §18.1.1); the same
    /// 1,300-byte default as the UDP transport's refusal threshold.
    pub udp_mtu_threshold: usize,
    /// At most this many targets are tried for one request. Default 16.
    pub max_attempts: usize,
    /// How long `close()` waits for the last events to be forwarded. Default 2 s.
    pub close_grace: Duration,
    /// The RFC 3263 resolver for URIs with host names and for RFC 3263 §5 responses (feature
    /// `dns`). `None` (the default): one with the system's DNS configuration, made on first
    /// use.
    #[cfg(feature = "dns")]
    pub resolver: Option<std::sync::Arc<crate::dns::SipResolver>>,
}

/// RFC 3261 §18.1.1: 1300 bytes when the path MTU is unknown.
pub const DEFAULT_UDP_MTU_THRESHOLD: usize = 1300;

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            event_queue_depth: 1024,
            hold_time: Duration::from_secs(30),
            max_held_targets: 1024,
            health_check: None,
            load_balancing: LoadBalancing::default(),
            max_sends_per_second: None,
            udp_mtu_threshold: DEFAULT_UDP_MTU_THRESHOLD,
            max_attempts: 16,
            close_grace: Duration::from_secs(2),
            #[cfg(feature = "dns")]
            resolver: None,
        }
    }
}

impl ManagerConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`ManagerConfig::event_queue_depth`] (at least 1).
    pub fn with_event_queue_depth(mut self, depth: usize) -> Self {
        self.event_queue_depth = depth.max(1);
        self
    }

    /// Sets [`ManagerConfig::hold_time`].
    pub fn with_hold_time(mut self, hold: Duration) -> Self {
        self.hold_time = hold;
        self
    }

    /// Sets [`ManagerConfig::max_held_targets`].
    pub fn with_max_held_targets(mut self, n: usize) -> Self {
        self.max_held_targets = n;
        self
    }

    /// Turns on OPTIONS health checks.
    pub fn with_health_check(mut self, check: HealthCheck) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Sets [`ManagerConfig::load_balancing`].
    pub fn with_load_balancing(mut self, lb: LoadBalancing) -> Self {
        self.load_balancing = lb;
        self
    }

    /// Caps requests per second per destination (at least 1).
    pub fn with_max_sends_per_second(mut self, limit: u32) -> Self {
        self.max_sends_per_second = Some(limit.max(1));
        self
    }

    /// Sets [`ManagerConfig::udp_mtu_threshold`].
    pub fn with_udp_mtu_threshold(mut self, bytes: usize) -> Self {
        self.udp_mtu_threshold = bytes;
        self
    }

    /// Sets [`ManagerConfig::max_attempts`] (at least 1).
    pub fn with_max_attempts(mut self, n: usize) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Uses this resolver (feature `dns`), e.g. one asking a given name server.
    #[cfg(feature = "dns")]
    pub fn with_resolver(mut self, resolver: std::sync::Arc<crate::dns::SipResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Sets [`ManagerConfig::close_grace`].
    pub fn with_close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }
}
