//! RFC 3263 server location as a pure function over DNS records: §4 for requests
//! ([`locate_server`]) and §5 for responses ([`locate_response`]).
//!
//! Sans-IO: the functions read a [`DnsRecords`] and either name the queries they still need
//! ([`Step::Lookup`]) or return the ordered targets ([`Step::Done`]). The caller answers the
//! queries, adds the answers to the same `DnsRecords`, pins the SRV orders
//! ([`DnsRecords::pin_srv_orders`]) and calls again; each call is deterministic for a given
//! record set and random source. No clock, no socket.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sip_transport_api::{Destination, DnsFailure, Error, Result, TransportKind};

use super::naptr::naptr_targets;
use super::policy::{IpOrder, ResolvePolicy};
use super::records::{AdditionalAddress, Answer, DnsRecords, Query, RecordType, SrvRecord};
use super::srv::{SrvRandom, order_srv};
use crate::uri::{Host, SentBy, TargetUri};

/// One place to try: a transport, an address and the name to verify TLS against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The transport to use.
    pub kind: TransportKind,
    /// The address and port.
    pub addr: SocketAddr,
    /// The SIP domain from the URI (RFC 5922 §4), for TLS verification, SNI and the WebSocket
    /// `Host`; `None` for a numeric host. Never the SRV target.
    pub server_name: Option<Arc<str>>,
    /// The priority of the SRV record this target came from (RFC 2782: lower first); 0 when
    /// no SRV record was involved. Targets of one priority are equals a load balancer may
    /// spread over.
    pub priority: u16,
    /// The weight of that SRV record (RFC 2782); 0 when no SRV record was involved.
    pub weight: u16,
}

impl Target {
    /// The transport-level destination for this target.
    pub fn destination(&self) -> Destination {
        let d = Destination::new(self.addr);
        match &self.server_name {
            Some(n) => d.with_server_name(n.clone()),
            None => d,
        }
    }
}

/// What selection needs next, or its result.
#[derive(Debug)]
pub enum Step {
    /// These answers are missing; look them up (they are independent: in parallel is fine),
    /// add them to the records, pin the SRV orders ([`DnsRecords::pin_srv_orders`]) and call
    /// again.
    Lookup(Vec<Query>),
    /// Selection is complete: the targets in the order to try them, or why there are none.
    Done(Result<Vec<Target>>),
}

/// The SRV service prefix for a transport: `_sip._udp`, `_sip._tcp`, `_sips._tcp`
/// (RFC 3263 §4.1, §4.2). WS and WSS have none: RFC 7118 defines NAPTR services for them
/// but no SRV service name, so they are reached through NAPTR or at the default port.
pub fn srv_prefix(kind: TransportKind) -> Option<&'static str> {
    match kind {
        TransportKind::Udp => Some("_sip._udp"),
        TransportKind::Tcp => Some("_sip._tcp"),
        TransportKind::Tls => Some("_sips._tcp"),
        TransportKind::Ws | TransportKind::Wss => None,
    }
}

/// RFC 3263 §4: the ordered targets for a request to `uri`.
///
/// - Numeric host: no DNS; the `transport` parameter, else UDP (TLS for SIPS); the URI port,
///   else the transport's default (§4.1, §4.2).
/// - Name with a port: A/AAAA only, that port, the `transport` parameter or UDP/TLS (§4.2).
/// - Name with a `transport` parameter and no port: SRV for that transport, else A/AAAA with
///   its default port (§4.2); WS/WSS have no SRV name (see [`srv_prefix`]).
/// - Otherwise NAPTR (see [`naptr_targets`]) → SRV on each replacement; without usable NAPTR
///   records, SRV for each allowed transport in policy order (`_sips._tcp` only for SIPS);
///   without any SRV record, A/AAAA with UDP/TLS at the default port (§4.1, §4.2).
/// - NXDOMAIN for the NAPTR query ends the search: nothing exists under a name that does not
///   exist (RFC 8020), so the SRV and A/AAAA queries would be wasted.
///
/// SRV records are ordered by RFC 2782 (see [`order_srv`]), or follow the order pinned in
/// `records` ([`DnsRecords::pin_srv_orders`]; pin before each call when selecting in rounds,
/// so that every round follows the same records); addresses of one host follow the
/// policy's [`IpOrder`]; SRV additional-section addresses are used instead of the query of
/// their family (A or AAAA), and the other family is still asked when the policy wants it.
pub fn locate_server(
    uri: &TargetUri,
    policy: &ResolvePolicy,
    records: &DnsRecords,
    rng: &mut dyn SrvRandom,
) -> Step {
    let explicit = match uri.transport_kind() {
        Ok(t) => t,
        Err(e) => return Step::Done(Err(e)),
    };
    if let Some(k) = explicit
        && !policy.allows(k)
    {
        return Step::Done(Err(Error::InvalidDestination {
            reason: format!("{uri} asks for transport {k}, which is not enabled"),
        }));
    }
    let server_name: Option<Arc<str>> = uri.server_name().map(Arc::from);
    let fixed_kind = || match explicit {
        Some(k) => Ok(k),
        None => default_kind(uri.secure, policy),
    };
    let name = match uri.target() {
        Host::Ip(ip) => {
            // §4.1, §4.2: a numeric TARGET needs no DNS.
            return Step::Done(fixed_kind().map(|kind| {
                let port = uri.port.unwrap_or(kind.default_port());
                vec![Target {
                    kind,
                    addr: SocketAddr::new(*ip, port),
                    server_name,
                    priority: 0,
                    weight: 0,
                }]
            }));
        }
        Host::Name(n) => n.as_str(),
    };
    let mut walk = Walk::new(policy, records, rng, server_name);

    if let Some(port) = uri.port {
        // §4.2: an explicit port means A/AAAA only.
        let kind = match fixed_kind() {
            Ok(k) => k,
            Err(e) => return Step::Done(Err(e)),
        };
        walk.domain_hosts(name, port, kind);
        return walk.finish(name);
    }

    if let Some(kind) = explicit {
        // §4.2: a transport but no port: SRV for that transport, else A/AAAA.
        walk.srv_or_hosts(name, kind);
        return walk.finish(name);
    }

    // §4.1: NAPTR first.
    match walk.answer(name, RecordType::Naptr) {
        None => return walk.finish(name),
        Some(Answer::NxDomain { .. }) => {
            return Step::Done(Err(Error::Dns {
                name: name.to_owned(),
                reason: DnsFailure::NxDomain,
            }));
        }
        Some(Answer::Naptr(recs)) => {
            let follow = naptr_targets(recs, uri.secure, policy);
            if !follow.is_empty() {
                for (kind, srv_name) in follow {
                    // A replacement without SRV records yields nothing: the NAPTR set, not
                    // the A records of the domain, says where the service is.
                    walk.srv(&srv_name, kind);
                }
                return walk.finish(name);
            }
        }
        Some(_) => {}
    }

    // §4.1: no usable NAPTR record: an SRV query per transport.
    let mut any_present = false;
    let mut any_missing = false;
    let kinds: Vec<TransportKind> = policy
        .transports
        .iter()
        .copied()
        .filter(|k| srv_prefix(*k).is_some() && (!uri.secure || k.is_secure()))
        .collect();
    for kind in kinds {
        let Some(prefix) = srv_prefix(kind) else {
            continue;
        };
        match walk.srv(&format!("{prefix}.{name}"), kind) {
            SrvStatus::Present => any_present = true,
            SrvStatus::Missing => any_missing = true,
            SrvStatus::Absent => {}
        }
    }
    if !any_present && !any_missing {
        // §4.2: no SRV records: A/AAAA, UDP (TLS for SIPS) at the default port.
        match default_kind(uri.secure, policy) {
            Ok(kind) => walk.domain_hosts(name, kind.default_port(), kind),
            Err(e) => return Step::Done(Err(e)),
        }
    }
    walk.finish(name)
}

/// RFC 3263 §5: where to send a response whose Via sent-by is a name (when the request's
/// connection is gone and the Via has no `received`; see `response_target` in the api crate).
///
/// A port in sent-by: A/AAAA with that port. No port: SRV for the Via's transport
/// (`_sip._udp`, `_sip._tcp`, `_sips._tcp`), else A/AAAA with the transport's default port.
/// The transport is the Via's; the policy only orders address families and bounds the list.
pub fn locate_response(
    sent_by: &SentBy,
    policy: &ResolvePolicy,
    records: &DnsRecords,
    rng: &mut dyn SrvRandom,
) -> Step {
    let kind = sent_by.transport;
    let name = match &sent_by.host {
        Host::Ip(ip) => {
            let port = sent_by.port.unwrap_or(kind.default_port());
            return Step::Done(Ok(vec![Target {
                kind,
                addr: SocketAddr::new(*ip, port),
                server_name: None,
                priority: 0,
                weight: 0,
            }]));
        }
        Host::Name(n) => n.as_str(),
    };
    let mut walk = Walk::new(policy, records, rng, Some(Arc::from(name)));
    match sent_by.port {
        Some(port) => walk.domain_hosts(name, port, kind),
        None => walk.srv_or_hosts(name, kind),
    }
    walk.finish(name)
}

/// RFC 3263 §4.1: UDP for a SIP URI, TLS (over TCP) for a SIPS URI. When UDP is not enabled
/// a SIP URI falls back to TCP, then TLS (every SIP element implements TCP, RFC 3261 §18).
fn default_kind(secure: bool, policy: &ResolvePolicy) -> Result<TransportKind> {
    let candidates: &[TransportKind] = if secure {
        &[TransportKind::Tls]
    } else {
        &[TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls]
    };
    candidates
        .iter()
        .copied()
        .find(|k| policy.allows(*k))
        .ok_or_else(|| Error::InvalidDestination {
            reason: format!(
                "no enabled transport for a {} URI without a transport parameter",
                if secure { "SIPS" } else { "SIP" }
            ),
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SrvStatus {
    /// Not asked yet.
    Missing,
    /// NODATA or NXDOMAIN: no SRV records at that name.
    Absent,
    /// SRV records exist (possibly only `.`).
    Present,
}

/// One pass over the records: the targets found and the queries still missing.
struct Walk<'a> {
    policy: &'a ResolvePolicy,
    records: &'a DnsRecords,
    rng: &'a mut dyn SrvRandom,
    server_name: Option<Arc<str>>,
    /// Priority and weight of the SRV record whose target is being added.
    srv_rank: (u16, u16),
    missing: Vec<Query>,
    targets: Vec<Target>,
    unavailable: bool,
    domain_nx: bool,
}

impl<'a> Walk<'a> {
    fn new(
        policy: &'a ResolvePolicy,
        records: &'a DnsRecords,
        rng: &'a mut dyn SrvRandom,
        server_name: Option<Arc<str>>,
    ) -> Self {
        Walk {
            policy,
            records,
            rng,
            server_name,
            srv_rank: (0, 0),
            missing: Vec::new(),
            targets: Vec::new(),
            unavailable: false,
            domain_nx: false,
        }
    }

    /// The answer to (name, rtype), or `None` after noting it as missing.
    fn answer(&mut self, name: &str, rtype: RecordType) -> Option<&'a Answer> {
        let records = self.records;
        let q = Query::new(name, rtype);
        match records.get(&q) {
            Some(a) => Some(a),
            None => {
                if !self.missing.contains(&q) {
                    self.missing.push(q);
                }
                None
            }
        }
    }

    /// SRV for `kind` at `name` if the transport has an SRV name and records exist, else
    /// A/AAAA of `name` at the default port (RFC 3263 §4.2 and §5).
    fn srv_or_hosts(&mut self, name: &str, kind: TransportKind) {
        let status = match srv_prefix(kind) {
            Some(prefix) => self.srv(&format!("{prefix}.{name}"), kind),
            None => SrvStatus::Absent,
        };
        if status == SrvStatus::Absent {
            self.domain_hosts(name, kind.default_port(), kind);
        }
    }

    /// A/AAAA of the domain itself; remembers when the domain does not exist.
    fn domain_hosts(&mut self, name: &str, port: u16, kind: TransportKind) {
        if let Some(nx) = self.hosts(name, port, kind, &[]) {
            self.domain_nx |= nx;
        }
    }

    /// The SRV RRset at `srv_name`, ordered by RFC 2782, each target's addresses added.
    fn srv(&mut self, srv_name: &str, kind: TransportKind) -> SrvStatus {
        let Some(answer) = self.answer(srv_name, RecordType::Srv) else {
            return SrvStatus::Missing;
        };
        let Answer::Srv {
            records,
            additional,
        } = answer
        else {
            return SrvStatus::Absent;
        };
        if records.is_empty() {
            return SrvStatus::Absent;
        }
        if records.iter().all(|r| r.is_unavailable()) {
            // RFC 2782: a lone "." target: the service is decidedly not available here.
            self.unavailable = true;
            return SrvStatus::Present;
        }
        // RFC 2782's draw, unless the caller pinned one for this resolution: drawn afresh in
        // each round, a set larger than `max_targets` would name other targets every time.
        let ordered: Vec<&SrvRecord> = match self
            .records
            .pinned_srv_order(&Query::new(srv_name, RecordType::Srv))
        {
            Some(pinned) => pinned.iter().collect(),
            None => order_srv(records, &mut *self.rng),
        };
        for r in ordered.into_iter().take(self.policy.max_targets) {
            self.srv_rank = (r.priority, r.weight);
            self.hosts(&r.target, r.port, kind, additional);
        }
        self.srv_rank = (0, 0);
        SrvStatus::Present
    }

    /// Adds the addresses of `name` with `port`, families in policy order. Returns `None`
    /// while an answer is missing, else whether every answer was NXDOMAIN. Addresses from an
    /// SRV answer's additional section stand in for the query of their own family only
    /// (RFC 2782); a family the policy wants and the section lacks is asked (RFC 3263 §4.2).
    fn hosts(
        &mut self,
        name: &str,
        port: u16,
        kind: TransportKind,
        additional: &[AdditionalAddress],
    ) -> Option<bool> {
        let families: &[RecordType] = match self.policy.ip_order {
            IpOrder::V4First => &[RecordType::A, RecordType::Aaaa],
            IpOrder::V6First => &[RecordType::Aaaa, RecordType::A],
            IpOrder::V4Only => &[RecordType::A],
            IpOrder::V6Only => &[RecordType::Aaaa],
        };
        let mut found: Vec<IpAddr> = Vec::new();
        let mut missing = false;
        let mut all_nx = true;
        for &family in families {
            let given = additional
                .iter()
                .filter(|a| a.name == name && family_of(a.record.ip) == family)
                .map(|a| a.record.ip);
            let before = found.len();
            found.extend(given);
            if found.len() > before {
                all_nx = false;
                continue;
            }
            match self.answer(name, family) {
                None => missing = true,
                Some(Answer::Addresses(list)) => {
                    all_nx = false;
                    found.extend(
                        list.iter()
                            .map(|r| r.ip)
                            .filter(|ip| family_of(*ip) == family),
                    );
                }
                Some(a) => all_nx &= a.is_nx_domain(),
            }
        }
        if missing {
            return None;
        }
        for ip in found {
            self.push(kind, SocketAddr::new(ip, port));
        }
        Some(all_nx)
    }

    fn push(&mut self, kind: TransportKind, addr: SocketAddr) {
        if !self
            .targets
            .iter()
            .any(|t| t.kind == kind && t.addr == addr)
        {
            self.targets.push(Target {
                kind,
                addr,
                server_name: self.server_name.clone(),
                priority: self.srv_rank.0,
                weight: self.srv_rank.1,
            });
        }
    }

    fn finish(mut self, name: &str) -> Step {
        if !self.missing.is_empty() {
            return Step::Lookup(self.missing);
        }
        if self.targets.is_empty() {
            let reason = if self.domain_nx {
                DnsFailure::NxDomain
            } else if self.unavailable {
                DnsFailure::Unavailable
            } else {
                DnsFailure::NoRecords
            };
            return Step::Done(Err(Error::Dns {
                name: name.to_owned(),
                reason,
            }));
        }
        self.targets.truncate(self.policy.max_targets);
        Step::Done(Ok(self.targets))
    }
}

fn family_of(ip: IpAddr) -> RecordType {
    match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::Aaaa,
    }
}

#[cfg(test)]
mod tests;
