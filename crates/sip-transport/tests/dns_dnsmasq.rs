//! RFC 3263 over real DNS: `SipResolver` against dnsmasq serving a test zone on 127.0.0.1.
//!
//! Skipped with a loud message when dnsmasq is missing, failed under CI (`CI=true`), per the
//! testkit's peer policy. Nothing leaves loopback: dnsmasq has no upstream.
#![cfg(feature = "dns")]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use sip_transport::dns::{
    CacheConfig, Host, ResolvePolicy, SentBy, SipResolver, SipResolverConfig, Target, TargetUri,
};
use sip_transport::{DnsFailure, Error, TransportKind};
use sip_transport_testkit::Dnsmasq;

use TransportKind::{Tcp, Tls, Udp};

const DOMAIN: &str = "example.test";

/// The test zone.
///
/// - `naptr.example.test`: NAPTR SIPS+D2T (order 10), SIP+D2T and SIP+D2U (order 20) →
///   SRV → `tls1` (127.0.0.11) and `sip1` (127.0.0.12, ::12);
/// - `secure.example.test`: NAPTR SIP+D2U only → SRV → `sip1`; has its own A (127.0.0.30);
/// - `srvonly.example.test`: no NAPTR; `_sip._udp` with priorities 10 and 20, `_sip._tcp`
///   with two weights in one priority;
/// - `aonly.example.test`: only an A record (127.0.0.20);
/// - `down.example.test`: `_sip._udp` SRV with target "." (service unavailable), and an A;
/// - anything else under example.test: NXDOMAIN.
fn zone() -> Vec<String> {
    [
        "--local-ttl=60",
        "--naptr-record=naptr.example.test,10,10,s,SIPS+D2T,,_sips._tcp.naptr.example.test",
        "--naptr-record=naptr.example.test,20,10,s,SIP+D2T,,_sip._tcp.naptr.example.test",
        "--naptr-record=naptr.example.test,20,20,s,SIP+D2U,,_sip._udp.naptr.example.test",
        "--srv-host=_sips._tcp.naptr.example.test,tls1.example.test,5061,0,0",
        "--srv-host=_sip._tcp.naptr.example.test,sip1.example.test,5060,0,0",
        "--srv-host=_sip._udp.naptr.example.test,sip1.example.test,5060,0,0",
        "--host-record=tls1.example.test,127.0.0.11",
        "--host-record=sip1.example.test,127.0.0.12,::12",
        "--naptr-record=secure.example.test,10,10,s,SIP+D2U,,_sip._udp.secure.example.test",
        "--srv-host=_sip._udp.secure.example.test,sip1.example.test,5090,0,0",
        "--host-record=secure.example.test,127.0.0.30",
        "--srv-host=_sip._udp.srvonly.example.test,backup.example.test,5071,20,0",
        "--srv-host=_sip._udp.srvonly.example.test,primary.example.test,5070,10,0",
        "--srv-host=_sip._tcp.srvonly.example.test,light.example.test,5080,10,10",
        "--srv-host=_sip._tcp.srvonly.example.test,heavy.example.test,5081,10,90",
        "--host-record=primary.example.test,127.0.0.41",
        "--host-record=backup.example.test,127.0.0.42",
        "--host-record=light.example.test,127.0.0.43",
        "--host-record=heavy.example.test,127.0.0.44",
        "--host-record=aonly.example.test,127.0.0.20",
        "--srv-host=_sip._udp.down.example.test",
        "--host-record=down.example.test,127.0.0.50",
    ]
    .map(String::from)
    .to_vec()
}

fn config(dns: &Dnsmasq) -> SipResolverConfig {
    SipResolverConfig::default()
        .with_nameserver(dns.addr())
        .with_timeout(Duration::from_secs(2))
        .with_policy(ResolvePolicy::default())
}

/// A resolver whose RFC 2782 draws are always 0 (deterministic order).
fn resolver(dns: &Dnsmasq) -> SipResolver {
    SipResolver::new(config(dns))
        .expect("resolver")
        .with_random(|_| 0)
}

fn uri(s: &str) -> TargetUri {
    TargetUri::parse(s).expect("valid URI")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn pairs(t: &[Target]) -> Vec<(TransportKind, SocketAddr)> {
    t.iter().map(|t| (t.kind, t.addr)).collect()
}

fn dns_reason(r: sip_transport::Result<Vec<Target>>) -> (String, DnsFailure) {
    match r {
        Err(Error::Dns { name, reason }) => (name, reason),
        other => panic!("expected a DNS error, got {other:?}"),
    }
}

#[tokio::test]
async fn naptr_srv_address_chain() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    let r = resolver(&dns);
    let t = r
        .resolve(&uri("sip:alice@naptr.example.test"))
        .await
        .expect("targets");
    // RFC 3403 §4.1: only the lowest order (SIPS+D2T) is followed.
    assert_eq!(pairs(&t), [(Tls, sa("127.0.0.11:5061"))], "{}", dns.log());
    // RFC 5922 §4: the TLS name is the URI's domain, not the SRV target.
    assert_eq!(t[0].server_name.as_deref(), Some("naptr.example.test"));
    let q = dns.queries();
    assert_eq!(
        q.first().map(String::as_str),
        Some("NAPTR naptr.example.test"),
        "{q:?}"
    );
    assert!(
        q.contains(&"SRV _sips._tcp.naptr.example.test".to_owned()),
        "{q:?}"
    );

    // Kamailio-style: every order in turn.
    let all = ResolvePolicy::default().with_strict_naptr_order(false);
    let t = r
        .resolve_with(&uri("sip:naptr.example.test"), &all)
        .await
        .expect("targets");
    assert_eq!(
        pairs(&t),
        [
            (Tls, sa("127.0.0.11:5061")),
            (Tcp, sa("127.0.0.12:5060")),
            (Tcp, sa("[::12]:5060")),
            (Udp, sa("127.0.0.12:5060")),
            (Udp, sa("[::12]:5060")),
        ]
    );
    // Without TLS enabled the lowest usable order is 20: TCP (preference 10), then UDP.
    let plain = ResolvePolicy::new([Udp, Tcp]);
    let t = r
        .resolve_with(&uri("sip:naptr.example.test"), &plain)
        .await
        .expect("targets");
    assert_eq!(pairs(&t)[0], (Tcp, sa("127.0.0.12:5060")));
    assert_eq!(pairs(&t)[2], (Udp, sa("127.0.0.12:5060")));
}

#[tokio::test]
async fn sips_never_uses_an_insecure_transport() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    let r = resolver(&dns);
    // The domain offers only SIP+D2U: a SIP URI uses it ...
    let t = r
        .resolve(&uri("sip:secure.example.test"))
        .await
        .expect("targets");
    assert_eq!(pairs(&t)[0], (Udp, sa("127.0.0.12:5090")));
    // ... a SIPS URI discards it, finds no _sips._tcp SRV, and uses TLS on the domain's A.
    let before = dns.queries().len();
    let t = r
        .resolve(&uri("sips:secure.example.test"))
        .await
        .expect("targets");
    assert_eq!(pairs(&t), [(Tls, sa("127.0.0.30:5061"))]);
    let asked = dns.queries().split_off(before);
    assert!(
        asked.contains(&"SRV _sips._tcp.secure.example.test".to_owned())
            && asked.iter().all(|q| !q.contains("_sip._")),
        "a SIPS resolution asked for a plain SIP service: {asked:?}"
    );
}

#[tokio::test]
async fn srv_only_priority_and_weight() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    let r = resolver(&dns);
    let t = r
        .resolve(&uri("sip:srvonly.example.test;transport=udp"))
        .await
        .expect("targets");
    assert_eq!(
        pairs(&t),
        [(Udp, sa("127.0.0.41:5070")), (Udp, sa("127.0.0.42:5071"))],
        "priority 10 before 20"
    );
    // No NAPTR: SRV queries per transport (TCP before UDP in the default policy). Weights
    // 10 and 90: a draw of 0 picks "light" first, a draw at the top "heavy".
    let t = r
        .resolve(&uri("sip:srvonly.example.test"))
        .await
        .expect("targets");
    assert_eq!(
        pairs(&t),
        [
            (Tcp, sa("127.0.0.43:5080")),
            (Tcp, sa("127.0.0.44:5081")),
            (Udp, sa("127.0.0.41:5070")),
            (Udp, sa("127.0.0.42:5071")),
        ]
    );
    let top = SipResolver::new(config(&dns))
        .expect("resolver")
        .with_random(|max| max);
    let t = top
        .resolve(&uri("sip:srvonly.example.test;transport=tcp"))
        .await
        .expect("targets");
    assert_eq!(
        pairs(&t),
        [(Tcp, sa("127.0.0.44:5081")), (Tcp, sa("127.0.0.43:5080"))]
    );
}

#[tokio::test]
async fn address_only_domain_and_explicit_port() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    let r = resolver(&dns);
    let t = r
        .resolve(&uri("sip:aonly.example.test"))
        .await
        .expect("targets");
    assert_eq!(pairs(&t), [(Udp, sa("127.0.0.20:5060"))]);
    let t = r
        .resolve(&uri("sips:aonly.example.test"))
        .await
        .expect("targets");
    assert_eq!(pairs(&t), [(Tls, sa("127.0.0.20:5061"))]);
    // A port: A/AAAA only, no NAPTR or SRV (RFC 3263 §4.2).
    r.clear_cache();
    let before = dns.queries().len();
    let t = r
        .resolve(&uri("sip:aonly.example.test:5099;transport=tcp"))
        .await
        .expect("targets");
    assert_eq!(pairs(&t), [(Tcp, sa("127.0.0.20:5099"))]);
    let asked: Vec<String> = dns.queries().split_off(before);
    assert!(
        asked
            .iter()
            .all(|q| q.starts_with("A ") || q.starts_with("AAAA ")),
        "{asked:?}"
    );
}

#[tokio::test]
async fn srv_dot_target_means_unavailable() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    let r = resolver(&dns);
    let e = r.resolve(&uri("sip:down.example.test;transport=udp")).await;
    let (name, reason) = dns_reason(e);
    assert_eq!(
        (name.as_str(), &reason),
        ("down.example.test", &DnsFailure::Unavailable)
    );
    assert!(!Error::Dns { name, reason }.is_recoverable());
}

#[tokio::test]
async fn nxdomain_is_a_typed_unrecoverable_error() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    let r = resolver(&dns);
    let e = r.resolve(&uri("sip:nobody.example.test")).await;
    let (name, reason) = dns_reason(e);
    assert_eq!(
        (name.as_str(), &reason),
        ("nobody.example.test", &DnsFailure::NxDomain)
    );
    // RFC 8020: the NAPTR NXDOMAIN ends it; no SRV or address query follows.
    assert_eq!(dns.queries(), ["NAPTR nobody.example.test"]);
    let e = r.resolve(&uri("sip:nobody.example.test:5060")).await;
    assert_eq!(dns_reason(e).1, DnsFailure::NxDomain);
}

#[tokio::test]
async fn second_resolve_is_served_from_the_cache() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    let r = resolver(&dns);
    let u = uri("sip:naptr.example.test");
    let first = r.resolve(&u).await.expect("targets");
    let asked = dns.queries().len();
    let sent = r.stats().queries;
    assert!(
        asked >= 2 && sent as usize == asked,
        "{:?} vs {sent}",
        dns.queries()
    );
    let second = r.resolve(&u).await.expect("targets");
    assert_eq!(first, second);
    assert_eq!(
        dns.queries().len(),
        asked,
        "the second resolve reached the server"
    );
    assert_eq!(r.stats().queries, sent);
    assert!(r.stats().cache.hits >= 2);
    // Negative answers are cached too (30 s default without SOA).
    let _ = r.resolve(&uri("sip:nobody.example.test")).await;
    let after_nx = dns.queries().len();
    let _ = r.resolve(&uri("sip:nobody.example.test")).await;
    assert_eq!(dns.queries().len(), after_nx);
    // Clearing the cache asks again.
    r.clear_cache();
    let _ = r.resolve(&u).await.expect("targets");
    assert_eq!(dns.queries().len(), after_nx + asked);
}

#[tokio::test]
async fn cache_honours_the_ttl_clamp() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    // Records say 60 s; a 1 s maximum makes the second resolve, 1.2 s later, ask again.
    let cfg = config(&dns)
        .with_cache(CacheConfig::default().with_ttl_clamp(Duration::ZERO, Duration::from_secs(1)));
    let r = SipResolver::new(cfg).expect("resolver");
    let u = uri("sip:aonly.example.test:5060");
    r.resolve(&u).await.expect("targets");
    let asked = dns.queries().len();
    r.resolve(&u).await.expect("targets");
    assert_eq!(dns.queries().len(), asked, "within the TTL");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    r.resolve(&u).await.expect("targets");
    assert_eq!(dns.queries().len(), 2 * asked, "after the TTL");
}

#[tokio::test]
async fn response_to_a_sent_by_name() {
    let Some(dns) = Dnsmasq::start(DOMAIN, &zone()) else {
        return;
    };
    let r = resolver(&dns);
    // RFC 3263 §5: no port: SRV for the Via transport.
    let sent_by = SentBy {
        host: Host::parse("srvonly.example.test").expect("host"),
        port: None,
        transport: Udp,
    };
    let t = r.resolve_response(&sent_by).await.expect("targets");
    assert_eq!(pairs(&t)[0], (Udp, sa("127.0.0.41:5070")));
    // A port: A/AAAA with that port.
    let sent_by = SentBy {
        host: Host::parse("aonly.example.test").expect("host"),
        port: Some(5077),
        transport: Tcp,
    };
    let t = r.resolve_response(&sent_by).await.expect("targets");
    assert_eq!(pairs(&t), [(Tcp, sa("127.0.0.20:5077"))]);
}

#[tokio::test]
async fn silent_server_times_out_recoverably() {
    // A UDP socket that never answers stands in for an unreachable DNS server; TCP to the
    // same port is refused. No dnsmasq needed.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let cfg = SipResolverConfig::default()
        .with_nameserver(silent.local_addr().expect("addr"))
        .with_timeout(Duration::from_millis(200))
        .with_attempts(1)
        .with_policy(ResolvePolicy::default());
    let r = SipResolver::new(cfg).expect("resolver");
    let started = std::time::Instant::now();
    let e = r.resolve(&uri("sip:example.test")).await;
    let err = match e {
        Err(e @ Error::Dns { .. }) => e,
        other => panic!("expected a DNS error, got {other:?}"),
    };
    assert!(err.is_recoverable(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(r.stats().failures >= 1);
}
