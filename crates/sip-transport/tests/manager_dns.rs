//! `TransportManager` with RFC 3263 over real DNS (dnsmasq on loopback, via the testkit) and
//! our own transports as responders: failover from a refusing SRV target and from one with
//! the wrong certificate, hold-back and
//! re-admission by OPTIONS health check, the top Via following a failover to another
//! transport (RFC 3261 §18.1.1), weighted and round-robin spread over two
//! responders, a response to a Via sent-by name (RFC 3263 §5), and a response to a `maddr`
//! name (RFC 3261 §18.2.2).
//!
//! Skipped loudly without dnsmasq, failed under CI (`CI=true`), per the testkit's policy.
#![cfg(all(feature = "dns", feature = "udp", feature = "tcp"))]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_transport::dns::{SipResolver, SipResolverConfig};
use sip_transport::prelude::*;
use sip_transport::tcp::{TcpConfig, TcpTransport};
use sip_transport::{HealthCheck, LoadBalancing, bind_tcp, bind_udp};
use sip_transport_testkit::{Dnsmasq, options_request};
use support::{Responder, bounded, next_message};

const DOMAIN: &str = "example.test";

fn resolver(dns: &Dnsmasq) -> Arc<SipResolver> {
    let config = SipResolverConfig::default()
        .with_nameserver(dns.addr())
        .with_timeout(Duration::from_secs(2));
    Arc::new(SipResolver::new(config).expect("resolver"))
}

fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn req(n: u64) -> Message {
    options_request("sip:svc@example.test", "TCP", "client.invalid", n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_hold_back_and_health_check_readmission() {
    bounded(async {
        let down = free_tcp_port();
        let mut backup = Responder::start(bind_tcp(([127, 0, 0, 1], 0)).await.expect("backup"));
        let zone = [
            format!("--srv-host=_sip._tcp.fo.{DOMAIN},a.{DOMAIN},{down},10,0"),
            format!(
                "--srv-host=_sip._tcp.fo.{DOMAIN},b.{DOMAIN},{},20,0",
                backup.port()
            ),
            format!("--host-record=a.{DOMAIN},127.0.0.1"),
            format!("--host-record=b.{DOMAIN},127.0.0.1"),
        ];
        let Some(dns) = Dnsmasq::start(DOMAIN, &zone) else {
            return;
        };
        let hold = Duration::from_millis(500);
        let config = ManagerConfig::default()
            .with_resolver(resolver(&dns))
            .with_hold_time(hold)
            .with_health_check(
                HealthCheck::default()
                    .with_interval(Duration::from_millis(100))
                    .with_timeout(Duration::from_secs(1)),
            );
        let (manager, _events) = TransportManager::new(config).expect("manager");
        manager
            .add(TcpTransport::bind(TcpConfig::client()).await.expect("tcp"))
            .expect("add");
        let to = SendTo::uri(&format!("sip:svc@fo.{DOMAIN};transport=tcp")).expect("uri");

        // a (priority 10) refuses: failover to b, a held back.
        let sent = manager
            .send_message(&req(1), to.clone())
            .await
            .expect("failover");
        assert_eq!(sent.attempts, 2, "{}", dns.log());
        assert_eq!(
            sent.destination.as_ref().map(|d| d.addr.port()),
            Some(backup.port())
        );
        assert_eq!(
            backup.next_request().await.message.cseq().map(|c| c.seq),
            Some(1)
        );
        let held = manager.held_targets();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].addr.port(), down);
        let stats = manager.stats();
        assert_eq!((stats.failovers, stats.targets_held_back), (1, 1));

        // While a is held back, b is tried first.
        let sent = manager
            .send_message(&req(2), to.clone())
            .await
            .expect("direct");
        assert_eq!(sent.attempts, 1);
        assert_eq!(
            sent.destination.as_ref().map(|d| d.addr.port()),
            Some(backup.port())
        );

        // After the hold time the probes fail (still refused): a stays held.
        tokio::time::sleep(hold + Duration::from_millis(300)).await;
        assert_eq!(manager.held_targets().len(), 1);
        assert!(manager.stats().health_checks_failed >= 1);

        // a comes up: a probe gets 200 and re-admits it.
        let mut primary = Responder::start(
            bind_tcp(([127, 0, 0, 1], down))
                .await
                .expect("rebind the refused port"),
        );
        let start = Instant::now();
        while !manager.held_targets().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "not re-admitted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let probe = primary.next_request().await;
        assert_eq!(probe.message.method(), Some("OPTIONS"));
        let stats = manager.stats();
        assert!(
            stats.health_checks_ok >= 1 && stats.health_checks_sent >= 2,
            "{stats:?}"
        );
        assert_eq!(stats.targets_held_back, 0);
        let sent = manager
            .send_message(&req(3), to)
            .await
            .expect("primary again");
        assert_eq!(
            (sent.attempts, sent.destination.map(|d| d.addr.port())),
            (1, Some(down))
        );
        assert_eq!(
            primary.next_request().await.message.cseq().map(|c| c.seq),
            Some(3)
        );
        manager.close().await;
    })
    .await;
}

/// RFC 3261 §18.1.1 with RFC 3263 failover: NAPTR names TCP first, which refuses; the request
/// then goes over UDP, and its top Via follows each transport change, branch kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_another_transport_rewrites_the_top_via() {
    bounded(async {
        let down = free_tcp_port();
        let mut udp_peer = Responder::start(bind_udp(([127, 0, 0, 1], 0)).await.expect("udp"));
        let zone = [
            format!("--naptr-record=xt.{DOMAIN},10,10,s,SIP+D2T,,_sip._tcp.xt.{DOMAIN}"),
            format!("--naptr-record=xt.{DOMAIN},10,20,s,SIP+D2U,,_sip._udp.xt.{DOMAIN}"),
            format!("--srv-host=_sip._tcp.xt.{DOMAIN},t.{DOMAIN},{down},0,0"),
            format!(
                "--srv-host=_sip._udp.xt.{DOMAIN},u.{DOMAIN},{},0,0",
                udp_peer.port()
            ),
            format!("--host-record=t.{DOMAIN},127.0.0.1"),
            format!("--host-record=u.{DOMAIN},127.0.0.1"),
        ];
        let Some(dns) = Dnsmasq::start(DOMAIN, &zone) else {
            return;
        };
        let config = ManagerConfig::default().with_resolver(resolver(&dns));
        let (manager, _events) = TransportManager::new(config).expect("manager");
        manager
            .add(bind_udp(([127, 0, 0, 1], 0)).await.expect("udp"))
            .expect("add");
        manager
            .add(TcpTransport::bind(TcpConfig::client()).await.expect("tcp"))
            .expect("add");
        // The caller wrote TCP; TCP is refused, UDP takes it.
        let request = options_request("sip:svc@example.test", "TCP", "127.0.0.1:5099", 1);
        let to = SendTo::uri(&format!("sip:svc@xt.{DOMAIN}")).expect("uri");
        let sent = manager
            .send_message(&request, to)
            .await
            .expect("failover to UDP");
        assert_eq!(
            (sent.attempts, sent.kind, sent.via_rewritten),
            (2, TransportKind::Udp, true),
            "{}",
            dns.log()
        );
        let got = udp_peer.next_request().await;
        let via = got.message.top_via().expect("via");
        assert_eq!(via.transport(), "UDP", "RFC 3261 §18.1.1");
        assert_eq!((via.host(), via.port()), ("127.0.0.1", Some(5099)));
        assert_eq!(via.branch(), request.top_via().expect("via").branch());
        manager.close().await;
    })
    .await;
}

/// Sends `n` requests to `uri` and counts the destination ports used.
async fn spread(manager: &TransportManager, uri: &str, n: u64) -> HashMap<u16, usize> {
    let to = SendTo::uri(uri).expect("uri");
    let mut counts = HashMap::new();
    for i in 0..n {
        let m = options_request("sip:svc@example.test", "UDP", "127.0.0.1:5099", i);
        let sent = manager.send_message(&m, to.clone()).await.expect("sent");
        let port = sent.destination.expect("address").addr.port();
        *counts.entry(port).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_and_round_robin_spread_over_two_responders() {
    bounded(async {
        let mut light = Responder::start(bind_udp(([127, 0, 0, 1], 0)).await.expect("r1"));
        let mut heavy = Responder::start(bind_udp(([127, 0, 0, 1], 0)).await.expect("r2"));
        let (lp, hp) = (light.port(), heavy.port());
        let zone = [
            format!("--srv-host=_sip._udp.lb.{DOMAIN},light.{DOMAIN},{lp},10,10"),
            format!("--srv-host=_sip._udp.lb.{DOMAIN},heavy.{DOMAIN},{hp},10,30"),
            format!("--srv-host=_sip._udp.rr.{DOMAIN},light.{DOMAIN},{lp},10,0"),
            format!("--srv-host=_sip._udp.rr.{DOMAIN},heavy.{DOMAIN},{hp},10,0"),
            format!("--host-record=light.{DOMAIN},127.0.0.1"),
            format!("--host-record=heavy.{DOMAIN},127.0.0.1"),
            "--local-ttl=60".to_owned(),
        ];
        let Some(dns) = Dnsmasq::start(DOMAIN, &zone) else {
            return;
        };
        let r = resolver(&dns);

        // Round-robin: exact shares by weight, and strict alternation for equal weights.
        let config = ManagerConfig::default()
            .with_resolver(Arc::clone(&r))
            .with_load_balancing(LoadBalancing::RoundRobin);
        let (rr, _rr_events) = TransportManager::new(config).expect("manager");
        rr.add(bind_udp(([127, 0, 0, 1], 0)).await.expect("udp"))
            .expect("add");
        let c = spread(&rr, &format!("sip:lb.{DOMAIN}"), 8).await;
        assert_eq!(
            (c.get(&lp), c.get(&hp)),
            (Some(&2), Some(&6)),
            "weights 10:30"
        );
        let c = spread(&rr, &format!("sip:rr.{DOMAIN}"), 10).await;
        assert_eq!(
            (c.get(&lp), c.get(&hp)),
            (Some(&5), Some(&5)),
            "equal weights"
        );
        // Both responders really got them.
        let quiet = Duration::from_millis(300);
        assert_eq!(light.drain_count(quiet).await, 7);
        assert_eq!(heavy.drain_count(quiet).await, 11);
        rr.close().await;

        // Weighted (RFC 2782 draws, the default): heavy's share near 30/40 over 400 requests.
        // The RFC's draw from 0..=sum gives light 11 of 41 values: heavy ≈ 0.73.
        let config = ManagerConfig::default().with_resolver(r);
        let (weighted, _events) = TransportManager::new(config).expect("manager");
        weighted
            .add(bind_udp(([127, 0, 0, 1], 0)).await.expect("udp"))
            .expect("add");
        let c = spread(&weighted, &format!("sip:lb.{DOMAIN}"), 400).await;
        let share = *c.get(&hp).unwrap_or(&0) as f64 / 400.0;
        assert!((0.62..=0.84).contains(&share), "heavy share {share}: {c:?}");
        assert!(c.get(&lp).copied().unwrap_or(0) > 40, "{c:?}");
        weighted.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_to_a_sent_by_name_goes_through_rfc3263_section_5() {
    bounded(async {
        let (client, mut client_events) = bind_tcp(([127, 0, 0, 1], 0)).await.expect("client");
        let port = client.local_addr().port();
        let zone = [format!("--host-record=uac.{DOMAIN},127.0.0.1")];
        let Some(dns) = Dnsmasq::start(DOMAIN, &zone) else {
            return;
        };
        let config = ManagerConfig::default().with_resolver(resolver(&dns));
        let (manager, _events) = TransportManager::new(config).expect("manager");
        manager
            .add(TcpTransport::bind(TcpConfig::client()).await.expect("tcp"))
            .expect("add");
        // No received parameter and no flow: the sent-by name is resolved (A, that port).
        let resp = Message::parse(sip_transport::bytes::Bytes::from(format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP uac.{DOMAIN}:{port};branch=z9hG4bK-s5\r\n\
             From: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>;tag=2\r\n\
             Call-ID: s5@example.test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )))
        .expect("response");
        let sent = manager
            .send_message(
                &resp,
                SendTo::Reply {
                    flow: None,
                    local: None,
                },
            )
            .await
            .expect("sent by name");
        assert_eq!(sent.destination.map(|d| d.addr), Some(client.local_addr()));
        let got = next_message(&mut client_events).await;
        assert_eq!(got.message.status_code(), Some(200));
        assert!(
            dns.queries()
                .iter()
                .any(|q| q == &format!("A uac.{DOMAIN}")),
            "{:?}",
            dns.queries()
        );
        manager.close().await;
    })
    .await;
}

/// RFC 3261 §18.2.2: a UDP response whose Via has `maddr` goes to that address at the sent-by
/// port. A name there is resolved (A/AAAA: the port is given, so no SRV); the sent-by host and
/// `received` are not where it goes, even when the sent-by name resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_to_a_maddr_name_goes_there_not_to_the_sent_by() {
    bounded(async {
        let (group, mut group_events) = bind_udp(([127, 0, 0, 1], 0)).await.expect("maddr host");
        let port = group.local_addr().port();
        // The sent-by host, at the same port: must hear nothing.
        let (decoy, mut decoy_events) = bind_udp(([127, 0, 0, 2], port))
            .await
            .expect("127.0.0.2 on loopback");
        let zone = [
            format!("--host-record=group.{DOMAIN},127.0.0.1"),
            format!("--host-record=uac.{DOMAIN},127.0.0.2"),
        ];
        let Some(dns) = Dnsmasq::start(DOMAIN, &zone) else {
            return;
        };
        let config = ManagerConfig::default().with_resolver(resolver(&dns));
        let (manager, _events) = TransportManager::new(config).expect("manager");
        manager
            .add(bind_udp(([127, 0, 0, 1], 0)).await.expect("udp"))
            .expect("add");
        let vias = [
            format!("SIP/2.0/UDP uac.{DOMAIN}:{port};maddr=group.{DOMAIN};ttl=3;branch=z9hG4bK-m1"),
            format!(
                "SIP/2.0/UDP uac.{DOMAIN}:{port};received=127.0.0.2;maddr=group.{DOMAIN};branch=z9hG4bK-m2"
            ),
        ];
        for via in &vias {
            let resp = Message::parse(sip_transport::bytes::Bytes::from(format!(
                "SIP/2.0 200 OK\r\nVia: {via}\r\n\
                 From: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>;tag=2\r\n\
                 Call-ID: maddr@example.test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )))
            .expect("response");
            let sent = manager
                .send_message(
                    &resp,
                    SendTo::Reply {
                        flow: None,
                        local: None,
                    },
                )
                .await
                .expect("sent to the maddr name");
            let dest = sent.destination.expect("destination");
            assert_eq!(dest.addr, group.local_addr(), "{via}");
            // The maddr's TTL (the Via's, or 1) goes along; UDP applies it to groups only.
            let ttl = if via.contains(";ttl=3") { 3 } else { 1 };
            assert_eq!(dest.multicast_ttl, Some(ttl), "{via}");
            let got = next_message(&mut group_events).await;
            assert_eq!(got.message.top_via().expect("via").maddr(), Some(&*format!("group.{DOMAIN}")));
        }
        let stray = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                match decoy_events.recv().await {
                    Some(TransportEvent::Message(m)) => return m,
                    Some(_) => {}
                    None => std::future::pending::<()>().await,
                }
            }
        })
        .await;
        assert!(stray.is_err(), "the sent-by host got {stray:?}");
        let queries = dns.queries();
        assert!(queries.contains(&format!("A group.{DOMAIN}")), "{queries:?}");
        assert!(
            !queries.iter().any(|q| q.contains(&format!("uac.{DOMAIN}")) || q.starts_with("SRV")),
            "neither the sent-by name nor SRV: {queries:?}"
        );
        drop(decoy);
        manager.close().await;
    })
    .await;
}

/// RFC 3263 failover past a target whose certificate does not fit: the first SRV target
/// presents a certificate for another name (`NameMismatch`, final for that target), the
/// second one for the SIP domain. The request goes to the second; the verification name is
/// the domain's (RFC 5922 §4.1) for both.
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_past_a_target_with_the_wrong_certificate() {
    use sip_transport::tls::{TlsConfig, TlsTransport};
    use sip_transport_testkit::certs::{SERVER_SIP_DOMAIN, TestPki};
    bounded(async {
        let pki = TestPki::generate();
        let listener = |cert: &sip_transport_testkit::certs::CertKey| {
            TlsConfig::default()
                .with_bind(([127, 0, 0, 1], 0).into())
                .with_certificate_files(&cert.cert_path, &cert.key_path)
        };
        let bad = Responder::start(
            TlsTransport::bind(listener(&pki.wrong_name_server))
                .await
                .expect("bad"),
        );
        let mut good = Responder::start(
            TlsTransport::bind(listener(&pki.sip_uri_server))
                .await
                .expect("good"),
        );
        let domain = "sip-transport.test";
        let zone = [
            format!(
                "--srv-host=_sips._tcp.{SERVER_SIP_DOMAIN},a.{domain},{},10,0",
                bad.port()
            ),
            format!(
                "--srv-host=_sips._tcp.{SERVER_SIP_DOMAIN},b.{domain},{},20,0",
                good.port()
            ),
            format!("--host-record=a.{domain},127.0.0.1"),
            format!("--host-record=b.{domain},127.0.0.1"),
        ];
        let Some(dns) = Dnsmasq::start(domain, &zone) else {
            return;
        };
        let (manager, _events) =
            TransportManager::new(ManagerConfig::default().with_resolver(resolver(&dns)))
                .expect("manager");
        manager
            .add(
                TlsTransport::bind(TlsConfig::client().with_server_ca_file(&pki.ca_cert_path))
                    .await
                    .expect("tls client"),
            )
            .expect("add");
        let uri = format!("sips:svc@{SERVER_SIP_DOMAIN}");
        let to = SendTo::uri(&uri).expect("uri");
        let req = options_request(&uri, "TLS", "client.invalid", 1);
        let sent = manager
            .send_message(&req, to)
            .await
            .expect("failed over to the target whose certificate fits");
        assert_eq!(sent.attempts, 2, "{}", dns.log());
        assert_eq!(
            sent.destination.as_ref().map(|d| d.addr.port()),
            Some(good.port())
        );
        assert_eq!(
            good.next_request().await.message.cseq().map(|c| c.seq),
            Some(1)
        );
        // A certificate problem is not a reason to hold the target back for later sends.
        assert!(manager.held_targets().is_empty());
        // With the good target gone too, the certificate problem is what is reported (not the
        // refused connection after it): it is the one to fix, and no retry helps.
        let good_port = good.port();
        good.transport.close().await;
        let e = manager
            .send_message(
                &options_request(&uri, "TLS", "client.invalid", 2),
                SendTo::uri(&uri).expect("uri"),
            )
            .await
            .expect_err("no target works");
        assert!(
            matches!(e, Error::TlsCertificate { .. }) && !e.is_recoverable(),
            "{e:?} (good target was :{good_port})"
        );
        drop(bad);
        manager.close().await;
    })
    .await;
}
