//! Every RFC 3263 rule of `select.rs`, on hand-made record sets (no DNS).

use std::net::{IpAddr, SocketAddr};

use sip_transport_api::{DnsFailure, Error, TransportKind};

use super::*;
use crate::dns::records::{AddressRecord, NaptrRecord, SrvRecord};

use TransportKind::{Tcp, Tls, Udp, Ws, Wss};

const D: &str = "example.com";

fn uri(s: &str) -> TargetUri {
    TargetUri::parse(s).expect("valid URI")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("valid IP")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("valid socket address")
}

fn naptr(order: u16, pref: u16, service: &str, repl: &str) -> NaptrRecord {
    NaptrRecord {
        order,
        preference: pref,
        flags: "s".into(),
        services: service.into(),
        replacement: repl.into(),
        ttl: 300,
    }
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port,
        target: target.into(),
        ttl: 300,
    }
}

fn first(_: u32) -> u32 {
    0
}

/// Selection with every record present: must be Done.
fn run_with(u: &TargetUri, p: &ResolvePolicy, r: &DnsRecords) -> Result<Vec<Target>> {
    match locate_server(u, p, r, &mut first) {
        Step::Done(res) => res,
        Step::Lookup(q) => panic!("{u}: still needs {q:?}"),
    }
}

fn run(u: &str, r: &DnsRecords) -> Result<Vec<Target>> {
    run_with(&uri(u), &ResolvePolicy::default(), r)
}

/// (kind, addr) pairs of a successful selection.
fn pairs(res: Result<Vec<Target>>) -> Vec<(TransportKind, SocketAddr)> {
    res.expect("targets")
        .iter()
        .map(|t| (t.kind, t.addr))
        .collect()
}

/// The queries a selection still needs.
fn needs(u: &str, r: &DnsRecords) -> Vec<String> {
    match locate_server(&uri(u), &ResolvePolicy::default(), r, &mut first) {
        Step::Lookup(q) => q.iter().map(|q| q.to_string()).collect(),
        Step::Done(res) => panic!("{u}: done early with {res:?}"),
    }
}

fn dns_failure(res: Result<Vec<Target>>) -> (String, DnsFailure) {
    match res {
        Err(Error::Dns { name, reason }) => (name, reason),
        other => panic!("expected a DNS error, got {other:?}"),
    }
}

/// A zone with no NAPTR and no SRV records; the domain has v4 and v6 addresses.
fn bare_zone() -> DnsRecords {
    DnsRecords::new()
        .with(D, RecordType::Naptr, Answer::no_data())
        .with("_sips._tcp.example.com", RecordType::Srv, Answer::no_data())
        .with("_sip._tcp.example.com", RecordType::Srv, Answer::no_data())
        .with(
            "_sip._udp.example.com",
            RecordType::Srv,
            Answer::nx_domain(),
        )
        .with_host(D, &[ip("192.0.2.1"), ip("2001:db8::1")], 300)
}

// ---- §4.1 / §4.2: numeric host: no DNS ----

#[test]
fn numeric_host_needs_no_dns() {
    let none = DnsRecords::new();
    assert_eq!(
        pairs(run("sip:192.0.2.1", &none)),
        [(Udp, sa("192.0.2.1:5060"))]
    );
    assert_eq!(
        pairs(run("sips:192.0.2.1", &none)),
        [(Tls, sa("192.0.2.1:5061"))]
    );
    assert_eq!(
        pairs(run("sip:[2001:db8::1]:5070;transport=tcp", &none)),
        [(Tcp, sa("[2001:db8::1]:5070"))]
    );
    assert_eq!(
        pairs(run("sip:192.0.2.1;transport=ws", &none)),
        [(Ws, sa("192.0.2.1:80"))]
    );
    assert_eq!(
        pairs(run("sips:192.0.2.1;transport=ws", &none)),
        [(Wss, sa("192.0.2.1:443"))]
    );
    assert_eq!(
        pairs(run("sips:192.0.2.1;transport=tcp", &none)),
        [(Tls, sa("192.0.2.1:5061"))]
    );
    let t = run("sip:192.0.2.1", &none).expect("targets");
    assert_eq!(t[0].server_name, None);
}

#[test]
fn numeric_maddr_is_the_target_and_the_host_names_the_server() {
    let t = run("sip:example.com;maddr=192.0.2.9", &DnsRecords::new()).expect("targets");
    assert_eq!(t[0].addr, sa("192.0.2.9:5060"));
    assert_eq!(t[0].server_name.as_deref(), Some("example.com"));
}

// ---- §4.2: a port means A/AAAA only ----

#[test]
fn port_means_address_records_only() {
    assert_eq!(
        needs("sip:example.com:5080", &DnsRecords::new()),
        ["example.com A", "example.com AAAA"]
    );
    let r = DnsRecords::new().with_host(D, &[ip("192.0.2.1"), ip("2001:db8::1")], 300);
    assert_eq!(
        pairs(run("sip:example.com:5080", &r)),
        [(Udp, sa("192.0.2.1:5080")), (Udp, sa("[2001:db8::1]:5080"))]
    );
    assert_eq!(
        pairs(run("sips:example.com:5071", &r))[0],
        (Tls, sa("192.0.2.1:5071"))
    );
    assert_eq!(
        pairs(run("sip:example.com:5080;transport=tcp", &r))[0],
        (Tcp, sa("192.0.2.1:5080"))
    );
}

#[test]
fn port_with_nxdomain_or_nodata() {
    let nx = DnsRecords::new()
        .with(D, RecordType::A, Answer::nx_domain())
        .with(D, RecordType::Aaaa, Answer::nx_domain());
    assert_eq!(
        dns_failure(run("sip:example.com:5060", &nx)),
        ("example.com".to_owned(), DnsFailure::NxDomain)
    );
    let empty = DnsRecords::new()
        .with(D, RecordType::A, Answer::no_data())
        .with(D, RecordType::Aaaa, Answer::no_data());
    assert_eq!(
        dns_failure(run("sip:example.com:5060", &empty)).1,
        DnsFailure::NoRecords
    );
}

// ---- §4.2: transport parameter, no port: SRV for that transport, else A/AAAA ----

#[test]
fn explicit_transport_uses_its_srv() {
    assert_eq!(
        needs("sip:example.com;transport=tcp", &DnsRecords::new()),
        ["_sip._tcp.example.com SRV"]
    );
    assert_eq!(
        needs("sips:example.com;transport=tcp", &DnsRecords::new()),
        ["_sips._tcp.example.com SRV"]
    );
    assert_eq!(
        needs("sip:example.com;transport=tls", &DnsRecords::new()),
        ["_sips._tcp.example.com SRV"]
    );
    assert_eq!(
        needs("sip:example.com;transport=udp", &DnsRecords::new()),
        ["_sip._udp.example.com SRV"]
    );
    let r = DnsRecords::new()
        .with_srv(
            "_sip._tcp.example.com",
            vec![srv(0, 0, 5090, "pbx.example.com")],
        )
        .with_host("pbx.example.com", &[ip("192.0.2.5")], 300);
    let t = run("sip:example.com;transport=tcp", &r).expect("targets");
    assert_eq!((t[0].kind, t[0].addr), (Tcp, sa("192.0.2.5:5090")));
    assert_eq!(
        t[0].server_name.as_deref(),
        Some("example.com"),
        "RFC 5922: the domain, not the SRV target"
    );
}

#[test]
fn explicit_transport_without_srv_uses_default_port() {
    let r = DnsRecords::new()
        .with(
            "_sips._tcp.example.com",
            RecordType::Srv,
            Answer::nx_domain(),
        )
        .with_host(D, &[ip("192.0.2.1")], 300);
    assert_eq!(
        pairs(run("sips:example.com;transport=tcp", &r)),
        [(Tls, sa("192.0.2.1:5061"))]
    );
}

#[test]
fn websocket_has_no_srv_name() {
    // RFC 7118 defines NAPTR services but no SRV name: A/AAAA at port 80 / 443.
    assert_eq!(
        needs("sip:example.com;transport=ws", &DnsRecords::new()),
        ["example.com A", "example.com AAAA"]
    );
    let r = DnsRecords::new().with_host(D, &[ip("192.0.2.1")], 300);
    assert_eq!(
        pairs(run("sip:example.com;transport=ws", &r)),
        [(Ws, sa("192.0.2.1:80"))]
    );
    assert_eq!(
        pairs(run("sips:example.com;transport=ws", &r)),
        [(Wss, sa("192.0.2.1:443"))]
    );
    assert_eq!(srv_prefix(Ws), None);
    assert_eq!(srv_prefix(Wss), None);
}

#[test]
fn explicit_transport_not_enabled_or_invalid() {
    let udp_only = ResolvePolicy::new([Udp]);
    assert!(matches!(
        run_with(
            &uri("sip:example.com;transport=tcp"),
            &udp_only,
            &DnsRecords::new()
        ),
        Err(Error::InvalidDestination { .. })
    ));
    assert!(matches!(
        run_with(
            &TargetUri::new(true, Host::Name("example.com".into())).with_transport(Udp),
            &ResolvePolicy::default(),
            &DnsRecords::new()
        ),
        Err(Error::InvalidUri { .. })
    ));
    // No transport parameter and none of UDP/TCP/TLS enabled.
    assert!(matches!(
        run_with(
            &uri("sip:192.0.2.1"),
            &ResolvePolicy::new([Ws]),
            &DnsRecords::new()
        ),
        Err(Error::InvalidDestination { .. })
    ));
}

// ---- §4.1: NAPTR → SRV → A/AAAA ----

/// The zone of RFC 3263 §4.1's example, with SRV and addresses.
fn rfc_zone() -> DnsRecords {
    DnsRecords::new()
        .with_naptr(
            D,
            vec![
                naptr(90, 50, "SIP+D2T", "_sip._tcp.example.com"),
                naptr(100, 50, "SIP+D2U", "_sip._udp.example.com"),
                naptr(50, 50, "SIPS+D2T", "_sips._tcp.example.com"),
            ],
        )
        .with_srv(
            "_sips._tcp.example.com",
            vec![srv(0, 0, 5061, "server1.example.com")],
        )
        .with_srv(
            "_sip._tcp.example.com",
            vec![srv(0, 0, 5060, "server1.example.com")],
        )
        .with_srv(
            "_sip._udp.example.com",
            vec![srv(0, 0, 5060, "server2.example.com")],
        )
        .with_host("server1.example.com", &[ip("192.0.2.11")], 300)
        .with_host("server2.example.com", &[ip("192.0.2.12")], 300)
}

#[test]
fn naptr_chain_step_by_step() {
    let full = rfc_zone();
    let mut r = DnsRecords::new();
    assert_eq!(needs("sip:example.com", &r), ["example.com NAPTR"]);
    r.insert(
        Query::new(D, RecordType::Naptr),
        full.get(&Query::new(D, RecordType::Naptr))
            .cloned()
            .expect("naptr"),
    );
    // RFC 3403 §4.1: only the lowest order (SIPS+D2T) is followed.
    assert_eq!(needs("sip:example.com", &r), ["_sips._tcp.example.com SRV"]);
    let q = Query::new("_sips._tcp.example.com", RecordType::Srv);
    r.insert(q.clone(), full.get(&q).cloned().expect("srv"));
    assert_eq!(
        needs("sip:example.com", &r),
        ["server1.example.com A", "server1.example.com AAAA"]
    );
    assert_eq!(
        pairs(run("sip:example.com", &full)),
        [(Tls, sa("192.0.2.11:5061"))]
    );
    let t = run("sip:example.com", &full).expect("targets");
    assert_eq!(t[0].server_name.as_deref(), Some("example.com"));
}

#[test]
fn naptr_all_orders_when_not_strict() {
    let p = ResolvePolicy::default().with_strict_naptr_order(false);
    assert_eq!(
        pairs(run_with(&uri("sip:example.com"), &p, &rfc_zone())),
        [
            (Tls, sa("192.0.2.11:5061")),
            (Tcp, sa("192.0.2.11:5060")),
            (Udp, sa("192.0.2.12:5060")),
        ]
    );
}

#[test]
fn naptr_filtered_by_enabled_transports() {
    // TLS not enabled: the lowest usable order is now SIP+D2T.
    let p = ResolvePolicy::new([Udp, Tcp]);
    assert_eq!(
        pairs(run_with(&uri("sip:example.com"), &p, &rfc_zone())),
        [(Tcp, sa("192.0.2.11:5060"))]
    );
    let p = ResolvePolicy::new([Udp]);
    assert_eq!(
        pairs(run_with(&uri("sip:example.com"), &p, &rfc_zone())),
        [(Udp, sa("192.0.2.12:5060"))]
    );
}

#[test]
fn naptr_preference_within_one_order() {
    let r = DnsRecords::new()
        .with_naptr(
            D,
            vec![
                naptr(10, 20, "SIP+D2U", "_sip._udp.example.com"),
                naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com"),
            ],
        )
        .with_srv(
            "_sip._tcp.example.com",
            vec![srv(0, 0, 5060, "a.example.com")],
        )
        .with_srv(
            "_sip._udp.example.com",
            vec![srv(0, 0, 5060, "a.example.com")],
        )
        .with_host("a.example.com", &[ip("192.0.2.1")], 300);
    assert_eq!(
        pairs(run("sip:example.com", &r)),
        [(Tcp, sa("192.0.2.1:5060")), (Udp, sa("192.0.2.1:5060"))]
    );
}

#[test]
fn sips_never_downgrades_through_naptr() {
    // Only insecure services offered: they are discarded for SIPS, so the SRV fallback asks
    // `_sips._tcp` only, and without it A/AAAA with TLS on 5061.
    let r = DnsRecords::new()
        .with_naptr(D, vec![naptr(10, 10, "SIP+D2U", "_sip._udp.example.com")])
        .with("_sips._tcp.example.com", RecordType::Srv, Answer::no_data())
        .with_host(D, &[ip("192.0.2.1")], 300);
    assert_eq!(
        pairs(run("sips:example.com", &r)),
        [(Tls, sa("192.0.2.1:5061"))]
    );
    assert_eq!(
        needs("sips:example.com", &DnsRecords::new().with_naptr(D, vec![])),
        ["_sips._tcp.example.com SRV"]
    );
}

#[test]
fn sip_uri_keeps_sips_services() {
    // RFC 3263 §4.1: a SIP URI SHOULD retain SIPS+D2T when TLS is supported.
    let r = DnsRecords::new()
        .with_naptr(D, vec![naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com")])
        .with_srv(
            "_sips._tcp.example.com",
            vec![srv(0, 0, 5061, "s.example.com")],
        )
        .with_host("s.example.com", &[ip("192.0.2.3")], 300);
    assert_eq!(
        pairs(run("sip:example.com", &r)),
        [(Tls, sa("192.0.2.3:5061"))]
    );
}

#[test]
fn websocket_naptr_services() {
    let r = DnsRecords::new()
        .with_naptr(
            D,
            vec![
                naptr(10, 10, "SIPS+D2W", "_sips._ws.example.com"),
                naptr(10, 20, "SIP+D2W", "_sip._ws.example.com"),
            ],
        )
        .with_srv(
            "_sips._ws.example.com",
            vec![srv(0, 0, 8443, "ws.example.com")],
        )
        .with_srv(
            "_sip._ws.example.com",
            vec![srv(0, 0, 8080, "ws.example.com")],
        )
        .with_host("ws.example.com", &[ip("192.0.2.4")], 300);
    assert_eq!(
        pairs(run("sip:example.com", &r)),
        [(Wss, sa("192.0.2.4:8443")), (Ws, sa("192.0.2.4:8080"))]
    );
    assert_eq!(
        pairs(run("sips:example.com", &r)),
        [(Wss, sa("192.0.2.4:8443"))]
    );
}

#[test]
fn naptr_replacement_without_srv_yields_nothing() {
    // The NAPTR set says where the service is; no fallback to the domain's A records.
    let r = DnsRecords::new()
        .with_naptr(D, vec![naptr(10, 10, "SIP+D2U", "_sip._udp.example.com")])
        .with("_sip._udp.example.com", RecordType::Srv, Answer::no_data())
        .with_host(D, &[ip("192.0.2.1")], 300);
    assert_eq!(
        dns_failure(run("sip:example.com", &r)),
        ("example.com".to_owned(), DnsFailure::NoRecords)
    );
}

#[test]
fn unusable_naptr_falls_back_to_srv() {
    let r =
        DnsRecords::new().with_naptr(D, vec![naptr(10, 10, "SIP+D2S", "_sip._sctp.example.com")]);
    assert_eq!(
        needs("sip:example.com", &r),
        [
            "_sips._tcp.example.com SRV",
            "_sip._tcp.example.com SRV",
            "_sip._udp.example.com SRV"
        ]
    );
}

#[test]
fn naptr_nxdomain_stops_everything() {
    // RFC 8020: nothing exists under a name that does not exist.
    let r = DnsRecords::new().with(D, RecordType::Naptr, Answer::nx_domain());
    assert_eq!(
        dns_failure(run("sip:example.com", &r)),
        ("example.com".to_owned(), DnsFailure::NxDomain)
    );
}

// ---- §4.1 without NAPTR: SRV per transport, else A/AAAA ----

#[test]
fn no_naptr_srv_queries_in_policy_order() {
    let r = DnsRecords::new().with(D, RecordType::Naptr, Answer::no_data());
    assert_eq!(
        needs("sip:example.com", &r),
        [
            "_sips._tcp.example.com SRV",
            "_sip._tcp.example.com SRV",
            "_sip._udp.example.com SRV"
        ]
    );
    let p = ResolvePolicy::new([Udp, Tcp]);
    match locate_server(&uri("sip:example.com"), &p, &r, &mut first) {
        Step::Lookup(q) => assert_eq!(
            q,
            [
                Query::new("_sip._udp.example.com", RecordType::Srv),
                Query::new("_sip._tcp.example.com", RecordType::Srv)
            ]
        ),
        Step::Done(d) => panic!("{d:?}"),
    }
}

#[test]
fn srv_only_zone() {
    let r = bare_zone()
        .with_srv(
            "_sip._udp.example.com",
            vec![srv(0, 0, 5062, "udp.example.com")],
        )
        .with_srv(
            "_sip._tcp.example.com",
            vec![srv(0, 0, 5063, "tcp.example.com")],
        )
        .with_host("udp.example.com", &[ip("192.0.2.21")], 300)
        .with_host("tcp.example.com", &[ip("192.0.2.22")], 300);
    assert_eq!(
        pairs(run("sip:example.com", &r)),
        [(Tcp, sa("192.0.2.22:5063")), (Udp, sa("192.0.2.21:5062"))]
    );
}

#[test]
fn a_only_zone_uses_default_transport_and_port() {
    assert_eq!(
        pairs(run("sip:example.com", &bare_zone())),
        [(Udp, sa("192.0.2.1:5060")), (Udp, sa("[2001:db8::1]:5060"))]
    );
    assert_eq!(
        pairs(run("sips:example.com", &bare_zone()))[0],
        (Tls, sa("192.0.2.1:5061"))
    );
    // UDP disabled: TCP is the SIP default.
    let p = ResolvePolicy::new([Tcp]);
    assert_eq!(
        pairs(run_with(&uri("sip:example.com"), &p, &bare_zone()))[0],
        (Tcp, sa("192.0.2.1:5060"))
    );
}

#[test]
fn nothing_at_all() {
    let r = DnsRecords::new()
        .with(D, RecordType::Naptr, Answer::no_data())
        .with("_sips._tcp.example.com", RecordType::Srv, Answer::no_data())
        .with("_sip._tcp.example.com", RecordType::Srv, Answer::no_data())
        .with("_sip._udp.example.com", RecordType::Srv, Answer::no_data())
        .with(D, RecordType::A, Answer::no_data())
        .with(D, RecordType::Aaaa, Answer::no_data());
    assert_eq!(
        dns_failure(run("sip:example.com", &r)).1,
        DnsFailure::NoRecords
    );
}

// ---- SRV details (RFC 2782) ----

#[test]
fn srv_priority_then_weight() {
    let recs = vec![
        srv(20, 0, 5060, "backup.example.com"),
        srv(10, 10, 5060, "light.example.com"),
        srv(10, 90, 5060, "heavy.example.com"),
    ];
    let r = DnsRecords::new()
        .with_srv("_sip._udp.example.com", recs)
        .with_host("backup.example.com", &[ip("192.0.2.30")], 300)
        .with_host("light.example.com", &[ip("192.0.2.31")], 300)
        .with_host("heavy.example.com", &[ip("192.0.2.32")], 300);
    let u = uri("sip:example.com;transport=udp");
    let p = ResolvePolicy::default();
    // Draw 0 of 0..=100: "light" (running sum 10 >= 0), then "heavy".
    let got = |rng: &mut dyn SrvRandom| match locate_server(&u, &p, &r, rng) {
        Step::Done(Ok(t)) => t
            .iter()
            .map(|t| t.addr.ip().to_string())
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(got(&mut |_| 0), ["192.0.2.31", "192.0.2.32", "192.0.2.30"]);
    // Each target carries its SRV record's priority and weight (for load balancing).
    let Step::Done(Ok(t)) = locate_server(&u, &p, &r, &mut first) else {
        panic!("all records given");
    };
    let ranks: Vec<(u16, u16)> = t.iter().map(|t| (t.priority, t.weight)).collect();
    assert_eq!(ranks, [(10, 10), (10, 90), (20, 0)]);
    let Step::Done(Ok(t)) = locate_server(&uri("sip:192.0.2.1"), &p, &r, &mut first) else {
        panic!("numeric host");
    };
    assert_eq!((t[0].priority, t[0].weight), (0, 0));
    // Draw 50: heavy's share (running sums 10, 100); priority 20 still last.
    let mut draws = vec![50u32, 0].into_iter();
    let mut scripted = move |_| draws.next().unwrap_or(0);
    assert_eq!(
        got(&mut scripted),
        ["192.0.2.32", "192.0.2.31", "192.0.2.30"]
    );
}

#[test]
fn pinned_srv_order_is_followed_in_every_round() {
    // Weights 10, 30, 60: draws of 0 order a, b, c; draws at the top of the range c, b, a.
    let name = "_sip._udp.example.com";
    let recs = vec![
        srv(1, 10, 5060, "a.example.com"),
        srv(1, 30, 5060, "b.example.com"),
        srv(1, 60, 5060, "c.example.com"),
    ];
    let u = uri("sip:example.com;transport=udp");
    let p = ResolvePolicy::default().with_ip_order(IpOrder::V4Only);
    let first_asked = |r: &DnsRecords| match locate_server(&u, &p, r, &mut first) {
        Step::Lookup(q) => q[0].name().to_owned(),
        Step::Done(d) => panic!("done early with {d:?}"),
    };
    let mut r = DnsRecords::new().with_srv(name, recs.clone());
    assert_eq!(first_asked(&r), "a.example.com");
    r.pin_srv_orders(&mut |max: u32| max);
    // Later rounds draw 0 but follow the pinned order; pinning again changes nothing.
    assert_eq!(first_asked(&r), "c.example.com");
    r.pin_srv_orders(&mut first);
    assert_eq!(first_asked(&r), "c.example.com");
    let done = r
        .clone()
        .with_host("a.example.com", &[ip("192.0.2.1")], 300)
        .with_host("b.example.com", &[ip("192.0.2.2")], 300)
        .with_host("c.example.com", &[ip("192.0.2.3")], 300);
    let order: Vec<_> = pairs(run_with(&u, &p, &done))
        .into_iter()
        .map(|(_, a)| a.ip())
        .collect();
    assert_eq!(order, [ip("192.0.2.3"), ip("192.0.2.2"), ip("192.0.2.1")]);
    // A new answer for the name drops the pinned order.
    r.insert(Query::new(name, RecordType::Srv), Answer::srv(recs));
    assert_eq!(first_asked(&r), "a.example.com");
}

#[test]
fn srv_dot_means_unavailable() {
    let dot = vec![srv(0, 0, 0, "")];
    // Explicit transport: "." does not fall back to A/AAAA.
    let r = DnsRecords::new()
        .with_srv("_sip._tcp.example.com", dot.clone())
        .with_host(D, &[ip("192.0.2.1")], 300);
    assert_eq!(
        dns_failure(run("sip:example.com;transport=tcp", &r)).1,
        DnsFailure::Unavailable
    );
    // Fallback SRV: "." counts as present (no A/AAAA fallback); other transports still used.
    let r = bare_zone()
        .with_srv("_sip._udp.example.com", dot.clone())
        .with_srv(
            "_sip._tcp.example.com",
            vec![srv(0, 0, 5060, "tcp.example.com")],
        )
        .with_host("tcp.example.com", &[ip("192.0.2.22")], 300);
    assert_eq!(
        pairs(run("sip:example.com", &r)),
        [(Tcp, sa("192.0.2.22:5060"))]
    );
    let r = bare_zone().with_srv("_sip._udp.example.com", dot);
    assert_eq!(
        dns_failure(run("sip:example.com", &r)).1,
        DnsFailure::Unavailable
    );
}

#[test]
fn srv_additional_addresses_save_queries() {
    let r = DnsRecords::new().with(
        "_sip._tcp.example.com",
        RecordType::Srv,
        Answer::Srv {
            records: vec![
                srv(0, 0, 5060, "a.example.com"),
                srv(1, 0, 5060, "b.example.com"),
            ],
            additional: vec![AdditionalAddress {
                name: "a.example.com".into(),
                record: AddressRecord {
                    ip: ip("192.0.2.41"),
                    ttl: 300,
                },
            }],
        },
    );
    // a's A record came with the SRV answer; a's AAAA and both of b's are asked.
    assert_eq!(
        needs("sip:example.com;transport=tcp", &r),
        [
            "a.example.com AAAA",
            "b.example.com A",
            "b.example.com AAAA"
        ]
    );
    let r = r
        .with("a.example.com", RecordType::Aaaa, Answer::no_data())
        .with_host("b.example.com", &[ip("192.0.2.42")], 300);
    assert_eq!(
        pairs(run("sip:example.com;transport=tcp", &r)),
        [(Tcp, sa("192.0.2.41:5060")), (Tcp, sa("192.0.2.42:5060"))]
    );
}

#[test]
fn srv_additional_addresses_stand_only_for_their_family() {
    // RFC 2782: additional data saves the queries for the address types it holds, no more;
    // the family it lacks is still asked (RFC 3263 §4.2).
    let v4_given = DnsRecords::new().with(
        "_sip._tcp.example.com",
        RecordType::Srv,
        Answer::Srv {
            records: vec![srv(0, 0, 5060, "a.example.com")],
            additional: vec![AdditionalAddress {
                name: "a.example.com".into(),
                record: AddressRecord {
                    ip: ip("192.0.2.41"),
                    ttl: 300,
                },
            }],
        },
    );
    let u = uri("sip:example.com;transport=tcp");
    let policy = |o| ResolvePolicy::default().with_ip_order(o);
    let needs_with = |o, r: &DnsRecords| match locate_server(&u, &policy(o), r, &mut first) {
        Step::Lookup(q) => q,
        Step::Done(d) => panic!("{o:?}: done early with {d:?}"),
    };
    let aaaa = [Query::new("a.example.com", RecordType::Aaaa)];
    for order in [IpOrder::V6Only, IpOrder::V4First, IpOrder::V6First] {
        assert_eq!(needs_with(order, &v4_given), aaaa, "{order:?}");
    }
    assert_eq!(
        pairs(run_with(&u, &policy(IpOrder::V4Only), &v4_given)),
        [(Tcp, sa("192.0.2.41:5060"))]
    );
    // With the AAAA answer (and still no A query) both families, in policy order.
    let both = v4_given.clone().with(
        "a.example.com",
        RecordType::Aaaa,
        Answer::Addresses(vec![AddressRecord {
            ip: ip("2001:db8::41"),
            ttl: 300,
        }]),
    );
    let (v4, v6) = (
        (Tcp, sa("192.0.2.41:5060")),
        (Tcp, sa("[2001:db8::41]:5060")),
    );
    assert_eq!(
        pairs(run_with(&u, &policy(IpOrder::V4First), &both)),
        [v4, v6]
    );
    assert_eq!(
        pairs(run_with(&u, &policy(IpOrder::V6First), &both)),
        [v6, v4]
    );
    assert_eq!(pairs(run_with(&u, &policy(IpOrder::V6Only), &both)), [v6]);
    // No AAAA record either: the target has no IPv6 address.
    let none = v4_given.with("a.example.com", RecordType::Aaaa, Answer::no_data());
    assert_eq!(
        dns_failure(run_with(&u, &policy(IpOrder::V6Only), &none)).1,
        DnsFailure::NoRecords
    );
}

#[test]
fn srv_target_without_addresses_is_skipped() {
    let r = DnsRecords::new()
        .with_srv(
            "_sip._tcp.example.com",
            vec![
                srv(0, 0, 5060, "gone.example.com"),
                srv(1, 0, 5060, "ok.example.com"),
            ],
        )
        .with("gone.example.com", RecordType::A, Answer::nx_domain())
        .with("gone.example.com", RecordType::Aaaa, Answer::nx_domain())
        .with_host("ok.example.com", &[ip("192.0.2.50")], 300);
    assert_eq!(
        pairs(run("sip:example.com;transport=tcp", &r)),
        [(Tcp, sa("192.0.2.50:5060"))]
    );
}

// ---- address families, bounds, duplicates ----

#[test]
fn ip_order() {
    let u = uri("sip:example.com:5060");
    let r = DnsRecords::new().with_host(D, &[ip("192.0.2.1"), ip("2001:db8::1")], 300);
    let order = |o| {
        pairs(run_with(&u, &ResolvePolicy::default().with_ip_order(o), &r))
            .into_iter()
            .map(|(_, a)| a.ip().is_ipv6())
            .collect::<Vec<_>>()
    };
    assert_eq!(order(IpOrder::V4First), [false, true]);
    assert_eq!(order(IpOrder::V6First), [true, false]);
    assert_eq!(order(IpOrder::V4Only), [false]);
    assert_eq!(order(IpOrder::V6Only), [true]);
    // V4Only never asks for AAAA.
    match locate_server(
        &u,
        &ResolvePolicy::default().with_ip_order(IpOrder::V4Only),
        &DnsRecords::new(),
        &mut first,
    ) {
        Step::Lookup(q) => assert_eq!(q, [Query::new(D, RecordType::A)]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bounded_and_deduplicated() {
    let many: Vec<IpAddr> = (1..=40u8).map(|i| IpAddr::from([192, 0, 2, i])).collect();
    let r = DnsRecords::new().with_host(D, &many, 300);
    let p = ResolvePolicy::default().with_max_targets(5);
    assert_eq!(
        run_with(&uri("sip:example.com:5060"), &p, &r)
            .expect("targets")
            .len(),
        5
    );
    // The same address under two SRV records appears once.
    let r = DnsRecords::new()
        .with_srv(
            "_sip._tcp.example.com",
            vec![
                srv(0, 0, 5060, "a.example.com"),
                srv(1, 0, 5060, "a.example.com"),
            ],
        )
        .with_host("a.example.com", &[ip("192.0.2.1")], 300);
    assert_eq!(
        run("sip:example.com;transport=tcp", &r)
            .expect("targets")
            .len(),
        1
    );
}

#[test]
fn destination_carries_the_server_name() {
    let t = run(
        "sips:example.com:5061",
        &DnsRecords::new().with_host(D, &[ip("192.0.2.1")], 300),
    )
    .expect("targets");
    let d = t[0].destination();
    assert_eq!(d.addr, sa("192.0.2.1:5061"));
    assert_eq!(d.server_name.as_deref(), Some("example.com"));
}

// ---- §5: responses ----

fn respond(sent_by: &SentBy, r: &DnsRecords) -> Step {
    locate_response(sent_by, &ResolvePolicy::default(), r, &mut first)
}

fn sent_by(host: &str, port: Option<u16>, transport: TransportKind) -> SentBy {
    SentBy {
        host: Host::parse(host).expect("host"),
        port,
        transport,
    }
}

#[test]
fn response_to_numeric_sent_by() {
    let Step::Done(Ok(t)) = respond(&sent_by("192.0.2.7", None, Tls), &DnsRecords::new()) else {
        panic!("numeric sent-by needs no DNS");
    };
    assert_eq!((t[0].kind, t[0].addr), (Tls, sa("192.0.2.7:5061")));
}

#[test]
fn response_sent_by_with_port_uses_address_records() {
    let s = sent_by("client.example.com", Some(5070), Udp);
    match respond(&s, &DnsRecords::new()) {
        Step::Lookup(q) => assert_eq!(
            q,
            [
                Query::new("client.example.com", RecordType::A),
                Query::new("client.example.com", RecordType::Aaaa)
            ]
        ),
        other => panic!("{other:?}"),
    }
    let r = DnsRecords::new().with_host("client.example.com", &[ip("192.0.2.8")], 300);
    let Step::Done(Ok(t)) = respond(&s, &r) else {
        panic!("done")
    };
    assert_eq!((t[0].kind, t[0].addr), (Udp, sa("192.0.2.8:5070")));
    assert_eq!(t[0].server_name.as_deref(), Some("client.example.com"));
}

#[test]
fn response_sent_by_without_port_uses_srv_of_the_via_transport() {
    for (kind, name) in [
        (Udp, "_sip._udp.client.example.com"),
        (Tcp, "_sip._tcp.client.example.com"),
        (Tls, "_sips._tcp.client.example.com"),
    ] {
        match respond(
            &sent_by("client.example.com", None, kind),
            &DnsRecords::new(),
        ) {
            Step::Lookup(q) => assert_eq!(q, [Query::new(name, RecordType::Srv)]),
            other => panic!("{other:?}"),
        }
    }
    // SRV present: its port.
    let r = DnsRecords::new()
        .with_srv(
            "_sips._tcp.client.example.com",
            vec![srv(0, 0, 5071, "ua.example.com")],
        )
        .with_host("ua.example.com", &[ip("192.0.2.9")], 300);
    let Step::Done(Ok(t)) = respond(&sent_by("client.example.com", None, Tls), &r) else {
        panic!("done")
    };
    assert_eq!((t[0].kind, t[0].addr), (Tls, sa("192.0.2.9:5071")));
    // No SRV: A/AAAA at the default port.
    let r = DnsRecords::new()
        .with(
            "_sip._tcp.client.example.com",
            RecordType::Srv,
            Answer::no_data(),
        )
        .with_host("client.example.com", &[ip("192.0.2.8")], 300);
    let Step::Done(Ok(t)) = respond(&sent_by("client.example.com", None, Tcp), &r) else {
        panic!("done")
    };
    assert_eq!((t[0].kind, t[0].addr), (Tcp, sa("192.0.2.8:5060")));
    // WS: no SRV name, A/AAAA at 80.
    let r = DnsRecords::new().with_host("client.example.com", &[ip("192.0.2.8")], 300);
    let Step::Done(Ok(t)) = respond(&sent_by("client.example.com", None, Ws), &r) else {
        panic!("done")
    };
    assert_eq!((t[0].kind, t[0].addr), (Ws, sa("192.0.2.8:80")));
}
