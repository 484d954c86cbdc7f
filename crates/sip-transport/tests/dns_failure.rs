//! Issue 9, faults: DNS fails. A [`SipResolver`] pointed at a loopback port where no DNS server
//! listens gives a typed, recoverable `Error::Dns` within a bounded time, and a
//! `TransportManager` request to a name fails with the same typed error (no panic, no hang).
//! Needs no DNS server: nothing listening is the point.
#![cfg(all(feature = "dns", feature = "tcp"))]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_transport::dns::{SipResolver, SipResolverConfig};
use sip_transport::prelude::*;
use sip_transport::tcp::{TcpConfig, TcpTransport};
use sip_transport::{DnsFailure, TargetUri};

/// A loopback UDP port nothing listens on (bound, then released).
fn dead_nameserver() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr")
}

fn resolver() -> Arc<SipResolver> {
    let config = SipResolverConfig::default()
        .with_nameserver(dead_nameserver())
        .with_timeout(Duration::from_millis(300))
        .with_attempts(2);
    Arc::new(SipResolver::new(config).expect("resolver"))
}

/// The failure is the server's (unreachable or silent), never an answer about the name.
fn assert_dns_unreachable(e: &Error, name: &str) {
    match e {
        Error::Dns {
            name: n,
            reason: DnsFailure::Timeout | DnsFailure::Server(_),
            // The name of the query that failed (`_sip._tcp.` + host for an SRV lookup), although
            // `Error::Dns::name` documents the URI host.
        } => assert!(n.ends_with(name), "{e:?}"),
        other => panic!("expected Error::Dns (timeout or server failure), got {other:?}"),
    }
    assert!(e.is_recoverable(), "{e:?}");
}

/// One answer's timeout × attempts × the NAPTR → SRV → A/AAAA rounds, with room.
const BOUND: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolver_without_a_server_fails_typed_and_recoverable() {
    let r = resolver();
    let uri: TargetUri = "sip:alice@nowhere.example.test;transport=tcp"
        .parse()
        .expect("uri");
    let started = Instant::now();
    let e = tokio::time::timeout(BOUND, r.resolve(&uri))
        .await
        .expect("resolution ends within the bound")
        .expect_err("nothing answers");
    eprintln!("resolver: {e} after {:?}", started.elapsed());
    assert_dns_unreachable(&e, "nowhere.example.test");
    // A URI without transport or port takes the full NAPTR path: the same typed error.
    let uri: TargetUri = "sip:alice@nowhere.example.test".parse().expect("uri");
    let e = tokio::time::timeout(BOUND, r.resolve(&uri))
        .await
        .expect("resolution ends within the bound")
        .expect_err("nothing answers");
    assert_dns_unreachable(&e, "nowhere.example.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_request_to_a_name_fails_with_the_dns_error() {
    let config = ManagerConfig::default().with_resolver(resolver());
    let (manager, _events) = TransportManager::new(config).expect("manager");
    manager
        .add(TcpTransport::bind(TcpConfig::client()).await.expect("tcp"))
        .expect("add");
    let req = sip_transport_testkit::options_request(
        "sip:svc@nowhere.example.test",
        "TCP",
        "client.invalid",
        1,
    );
    let to = SendTo::uri("sip:svc@nowhere.example.test;transport=tcp").expect("uri");
    let started = Instant::now();
    let e = tokio::time::timeout(BOUND, manager.send_message(&req, to))
        .await
        .expect("the request fails within the bound")
        .expect_err("no DNS server");
    eprintln!("manager: {e} after {:?}", started.elapsed());
    assert_dns_unreachable(&e, "nowhere.example.test");
    // The manager is still usable: a literal address needs no DNS.
    let to = SendTo::uri("sip:svc@127.0.0.1:9;transport=tcp").expect("uri");
    let e = manager
        .send_message(&req, to)
        .await
        .expect_err("nothing listens on port 9");
    assert!(!matches!(e, Error::Dns { .. }), "{e:?}");
    manager.close().await;
}
