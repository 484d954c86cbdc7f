//! Two of our transports talking over real loopback sockets: requests and responses both ways
//! over `ws` and `wss`, flow reuse, shared dials, certificate checks, and `close()`.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sip_transport_api::{
    CertificateProblem, CloseReason, Destination, Direction, Error, Transport, TransportEvent,
    TransportKind,
};
use sip_transport_testkit::ok_response;
use sip_transport_ws::{ClientTls, WsConfig, WsScheme};
use support::*;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A sends a request to B, B answers over the flow; then B sends a request back to A's
/// address, which reuses the inbound connection, and A answers.
async fn both_ways(client: WsConfig, server: WsConfig, dest_name: Option<&str>) {
    let kind = server.kind();
    let (a, mut a_ev) = bind(client);
    let (b, mut b_ev) = bind(server);
    let mut dest = Destination::new(b.local_addr());
    if let Some(n) = dest_name {
        dest = dest.with_server_name(n);
    }

    let req = ws_options(1);
    let flow_a = a
        .send_message_via(
            &req,
            &dest,
            if kind == TransportKind::Wss {
                WsScheme::Wss
            } else {
                WsScheme::Ws
            },
        )
        .await
        .expect("send");
    let got = next_message(&mut b_ev).await;
    assert_eq!(got.kind, kind);
    assert_eq!(got.message.call_id(), req.call_id());
    let flow_b = got.flow.expect("a flow");
    // RFC 3261 §18.2.1 / RFC 3581: the .invalid sent-by gets received and rport.
    let via = got.message.top_via().expect("via");
    assert_eq!(via.received(), Some(got.source.ip()));
    assert_eq!(via.rport(), Some(Some(got.source.port())));
    b.send_response(&ok_response(&got.message), got.flow)
        .await
        .expect("respond");
    let resp = next_message(&mut a_ev).await;
    assert_eq!(resp.message.status_code(), Some(200));
    assert_eq!(resp.flow, Some(flow_a));
    assert_eq!(resp.kind, kind);

    // B -> A: a send to the address A connected from reuses that inbound connection.
    let back = ws_options(2);
    let used = b
        .send_message(&back, &Destination::new(got.source))
        .await
        .expect("send back");
    assert_eq!(used, Some(flow_b));
    let at_a = next_message(&mut a_ev).await;
    assert_eq!(at_a.flow, Some(flow_a));
    a.send_response(&ok_response(&at_a.message), at_a.flow)
        .await
        .expect("respond back");
    let resp = next_message(&mut b_ev).await;
    assert_eq!(resp.message.status_code(), Some(200));
    assert_eq!(resp.message.call_id(), back.call_id());
    assert_eq!(b.stats().connections_accepted, 1);
    assert_eq!(a.stats().connections_dialed, 1);
    assert_eq!(b.flows().len(), 1);
    assert_eq!(b.flows()[0].2, Direction::Inbound);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn ws_request_response_both_ways() {
    both_ways(WsConfig::default(), WsConfig::default(), None).await;
}

#[tokio::test]
async fn wss_request_response_both_ways() {
    let cert = test_cert();
    let server = WsConfig::default().with_server_tls(cert.server.clone());
    let client = WsConfig::default().with_client_tls(ClientTls::CaPem(cert.pem.into_bytes()));
    both_ways(client, server, Some("localhost")).await;
}

#[tokio::test]
async fn wss_by_ip_and_client_only_transport() {
    let cert = test_cert();
    let (server, events) = bind(WsConfig::default().with_server_tls(cert.server.clone()));
    assert_eq!(server.kind(), TransportKind::Wss);
    let (_rx, _task) = respond(server.clone(), events);
    // A client-only wss transport: kind Wss, no listener, send_message dials wss. The name
    // verified is the IP address (the certificate has an IP SAN).
    let (client, mut c_ev) = bind(WsConfig::wss_client(ClientTls::CaPem(
        cert.pem.into_bytes(),
    )));
    assert_eq!(client.kind(), TransportKind::Wss);
    client
        .send_message(&ws_options(3), &Destination::new(server.local_addr()))
        .await
        .expect("send");
    assert_eq!(
        next_message(&mut c_ev).await.message.status_code(),
        Some(200)
    );
    client.close().await;
    server.close().await;
}

/// A wss server is a web server: its certificate's names follow HTTPS's rules, where a
/// wildcard covers one label (SIP over TLS refuses wildcards, RFC 5922 §7.2; wss does not).
#[tokio::test]
async fn wss_accepts_a_wildcard_web_certificate() {
    let cert = test_cert();
    let wild = &cert.pki.wildcard_server;
    let (server, events) =
        bind(WsConfig::default().with_server_tls(server_config(&wild.cert_pem, &wild.key_pem)));
    let (_rx, _task) = respond(server.clone(), events);
    let (client, mut c_ev) = bind(WsConfig::wss_client(ClientTls::CaPem(
        cert.pem.clone().into_bytes(),
    )));
    let dest = Destination::new(server.local_addr()).with_server_name("a.wild.sip-transport.test");
    client
        .send_message(&ws_options(5), &dest)
        .await
        .expect("a wildcard certificate serves a wss name");
    assert_eq!(
        next_message(&mut c_ev).await.message.status_code(),
        Some(200)
    );
    client.close().await;
    server.close().await;
}

#[tokio::test]
async fn wss_certificate_not_trusted_is_refused() {
    let cert = test_cert();
    let (server, _events) = bind(WsConfig::default().with_server_tls(cert.server.clone()));
    let (client, _c) = bind(WsConfig::default()); // webpki roots: our test CA is not in them
    let dest = Destination::new(server.local_addr()).with_server_name("localhost");
    let err = client
        .send_message_via(&ws_options(4), &dest, WsScheme::Wss)
        .await
        .expect_err("untrusted certificate");
    assert!(
        matches!(
            err,
            Error::TlsCertificate {
                reason: CertificateProblem::UnknownIssuer,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_recoverable(), "a bad certificate is not retried");
    // Trusted CA, wrong name: also final.
    let (named, _n) =
        bind(WsConfig::default().with_client_tls(ClientTls::CaPem(cert.pem.clone().into_bytes())));
    let wrong = Destination::new(server.local_addr()).with_server_name("elsewhere.example");
    let err = named
        .send_message_via(&ws_options(4), &wrong, WsScheme::Wss)
        .await
        .expect_err("wrong name");
    assert!(
        matches!(
            &err,
            Error::TlsCertificate {
                reason: CertificateProblem::NameMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    // A CA file that does not exist is a configuration error at bind.
    let bad = sip_transport_ws::WsTransport::bind(
        WsConfig::default().with_ca_file("/nonexistent/ca.pem"),
    );
    assert!(matches!(bad, Err(Error::InvalidConfig { .. })));
    // And the loudly named test switch accepts any certificate.
    let (insecure, mut i_ev) = bind(WsConfig::default().danger_accept_invalid_certs_for_tests());
    let (_rx, _task) = respond(server.clone(), _events);
    insecure
        .send_message_via(&ws_options(5), &dest, WsScheme::Wss)
        .await
        .expect("accepted without verification");
    assert_eq!(
        next_message(&mut i_ev).await.message.status_code(),
        Some(200)
    );
}

#[tokio::test]
async fn concurrent_sends_share_one_handshake() {
    let (server, events) = bind(WsConfig::default());
    let (_rx, _task) = respond(server.clone(), events);
    let (client, mut c_ev) = bind(WsConfig::default());
    let dest = Destination::new(server.local_addr());
    let sends = (0..20u64).map(|n| {
        let client = client.clone();
        let dest = dest.clone();
        async move { client.send_message(&ws_options(100 + n), &dest).await }
    });
    let flows = futures_util::future::join_all(sends).await;
    let first = flows[0].as_ref().expect("sent").expect("flow");
    assert!(flows.iter().all(|f| f.as_ref().ok() == Some(&Some(first))));
    for _ in 0..20 {
        assert_eq!(
            next_message(&mut c_ev).await.message.status_code(),
            Some(200)
        );
    }
    assert_eq!(client.stats().connections_dialed, 1);
    assert_eq!(server.stats().connections_accepted, 1);
}

#[tokio::test]
async fn close_sends_close_frames_after_queued_writes() {
    let (server, mut events) = bind(WsConfig::default());
    let mut ws = raw_client(server.local_addr(), Some("sip")).await;
    ws.send(text_of(&ws_options(6))).await.expect("send");
    let got = next_message(&mut events).await;
    // Queue a response, then close at once: the response must come before the Close frame.
    server
        .send_response(&ok_response(&got.message), got.flow)
        .await
        .expect("queued");
    let closing = {
        let server = server.clone();
        tokio::spawn(async move { server.close().await })
    };
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("in time");
    let text = first
        .expect("a frame")
        .expect("ok")
        .into_text()
        .expect("text");
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
    let close = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("in time");
    match close {
        Some(Ok(WsMessage::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a Close frame, got {other:?}"),
    }
    // tungstenite answers the Close; the server then finishes well within the grace period.
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.next()).await;
    tokio::time::timeout(WAIT, closing)
        .await
        .expect("close returns")
        .expect("task");
    assert!(server.is_closed());
    let mut saw_closed_conn = false;
    while let Ok(Some(ev)) = tokio::time::timeout(WAIT, events.recv()).await {
        match ev {
            TransportEvent::ConnectionClosed { reason, .. } => {
                assert_eq!(reason, CloseReason::LocalClose);
                saw_closed_conn = true;
            }
            TransportEvent::Closed => break,
            _ => {}
        }
    }
    assert!(saw_closed_conn, "ConnectionClosed before Closed");
    assert!(matches!(
        server
            .send_message(&ws_options(7), &Destination::new(server.local_addr()))
            .await,
        Err(Error::TransportClosed)
    ));
}

#[tokio::test]
async fn ws_over_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("\n*** SKIPPED: no IPv6 loopback on this machine ***\n");
        return;
    }
    let v6 = || WsConfig::default().with_bind("[::1]:0".parse().expect("addr"));
    both_ways(v6(), v6(), None).await;
}

#[tokio::test]
async fn text_frames_for_utf8_binary_for_other_bodies() {
    let (server, mut events) = bind(WsConfig::default());
    let mut ws = raw_client(server.local_addr(), Some("sip")).await;
    let flow = opened_flow(&mut events).await;
    let with_body = |body: &[u8]| {
        let mut m = format!(
            "MESSAGE sip:ua@x.invalid SIP/2.0\r\nVia: SIP/2.0/WS h.invalid;branch=z9hG4bK-b\r\n\
             Call-ID: b@x\r\nCSeq: 1 MESSAGE\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        m.extend_from_slice(body);
        sip_transport_api::Message::parse(bytes::Bytes::from(m)).expect("message")
    };
    server
        .send_on_flow(flow, &with_body("héllo".as_bytes()))
        .await
        .expect("text");
    server
        .send_on_flow(flow, &with_body(&[0xff, 0x00, 0xfe]))
        .await
        .expect("binary");
    let first = tokio::time::timeout(WAIT, ws.next()).await.expect("first");
    assert!(
        matches!(first, Some(Ok(WsMessage::Text(ref t))) if t.ends_with("héllo")),
        "{first:?}"
    );
    let second = tokio::time::timeout(WAIT, ws.next()).await.expect("second");
    match second {
        Some(Ok(WsMessage::Binary(b))) => assert!(b.ends_with(&[0xff, 0x00, 0xfe])),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

#[tokio::test]
async fn peer_that_stops_reading_fills_the_queue_then_times_out() {
    let limits = sip_transport_api::Limits::default()
        .with_write_queue_depth(4)
        .with_write_timeout(Duration::from_millis(500));
    let (server, mut events) = bind(WsConfig::default().with_limits(limits));
    // Upgraded, then never read from again.
    let _stuck = raw_client(server.local_addr(), Some("sip")).await;
    let flow = opened_flow(&mut events).await;
    let big = sip_transport_testkit::request_with_body("MESSAGE", "WS", "h.invalid", 1, 60_000);
    let mut full = None;
    for _ in 0..5_000 {
        match server.send_on_flow(flow, &big).await {
            Ok(()) => tokio::task::yield_now().await,
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let err = full.expect("the queue filled up");
    assert!(
        matches!(err, Error::WriteQueueFull { depth: 4, .. }),
        "{err}"
    );
    assert!(err.is_recoverable());
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(TransportEvent::ConnectionClosed { reason, .. }) = events.recv().await {
                return reason;
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(closed, CloseReason::WriteTimeout);
    assert!(matches!(
        server.send_on_flow(flow, &big).await,
        Err(Error::FlowClosed { .. })
    ));
}

/// A listener on `[::]` (dual stack) reports an IPv4 client as plain IPv4, in its events and
/// in the message's source, as the TCP and UDP transports do.
#[tokio::test]
async fn dual_stack_listener_reports_ipv4_clients_as_ipv4() {
    let any6: std::net::SocketAddr = "[::]:0".parse().expect("addr");
    let Ok((server, mut events)) = sip_transport_ws::WsTransport::bind(WsConfig::new(any6)) else {
        eprintln!("no IPv6 on this host; skipped");
        return;
    };
    let v4: std::net::SocketAddr = ([127, 0, 0, 1], server.local_addr().port()).into();
    // With net.ipv6.bindv6only=1 a `[::]` listener takes no IPv4 connections: nothing to test.
    let tcp = match tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(v4))
        .await
        .expect("connect in time")
    {
        Ok(tcp) => tcp,
        Err(e) => {
            eprintln!("the [::] listener takes no IPv4 connections ({e}); skipped");
            server.close().await;
            return;
        }
    };
    let req = upgrade_request(v4, false, Some("sip"));
    let (mut client, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("upgrade in time")
        .expect("upgrade");
    assert_eq!(resp.headers()["sec-websocket-protocol"], "sip");
    let peer = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(TransportEvent::ConnectionOpened { peer, .. }) = events.recv().await {
                return peer;
            }
        }
    })
    .await
    .expect("opened");
    assert!(peer.is_ipv4(), "{peer}");
    client.send(text_of(&ws_options(6))).await.expect("send");
    let m = next_message(&mut events).await;
    assert_eq!(m.source, peer);
    assert!(m.local.is_ipv4(), "{}", m.local);
    drop(client);
    server.close().await;
}

/// Every knob at its extreme: counts at `usize::MAX` and at 0 (Tokio's channels and
/// semaphores panic above `Semaphore::MAX_PERMITS`, and at 0; the write queue is one per
/// connection, made on accept and on dial), sizes at `usize::MAX`, timeouts at
/// `Duration::MAX`. Binding, a request over a dialed connection, its answer and close must
/// not panic, and a second send to the same destination still works.
#[tokio::test]
async fn extreme_limits_do_not_panic() {
    for count in [0, usize::MAX] {
        let extreme =
            sip_transport_testkit::extreme_limits(count).with_max_message_size(usize::MAX);
        let config = WsConfig::default().with_limits(extreme);
        let (server, s_ev) = bind(config.clone());
        let (_s_fwd, _s_task) = respond(server.clone(), s_ev);
        let (client, c_ev) = bind(config);
        // Drained, so close() does not wait (up to the endless grace) to report Closed.
        let (mut c_fwd, _c_task) = respond(client.clone(), c_ev);
        let dest = Destination::new(server.local_addr());
        for n in 1..=2 {
            client
                .send_message(&ws_options(n), &dest)
                .await
                .expect("send");
            let answer = wait_event(&mut c_fwd, |ev| matches!(ev, TransportEvent::Message(_)));
            let TransportEvent::Message(m) = answer.await else {
                unreachable!()
            };
            assert_eq!(m.message.status_code(), Some(200));
        }
        tokio::time::timeout(WAIT, async { tokio::join!(client.close(), server.close()) })
            .await
            .expect("closed in time");
    }
}
