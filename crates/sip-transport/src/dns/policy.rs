//! What the client may and prefers to use: the input to selection that is not DNS data.
//!
//! RFC 3263 §4.1 leaves two choices to the client: which of its transports it supports
//! (NAPTR services and SRV transports outside that set are discarded) and, when the domain
//! has no NAPTR records, which of the transports the server offers it tries first.

use sip_transport_api::TransportKind;

/// Which address families to use, and in which order, for each host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpOrder {
    /// IPv4 addresses, then IPv6 ones.
    #[default]
    V4First,
    /// IPv6 addresses, then IPv4 ones.
    V6First,
    /// IPv4 only (no AAAA queries).
    V4Only,
    /// IPv6 only (no A queries).
    V6Only,
}

/// The client's side of selection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvePolicy {
    /// The transports that may be used, most preferred first. NAPTR services and SRV records
    /// of other transports are discarded; without NAPTR records, SRV queries are made for
    /// these transports in this order (RFC 3263 §4.1: "the client MAY use any transport
    /// protocol it desires which is supported by the server").
    pub transports: Vec<TransportKind>,
    /// Address families and their order.
    pub ip_order: IpOrder,
    /// At most this many targets are returned, and at most this many records of one SRV
    /// RRset are followed (a bound on the lookups a hostile zone can make us do).
    pub max_targets: usize,
    /// Follow only the lowest NAPTR order that has a usable record, as RFC 3403 §4.1 says
    /// (`true`, the default). `false` follows every order in turn, as Kamailio does with its
    /// default `dns_naptr_ignore_rfc`: with the usual zone (SIPS+D2T at the lowest order, as
    /// RFC 3263 §4.1 asks) a SIP URI then fails over from TLS to TCP and UDP, where the RFC
    /// rule stays on TLS. A SIPS URI never leaves secure transports either way.
    pub strict_naptr_order: bool,
}

impl ResolvePolicy {
    /// The default order: TLS, TCP, UDP, then WSS and WS: secure before plain, reliable before
    /// not, which is the order of the `_sips._tcp`, `_sip._tcp`, `_sip._udp` SRV queries.
    pub const PREFERENCE: [TransportKind; 5] = [
        TransportKind::Tls,
        TransportKind::Tcp,
        TransportKind::Udp,
        TransportKind::Wss,
        TransportKind::Ws,
    ];

    /// The default for [`max_targets`](Self::max_targets).
    pub const DEFAULT_MAX_TARGETS: usize = 16;

    /// A policy allowing `transports`, most preferred first.
    pub fn new(transports: impl IntoIterator<Item = TransportKind>) -> Self {
        let mut list: Vec<TransportKind> = Vec::new();
        for t in transports {
            if !list.contains(&t) {
                list.push(t);
            }
        }
        ResolvePolicy {
            transports: list,
            ip_order: IpOrder::default(),
            max_targets: Self::DEFAULT_MAX_TARGETS,
            strict_naptr_order: true,
        }
    }

    /// The transports compiled into this build of the facade (features `udp`, `tcp`, `tls`,
    /// `ws`), in the default preference order. `ws` brings both WS and WSS.
    pub fn enabled_features() -> Self {
        Self::new(Self::PREFERENCE.into_iter().filter(|k| match k {
            TransportKind::Udp => cfg!(feature = "udp"),
            TransportKind::Tcp => cfg!(feature = "tcp"),
            TransportKind::Tls => cfg!(feature = "tls"),
            TransportKind::Ws | TransportKind::Wss => cfg!(feature = "ws"),
        }))
    }

    /// Sets the address family order.
    pub fn with_ip_order(mut self, order: IpOrder) -> Self {
        self.ip_order = order;
        self
    }

    /// Sets the target bound (at least 1).
    pub fn with_max_targets(mut self, max: usize) -> Self {
        self.max_targets = max.max(1);
        self
    }

    /// Sets [`strict_naptr_order`](Self::strict_naptr_order).
    pub fn with_strict_naptr_order(mut self, strict: bool) -> Self {
        self.strict_naptr_order = strict;
        self
    }

    /// True when `kind` may be used.
    pub fn allows(&self, kind: TransportKind) -> bool {
        self.transports.contains(&kind)
    }

    /// Position of `kind` in the preference list (unknown kinds last).
    pub fn rank(&self, kind: TransportKind) -> usize {
        self.transports
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(usize::MAX)
    }
}

/// All five transports, in [`ResolvePolicy::PREFERENCE`] order. The manager narrows this to
/// the transports it has bound.
impl Default for ResolvePolicy {
    fn default() -> Self {
        Self::new(Self::PREFERENCE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupes_and_ranks() {
        let p = ResolvePolicy::new([TransportKind::Udp, TransportKind::Tcp, TransportKind::Udp]);
        assert_eq!(p.transports, [TransportKind::Udp, TransportKind::Tcp]);
        assert!(p.rank(TransportKind::Udp) < p.rank(TransportKind::Tcp));
        assert!(!p.allows(TransportKind::Tls));
        assert_eq!(p.rank(TransportKind::Tls), usize::MAX);
        assert_eq!(ResolvePolicy::default().transports.len(), 5);
    }
}
