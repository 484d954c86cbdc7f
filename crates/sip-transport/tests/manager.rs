//! `TransportManager` over real sockets on loopback, our own transports as peers: merged
//! events from UDP and TCP, responses over the request's flow and reconnecting when it is
//! gone (RFC 3261 §18.2.2; over TLS, the certificate checked against the Via sent-by name),
//! the UDP size rule moving a request to TCP with its Via rewritten, and the Via following any
//! other change of transport (RFC 3261 §18.1.1), throttling, hold-back on refusal, and stats.
#![cfg(all(feature = "udp", feature = "tcp"))]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use sip_transport::prelude::*;
use sip_transport::tcp::{TcpConfig, TcpTransport};
use sip_transport::{Direction, bind_tcp, bind_udp};
use sip_transport_testkit::{ok_response, options_request, request_with_body};
use support::{Responder, WAIT, bounded, branch, next_message};
use tokio::sync::mpsc;

const LOOPBACK: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

async fn next_event(events: &mut mpsc::Receiver<ManagerEvent>) -> ManagerEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("no manager event in time")
        .expect("merged stream ended")
}

async fn next_manager_message(events: &mut mpsc::Receiver<ManagerEvent>) -> ManagerEvent {
    loop {
        let ev = next_event(events).await;
        if ev.message().is_some() {
            return ev;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_events_from_udp_and_tcp_answered_back_and_counted() {
    bounded(async {
        let (manager, mut events) = TransportManager::new(ManagerConfig::default()).expect("m");
        let udp_id = manager
            .add(bind_udp(LOOPBACK).await.expect("udp"))
            .expect("add");
        let tcp_id = manager
            .add(bind_tcp(LOOPBACK).await.expect("tcp"))
            .expect("add");
        let addr = |id| manager.transport(id).expect("held").local_addr();
        let (udp_addr, tcp_addr) = (addr(udp_id), addr(tcp_id));

        let (uc, mut uc_events) = bind_udp(LOOPBACK).await.expect("udp client");
        let (tc, mut tc_events) = TcpTransport::bind(TcpConfig::client()).await.expect("tcp");
        let ureq = options_request("sip:m@127.0.0.1", "UDP", &uc.local_addr().to_string(), 1);
        let treq = options_request("sip:m@127.0.0.1", "TCP", "client.invalid", 2);
        uc.send_message(&ureq, &udp_addr.into())
            .await
            .expect("udp send");
        tc.send_message(&treq, &tcp_addr.into())
            .await
            .expect("tcp send");

        let mut seen = Vec::new();
        while seen.len() < 2 {
            let ev = next_manager_message(&mut events).await;
            let m = ev.message().expect("message");
            assert_eq!(ev.kind, m.kind);
            let sent = manager
                .send_message(&ok_response(&m.message), m)
                .await
                .expect("reply");
            assert_eq!(
                sent.transport, ev.transport,
                "answered from where it arrived"
            );
            seen.push((ev.transport, ev.kind, branch(&m.message)));
        }
        seen.sort();
        assert_eq!(seen[0].0, udp_id);
        assert_eq!(seen[0].1, TransportKind::Udp);
        assert_eq!(seen[1].1, TransportKind::Tcp);
        assert_eq!(
            next_message(&mut uc_events).await.message.status_code(),
            Some(200)
        );
        assert_eq!(
            next_message(&mut tc_events).await.message.status_code(),
            Some(200)
        );

        // The TCP writer counts a message once its write returns, which may be just after
        // the peer has read it: wait (bounded) for the counters to settle.
        let deadline = std::time::Instant::now() + WAIT;
        while manager.stats().total.messages_sent < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = manager.stats();
        assert_eq!(stats.transports.len(), 2);
        assert_eq!(stats.responses_sent, 2);
        assert_eq!(stats.total.messages_received, 2);
        assert_eq!(stats.total.messages_sent, 2);
        assert_eq!(
            stats.total.connections_open, 1,
            "the TCP client's connection"
        );
        assert!(stats.events_forwarded >= 2);
        let per: Vec<TransportKind> = stats.transports.iter().map(|t| t.kind).collect();
        assert_eq!(per, [TransportKind::Udp, TransportKind::Tcp]);

        manager.close().await;
        assert!(manager.is_closed());
        // The merged stream ends after the transports' last events.
        let ended = tokio::time::timeout(WAIT, async {
            let mut closed = 0;
            while let Some(ev) = events.recv().await {
                if matches!(ev.event, TransportEvent::Closed) {
                    closed += 1;
                }
            }
            closed
        })
        .await
        .expect("stream ends");
        assert_eq!(ended, 2);
        let e = manager
            .send_message(&treq, SendTo::address(TransportKind::Tcp, tcp_addr))
            .await
            .expect_err("closed");
        assert!(matches!(e, Error::TransportClosed));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_over_the_request_flow_then_reconnect_to_sent_by() {
    bounded(async {
        let (manager, mut events) = TransportManager::new(ManagerConfig::default()).expect("m");
        let id = manager
            .add(bind_tcp(LOOPBACK).await.expect("tcp"))
            .expect("add");
        let server = manager.transport(id).expect("held").local_addr();

        // The client listens too: its Via sent-by is where a response goes without the flow.
        let (client, mut client_events) = bind_tcp(LOOPBACK).await.expect("client");
        let sent_by = client.local_addr().to_string();
        let req = options_request("sip:m@127.0.0.1", "TCP", &sent_by, 1);
        let client_flow = client
            .send_message(&req, &server.into())
            .await
            .expect("send")
            .expect("a flow");

        let ev = next_manager_message(&mut events).await;
        let received = ev.message().expect("message").clone();
        let request_flow = received.flow.expect("TCP has flows");
        let first = manager
            .send_message(&ok_response(&received.message), &received)
            .await
            .expect("reply");
        assert_eq!(
            first.flow,
            Some(request_flow),
            "RFC 3261 §18.2.2: the request's flow"
        );
        assert_eq!(first.destination, None);
        let got = next_message(&mut client_events).await;
        assert_eq!(
            got.flow,
            Some(client_flow),
            "back on the client's own connection"
        );

        // The client closes its connection: the next response reconnects to the sent-by.
        assert!(client.close_flow(client_flow));
        loop {
            let ev = next_event(&mut events).await;
            if let TransportEvent::ConnectionClosed { flow, .. } = ev.event
                && flow == request_flow
            {
                break;
            }
        }
        let second = manager
            .send_message(&ok_response(&received.message), &received)
            .await
            .expect("reconnect");
        assert_ne!(second.flow, Some(request_flow));
        assert_eq!(
            second.destination.map(|d| d.addr),
            Some(client.local_addr()),
            "received (127.0.0.1) and the sent-by port"
        );
        let got = tokio::time::timeout(WAIT, async {
            loop {
                match client_events.recv().await {
                    Some(TransportEvent::ConnectionOpened { direction, .. }) => {
                        assert_eq!(direction, Direction::Inbound);
                    }
                    Some(TransportEvent::Message(m)) => return m,
                    Some(_) => {}
                    None => panic!("client events ended"),
                }
            }
        })
        .await
        .expect("second response");
        assert_eq!(got.message.status_code(), Some(200));
        assert_ne!(got.flow, Some(client_flow));

        // A known flow that is gone is an error when asked for explicitly.
        let e = manager
            .send_message(&req, SendTo::Flow(request_flow))
            .await
            .expect_err("gone");
        assert!(matches!(e, Error::FlowClosed { .. }) && e.is_recoverable());
        manager.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_udp_request_goes_over_tcp_with_the_via_rewritten() {
    bounded(async {
        let mut receiver = Responder::start(bind_tcp(LOOPBACK).await.expect("tcp listener"));
        let port = receiver.port();
        let (manager, _events) = TransportManager::new(ManagerConfig::default()).expect("m");
        manager
            .add(bind_udp(LOOPBACK).await.expect("udp"))
            .expect("add");

        let big = request_with_body("MESSAGE", "UDP", "127.0.0.1:5099", 1, 2000);
        assert!(big.len() > 1300);
        let to = SendTo::uri(&format!("sip:127.0.0.1:{port}")).expect("uri");
        // Without a TCP transport there is nowhere to move it: the UDP rule's error.
        let e = manager
            .send_message(&big, to.clone())
            .await
            .expect_err("no tcp");
        assert!(matches!(e, Error::UdpMessageTooLarge { size, limit: 1300 } if size == big.len()));
        assert!(!e.is_recoverable());

        manager
            .add(
                TcpTransport::bind(TcpConfig::client())
                    .await
                    .expect("tcp client"),
            )
            .expect("add");
        let sent = manager.send_message(&big, to.clone()).await.expect("sent");
        assert_eq!(sent.kind, TransportKind::Tcp);
        assert!(sent.via_rewritten);
        let got = receiver.next_request().await;
        assert_eq!(got.kind, TransportKind::Tcp);
        let via = got.message.top_via().expect("via");
        assert_eq!(
            via.transport(),
            "TCP",
            "RFC 3261 §18.1.1: the top Via follows"
        );
        assert_eq!(via.host(), "127.0.0.1");
        assert_eq!(via.port(), Some(5099));
        assert_eq!(via.branch(), big.top_via().expect("via").branch());
        assert_eq!(got.message.body(), big.body());
        assert_eq!(manager.stats().udp_to_tcp, 1);

        // A small request to the same URI stays on UDP.
        let small = options_request("sip:x@127.0.0.1", "UDP", "127.0.0.1:5099", 2);
        let sent = manager.send_message(&small, to).await.expect("small");
        assert_eq!(sent.kind, TransportKind::Udp);
        assert!(!sent.via_rewritten);
        manager.close().await;
    })
    .await;
}

/// RFC 3261 §18.1.1: a request that goes over another transport than its top Via names
/// (here a URI's `transport` parameter, a known address of another kind, a known flow) goes
/// with the Via's transport changed; sent-by and branch stay as the caller wrote them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_over_another_transport_than_its_via_names_gets_the_via_rewritten() {
    bounded(async {
        let mut tcp_peer = Responder::start(bind_tcp(LOOPBACK).await.expect("tcp listener"));
        let mut udp_peer = Responder::start(bind_udp(LOOPBACK).await.expect("udp listener"));
        let (manager, _events) = TransportManager::new(ManagerConfig::default()).expect("m");
        manager
            .add(bind_udp(LOOPBACK).await.expect("udp"))
            .expect("add");
        manager
            .add(TcpTransport::bind(TcpConfig::client()).await.expect("tcp"))
            .expect("add");

        // A URI asking for TCP, a request whose Via says UDP.
        let to =
            SendTo::uri(&format!("sip:127.0.0.1:{};transport=tcp", tcp_peer.port())).expect("uri");
        let req = options_request("sip:x@127.0.0.1", "UDP", "127.0.0.1:5099", 1);
        let sent = manager.send_message(&req, to.clone()).await.expect("sent");
        assert_eq!(sent.kind, TransportKind::Tcp);
        assert!(sent.via_rewritten);
        let got = tcp_peer.next_request().await;
        assert_eq!(got.kind, TransportKind::Tcp);
        let via = got.message.top_via().expect("via");
        assert_eq!(via.transport(), "TCP", "RFC 3261 §18.1.1");
        assert_eq!((via.host(), via.port()), ("127.0.0.1", Some(5099)));
        assert_eq!(branch(&got.message), branch(&req), "the branch is kept");

        // A Via already naming the transport, in any case, goes as written.
        let req = options_request("sip:x@127.0.0.1", "tcp", "127.0.0.1:5099", 2);
        let sent = manager.send_message(&req, to).await.expect("sent");
        assert!(!sent.via_rewritten);
        let got = tcp_peer.next_request().await;
        assert_eq!(got.message.top_via().expect("via").transport(), "tcp");

        // Over a known flow of another kind.
        let flow = sent.flow.expect("a TCP flow");
        let req = options_request("sip:x@127.0.0.1", "UDP", "127.0.0.1:5099", 3);
        let sent = manager
            .send_message(&req, SendTo::Flow(flow))
            .await
            .expect("on the flow");
        assert!(sent.via_rewritten);
        let got = tcp_peer.next_request().await;
        assert_eq!(got.message.top_via().expect("via").transport(), "TCP");
        assert_eq!(branch(&got.message), branch(&req));

        // To a known UDP address, a request whose Via says TCP.
        let udp_dest: SocketAddr = ([127, 0, 0, 1], udp_peer.port()).into();
        let req = options_request("sip:x@127.0.0.1", "TCP", "127.0.0.1:5099", 4);
        let sent = manager
            .send_message(&req, SendTo::address(TransportKind::Udp, udp_dest))
            .await
            .expect("sent");
        assert_eq!(sent.kind, TransportKind::Udp);
        assert!(sent.via_rewritten);
        let got = udp_peer.next_request().await;
        assert_eq!(got.message.top_via().expect("via").transport(), "UDP");
        assert_eq!(branch(&got.message), branch(&req));

        // Responses follow the request's Via: never rewritten.
        let resp = ok_response(&req);
        let sent = manager
            .send_message(&resp, SendTo::address(TransportKind::Udp, udp_dest))
            .await
            .expect("response");
        assert!(!sent.via_rewritten);
        manager.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_caps_requests_per_destination_not_responses() {
    bounded(async {
        let mut peer = Responder::start(bind_udp(LOOPBACK).await.expect("peer"));
        let dest: SocketAddr = ([127, 0, 0, 1], peer.port()).into();
        let config = ManagerConfig::default().with_max_sends_per_second(5);
        let (manager, _events) = TransportManager::new(config).expect("m");
        manager
            .add(bind_udp(LOOPBACK).await.expect("udp"))
            .expect("add");
        let to = SendTo::address(TransportKind::Udp, dest);
        for n in 0..5 {
            let req = options_request("sip:x@127.0.0.1", "UDP", "127.0.0.1:5099", n);
            manager
                .send_message(&req, to.clone())
                .await
                .expect("within the cap");
        }
        let req = options_request("sip:x@127.0.0.1", "UDP", "127.0.0.1:5099", 9);
        let e = manager
            .send_message(&req, to.clone())
            .await
            .expect_err("over");
        assert!(
            matches!(e, Error::Throttled { destination, limit: 5 } if destination == dest),
            "{e:?}"
        );
        assert!(e.is_recoverable());
        // Responses are not throttled.
        let resp = ok_response(&req);
        manager
            .send_message(&resp, to.clone())
            .await
            .expect("response");
        let stats = manager.stats();
        assert_eq!(
            (stats.throttled, stats.requests_sent, stats.send_errors),
            (1, 5, 1)
        );
        assert_eq!(peer.drain_count(Duration::from_millis(300)).await, 5);
        // The bucket refills: one more after a fifth of a second.
        tokio::time::sleep(Duration::from_millis(250)).await;
        manager.send_message(&req, to).await.expect("refilled");
        manager.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_target_is_held_back_then_readmitted_after_the_hold_time() {
    bounded(async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
            l.local_addr().expect("addr").port()
        };
        let dest: SocketAddr = ([127, 0, 0, 1], port).into();
        let config = ManagerConfig::default().with_hold_time(Duration::from_millis(300));
        let (manager, _events) = TransportManager::new(config).expect("m");
        manager
            .add(TcpTransport::bind(TcpConfig::client()).await.expect("tcp"))
            .expect("add");
        let req = options_request("sip:x@127.0.0.1", "TCP", "client.invalid", 1);
        let to = SendTo::address(TransportKind::Tcp, dest);
        let e = manager
            .send_message(&req, to.clone())
            .await
            .expect_err("refused");
        assert!(e.is_recoverable(), "{e}");
        let held = manager.held_targets();
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].kind, held[0].addr), (TransportKind::Tcp, dest));
        assert_eq!(manager.stats().targets_held_back, 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(manager.held_targets().is_empty(), "hold time over");
        assert_eq!(manager.stats().targets_held_total, 1);
        // No transport of a kind: typed, not recoverable.
        let e = manager
            .send_message(&req, SendTo::address(TransportKind::Tls, dest))
            .await
            .expect_err("no tls");
        assert!(matches!(
            e,
            Error::TransportUnavailable {
                kind: TransportKind::Tls
            }
        ));
        manager.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_uri_goes_over_a_v6_capable_transport() {
    bounded(async {
        let mut peer = Responder::start(bind_udp(([0u16; 8], 0)).await.expect("v6 peer"));
        let (manager, mut events) = TransportManager::new(ManagerConfig::default()).expect("m");
        manager
            .add(bind_udp(LOOPBACK).await.expect("v4"))
            .expect("add");
        let v6 = manager
            .add(
                bind_udp(SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 0)))
                    .await
                    .expect("v6"),
            )
            .expect("add");
        let uri = format!("sip:[::1]:{}", peer.port());
        let req = options_request(&uri, "UDP", "[::1]:5099", 1);
        let sent = manager
            .send_message(&req, SendTo::uri(&uri).expect("uri"))
            .await
            .expect("sent");
        assert_eq!(sent.transport, v6, "the IPv4 socket cannot reach [::1]");
        assert!(peer.next_request().await.source.is_ipv6());
        let ev = next_manager_message(&mut events).await;
        assert_eq!(ev.message().expect("m").message.status_code(), Some(200));
        manager.close().await;
    })
    .await;
}

/// RFC 3261 §18.2.2 over TLS when the request's connection is gone: the new connection goes
/// to `received` at the sent-by port, and the certificate is checked against the sent-by
/// name (RFC 3263 §5, RFC 5922 §7.3), not against the address (which certificates rarely
/// carry; this one does not).
#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_response_reconnect_checks_the_sent_by_name() {
    use sip_transport::tls::{TlsConfig, TlsTransport};
    use sip_transport_testkit::certs::{TestPki, WRONG_NAME};
    bounded(async {
        let pki = TestPki::generate();
        // The server side: trusts the CA when it dials.
        let server_cfg = TlsConfig::default()
            .with_bind(([127, 0, 0, 1], 0).into())
            .with_certificate_files(&pki.server.cert_path, &pki.server.key_path)
            .with_server_ca_file(&pki.ca_cert_path);
        let (manager, mut events) = TransportManager::new(ManagerConfig::default()).expect("m");
        let id = manager
            .add(TlsTransport::bind(server_cfg).await.expect("tls"))
            .expect("add");
        let server = manager.transport(id).expect("held").local_addr();
        // The client listens under a certificate for its name only (no IP address in it).
        let client_cfg = TlsConfig::default()
            .with_bind(([127, 0, 0, 1], 0).into())
            .with_certificate_files(
                &pki.wrong_name_server.cert_path,
                &pki.wrong_name_server.key_path,
            )
            .with_server_ca_file(&pki.ca_cert_path);
        let (client, mut client_events) = TlsTransport::bind(client_cfg).await.expect("client");
        let sent_by = format!("{WRONG_NAME}:{}", client.local_addr().port());
        let req = options_request("sips:m@127.0.0.1", "TLS", &sent_by, 1);
        let dest = Destination::new(server).with_server_name("localhost");
        let client_flow = client
            .send_message(&req, &dest)
            .await
            .expect("send")
            .expect("a flow");
        let ev = next_manager_message(&mut events).await;
        let received = ev.message().expect("message").clone();
        let request_flow = received.flow.expect("TLS has flows");
        // The name is not the source address: stamped with received=127.0.0.1.
        assert!(
            received
                .message
                .top_via()
                .expect("via")
                .received()
                .is_some()
        );
        assert!(client.close_flow(client_flow));
        loop {
            let ev = next_event(&mut events).await;
            if let TransportEvent::ConnectionClosed { flow, .. } = ev.event
                && flow == request_flow
            {
                break;
            }
        }
        let sent = manager
            .send_message(&ok_response(&received.message), &received)
            .await
            .expect("reconnected, the certificate checked against the Via name");
        let dest = sent.destination.expect("a new connection");
        assert_eq!(dest.addr, client.local_addr());
        assert_eq!(dest.server_name.as_deref(), Some(WRONG_NAME));
        let got = tokio::time::timeout(WAIT, async {
            loop {
                match client_events.recv().await {
                    Some(TransportEvent::Message(m)) => return m,
                    Some(_) => {}
                    None => panic!("client events ended"),
                }
            }
        })
        .await
        .expect("the response");
        assert_eq!(got.message.status_code(), Some(200));
        manager.close().await;
    })
    .await;
}

/// RFC 3261 §18.1.1: a large request moved to TCP goes over UDP after all when the TCP
/// connection is refused (a UDP-only peer), the size rule waived for that send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_to_a_udp_only_peer_falls_back_to_udp() {
    bounded(async {
        let mut receiver = Responder::start(bind_udp(LOOPBACK).await.expect("udp peer"));
        let port = receiver.port();
        let (manager, _events) = TransportManager::new(ManagerConfig::default()).expect("m");
        manager
            .add(bind_udp(LOOPBACK).await.expect("udp"))
            .expect("add");
        manager
            .add(
                TcpTransport::bind(TcpConfig::client())
                    .await
                    .expect("tcp client"),
            )
            .expect("add");
        let big = request_with_body("MESSAGE", "UDP", "127.0.0.1:5099", 1, 2000);
        assert!(big.len() > 1300);
        let to = SendTo::uri(&format!("sip:127.0.0.1:{port}")).expect("uri");
        // Nothing listens on TCP at that port: refused, then UDP.
        let sent = manager
            .send_message(&big, to.clone())
            .await
            .expect("sent over UDP");
        assert_eq!(sent.kind, TransportKind::Udp);
        assert!(!sent.via_rewritten);
        let got = receiver.next_request().await;
        assert_eq!(got.kind, TransportKind::Udp);
        assert_eq!(got.message.top_via().expect("via").transport(), "UDP");
        assert_eq!(got.message.body(), big.body());
        // A caller that wrote TCP in the Via: the UDP datagram says UDP (RFC 3261 §18.1.1).
        let big = request_with_body("MESSAGE", "TCP", "127.0.0.1:5099", 2, 2000);
        let sent = manager.send_message(&big, to).await.expect("sent over UDP");
        assert_eq!(sent.kind, TransportKind::Udp);
        assert!(sent.via_rewritten);
        let got = receiver.next_request().await;
        assert_eq!(got.message.top_via().expect("via").transport(), "UDP");
        assert_eq!(branch(&got.message), branch(&big));
        manager.close().await;
    })
    .await;
}

/// RFC 3261 §18.2.2: a response whose Via `maddr` is a multicast group goes there with the
/// Via's `ttl` (or 1) on its destination, which the UDP transport applies (its own tests read
/// the TTL off the wire); a caller's destination keeps its TTL through the manager too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multicast_maddr_response_carries_the_via_ttl() {
    bounded(async {
        let group = std::net::Ipv4Addr::new(239, 255, 78, 1);
        let member = std::net::UdpSocket::bind((group, 0)).expect("bind the group");
        let joined = member.join_multicast_v4(&group, &std::net::Ipv4Addr::LOCALHOST);
        member.set_read_timeout(Some(WAIT)).expect("timeout");
        let to = member.local_addr().expect("addr");
        let (manager, _events) = TransportManager::new(ManagerConfig::default()).expect("m");
        manager
            .add(bind_udp(LOOPBACK).await.expect("udp"))
            .expect("add");
        let reply = SendTo::Reply {
            flow: None,
            local: None,
        };
        let via = |params: &str| format!("127.0.0.1:{};maddr={}{params}", to.port(), to.ip());
        let mut buf = [0u8; 2048];
        for (n, params, ttl) in [(1, ";ttl=5", 5), (2, "", 1)] {
            let req = options_request("sip:m@127.0.0.1", "UDP", &via(params), n);
            let sent = manager
                .send_message(&ok_response(&req), reply.clone())
                .await
                .expect("sent to the group");
            let dest = sent.destination.expect("destination");
            assert_eq!(dest.addr, to);
            assert_eq!(dest.multicast_ttl, Some(ttl), "{params:?}");
            if joined.is_ok() {
                let len = member.recv(&mut buf).expect("the group hears it");
                assert!(buf[..len].starts_with(b"SIP/2.0 200"));
            }
        }
        let req = options_request("sip:m@127.0.0.1", "UDP", "127.0.0.1:5099", 3);
        let sent = manager
            .send_message(
                &req,
                SendTo::address(
                    TransportKind::Udp,
                    Destination::new(to).with_multicast_ttl(4),
                ),
            )
            .await
            .expect("request to the group");
        assert_eq!(sent.destination.and_then(|d| d.multicast_ttl), Some(4));
        // A request URI's maddr group and ttl (RFC 3261 §19.1.1): the TTL goes with it.
        let uri = format!(
            "sip:m@example.invalid:{};maddr={};ttl=6",
            to.port(),
            to.ip()
        );
        let by_uri = options_request("sip:m@example.invalid", "UDP", "127.0.0.1:5099", 4);
        let sent = manager
            .send_message(&by_uri, SendTo::uri(&uri).expect("uri"))
            .await
            .expect("request to the group by URI");
        let dest = sent.destination.expect("destination");
        assert_eq!((dest.addr, dest.multicast_ttl), (to, Some(6)));
        if joined.is_ok() {
            // The group has the earlier request queued too: find this one by its Call-ID.
            let call_id = by_uri.call_id().expect("call-id").as_bytes().to_vec();
            let heard = (0..2).any(|_| {
                let len = member.recv(&mut buf).expect("the group hears the request");
                buf[..len].windows(call_id.len()).any(|w| w == call_id)
            });
            assert!(heard, "the request by URI reached the group");
        }
        manager.close().await;
    })
    .await;
}

/// `SendTo::Address` sends with the caller's whole destination: a WebSocket resource (a
/// server that takes only `/sip-ws` answers) and the RFC 3261 §18.1.1 waiver (a large request
/// the caller waived stays on UDP although a TCP transport is there). Both were dropped when
/// the manager rebuilt the destination from address and name.
#[cfg(feature = "ws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_destination_keeps_its_resource_and_size_waiver() {
    use sip_transport::ws::{WsConfig, WsTransport};
    bounded(async {
        let ws_server = WsTransport::bind(
            WsConfig::new(SocketAddr::from(LOOPBACK)).with_allowed_paths(["/sip-ws"]),
        )
        .expect("ws listener");
        let mut ws_receiver = Responder::start(ws_server);
        let mut udp_receiver = Responder::start(bind_udp(LOOPBACK).await.expect("udp peer"));
        let (manager, _events) = TransportManager::new(ManagerConfig::default()).expect("m");
        manager
            .add(bind_udp(LOOPBACK).await.expect("udp"))
            .expect("add");
        manager
            .add(
                TcpTransport::bind(TcpConfig::client())
                    .await
                    .expect("tcp client"),
            )
            .expect("add");
        manager
            .add(
                WsTransport::bind(WsConfig::new(SocketAddr::from(LOOPBACK)).with_listen(false))
                    .expect("ws client"),
            )
            .expect("add");

        let ws_to = Destination::new(SocketAddr::from(([127, 0, 0, 1], ws_receiver.port())))
            .with_resource("/sip-ws");
        let req = options_request("sip:x@127.0.0.1", "WS", "client.invalid", 1);
        let sent = manager
            .send_message(&req, SendTo::address(TransportKind::Ws, ws_to))
            .await
            .expect("the server takes /sip-ws");
        assert_eq!(sent.kind, TransportKind::Ws);
        assert_eq!(
            ws_receiver.next_request().await.message.call_id(),
            req.call_id()
        );

        let big = request_with_body("MESSAGE", "UDP", "127.0.0.1:5099", 2, 2000);
        let udp_to = Destination::new(SocketAddr::from(([127, 0, 0, 1], udp_receiver.port())))
            .with_udp_size_rule_waived();
        let sent = manager
            .send_message(&big, SendTo::address(TransportKind::Udp, udp_to))
            .await
            .expect("sent");
        assert_eq!(sent.kind, TransportKind::Udp, "the caller waived the rule");
        assert!(!sent.via_rewritten);
        let got = udp_receiver.next_request().await;
        assert_eq!(got.kind, TransportKind::Udp);
        assert_eq!(got.message.body(), big.body());
        assert_eq!(manager.stats().udp_to_tcp, 0);
        manager.close().await;
    })
    .await;
}

/// An extreme merged-queue depth (a public field, not only the clamping setter) must not
/// panic `TransportManager::new`: Tokio's channels panic above `Semaphore::MAX_PERMITS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_event_queue_depth_does_not_panic() {
    bounded(async {
        for depth in [0, usize::MAX] {
            let mut config = ManagerConfig::default();
            config.event_queue_depth = depth;
            let (manager, mut events) = TransportManager::new(config).expect("manager");
            let id = manager
                .add(bind_udp(LOOPBACK).await.expect("udp"))
                .expect("add");
            let to = manager.transport(id).expect("held").local_addr();
            let (uc, _uc_events) = bind_udp(LOOPBACK).await.expect("udp client");
            let req = options_request("sip:m@127.0.0.1", "UDP", &uc.local_addr().to_string(), 1);
            uc.send_message(&req, &to.into()).await.expect("send");
            let ev = next_manager_message(&mut events).await;
            assert_eq!(ev.transport, id);
            manager.close().await;
            uc.close().await;
        }
    })
    .await;
}
