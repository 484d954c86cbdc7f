//! Which targets a request to a URI has: the numeric shortcut of RFC 3263 §4.1/§4.2 (no
//! DNS, every feature set), or the resolver's RFC 3263 list (feature `dns`), narrowed to the
//! transports the manager holds. Also the [`Candidate`] the rest of the manager works on.

use std::net::SocketAddr;
use std::sync::Arc;

use sip_transport_api::{Destination, Error, Result, TransportKind};

use crate::uri::{Host, TargetUri};

/// One place to try: transport, address, TLS name, the SRV rank it came with, and the TTL
/// of a UDP send to a multicast address (a caller's destination, a Via `maddr` name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) kind: TransportKind,
    pub(crate) addr: SocketAddr,
    pub(crate) server_name: Option<Arc<str>>,
    pub(crate) priority: u16,
    pub(crate) weight: u16,
    pub(crate) multicast_ttl: Option<u8>,
    /// The WebSocket resource of a caller's destination (`SendTo::Address`).
    pub(crate) resource: Option<Arc<str>>,
    /// A caller's RFC 3261 §18.1.1 waiver (`SendTo::Address`).
    pub(crate) udp_size_rule_waived: bool,
}

impl Candidate {
    pub(crate) fn new(kind: TransportKind, dest: &Destination) -> Self {
        Candidate {
            kind,
            addr: dest.addr,
            server_name: dest.server_name.clone(),
            priority: 0,
            weight: 0,
            multicast_ttl: dest.multicast_ttl,
            resource: dest.resource.clone(),
            udp_size_rule_waived: dest.udp_size_rule_waived,
        }
    }

    pub(crate) fn destination(&self) -> Destination {
        let mut d = Destination::new(self.addr);
        if let Some(n) = &self.server_name {
            d = d.with_server_name(Arc::clone(n));
        }
        if let Some(ttl) = self.multicast_ttl {
            d = d.with_multicast_ttl(ttl);
        }
        if let Some(r) = &self.resource {
            d = d.with_resource(Arc::clone(r));
        }
        if self.udp_size_rule_waived {
            d = d.with_udp_size_rule_waived();
        }
        d
    }
}

#[cfg(feature = "dns")]
impl From<crate::dns::Target> for Candidate {
    fn from(t: crate::dns::Target) -> Self {
        Candidate {
            kind: t.kind,
            addr: t.addr,
            server_name: t.server_name,
            priority: t.priority,
            weight: t.weight,
            multicast_ttl: None,
            resource: None,
            udp_size_rule_waived: false,
        }
    }
}

/// RFC 3263 §4.1, §4.2 for a numeric TARGET: the `transport` parameter, else UDP (TLS for
/// SIPS; TCP, then TLS, when UDP is not held); the URI port, else the kind's default.
/// `None` when the TARGET is a name (resolution needed).
pub(crate) fn numeric(uri: &TargetUri, held: &[TransportKind]) -> Option<Result<Vec<Candidate>>> {
    let Host::Ip(ip) = uri.target() else {
        return None;
    };
    let kind = match explicit_or_default(uri, held) {
        Ok(k) => k,
        Err(e) => return Some(Err(e)),
    };
    let port = uri.port.unwrap_or(kind.default_port());
    Some(Ok(vec![Candidate {
        kind,
        addr: SocketAddr::new(*ip, port),
        server_name: uri.server_name().map(Arc::from),
        priority: 0,
        weight: 0,
        multicast_ttl: uri.ttl,
        resource: None,
        udp_size_rule_waived: false,
    }]))
}

fn explicit_or_default(uri: &TargetUri, held: &[TransportKind]) -> Result<TransportKind> {
    if let Some(kind) = uri.transport_kind()? {
        return if held.contains(&kind) {
            Ok(kind)
        } else {
            Err(Error::TransportUnavailable { kind })
        };
    }
    let order: &[TransportKind] = if uri.secure {
        &[TransportKind::Tls]
    } else {
        &[TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls]
    };
    order
        .iter()
        .copied()
        .find(|k| held.contains(k))
        .ok_or(Error::TransportUnavailable { kind: order[0] })
}

/// The resolver's policy narrowed to the transports held (order and other settings kept).
#[cfg(feature = "dns")]
pub(crate) fn narrowed_policy(
    base: &crate::dns::ResolvePolicy,
    held: &[TransportKind],
) -> crate::dns::ResolvePolicy {
    crate::dns::ResolvePolicy::new(base.transports.iter().copied().filter(|k| held.contains(k)))
        .with_ip_order(base.ip_order)
        .with_max_targets(base.max_targets)
        .with_strict_naptr_order(base.strict_naptr_order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransportKind::{Tcp, Tls, Udp};

    fn run(uri: &str, held: &[TransportKind]) -> Result<Vec<(TransportKind, SocketAddr)>> {
        let uri = TargetUri::parse(uri)?;
        numeric(&uri, held)
            .expect("numeric")
            .map(|v| v.into_iter().map(|c| (c.kind, c.addr)).collect())
    }

    #[test]
    fn numeric_rules() {
        let sa = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            run("sip:192.0.2.1", &[Udp, Tcp]).ok(),
            Some(vec![(Udp, sa("192.0.2.1:5060"))])
        );
        assert_eq!(
            run("sip:192.0.2.1", &[Tcp]).ok(),
            Some(vec![(Tcp, sa("192.0.2.1:5060"))])
        );
        assert_eq!(
            run("sips:[2001:db8::1]", &[Udp, Tls]).ok(),
            Some(vec![(Tls, sa("[2001:db8::1]:5061"))])
        );
        assert_eq!(
            run("sip:192.0.2.1:7000;transport=tcp", &[Udp, Tcp]).ok(),
            Some(vec![(Tcp, sa("192.0.2.1:7000"))])
        );
        assert!(matches!(
            run("sip:192.0.2.1;transport=tls", &[Udp]),
            Err(Error::TransportUnavailable { kind: Tls })
        ));
        assert!(matches!(
            run("sips:192.0.2.1", &[Udp, Tcp]),
            Err(Error::TransportUnavailable { kind: Tls })
        ));
        let uri = TargetUri::parse("sip:example.com").expect("uri");
        assert!(numeric(&uri, &[Udp]).is_none());
        let maddr = TargetUri::parse("sip:example.com;maddr=192.0.2.9").expect("uri");
        let t = numeric(&maddr, &[Udp]).expect("numeric maddr").expect("ok");
        assert_eq!(t[0].server_name.as_deref(), Some("example.com"));
    }
}
