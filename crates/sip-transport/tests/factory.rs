//! `TransportFactory` over real sockets on loopback: for each transport a URI gives a client
//! of that kind, bound for the host's family, that reaches one of our listeners and gets the
//! 200 back; `sips:` is TLS or WSS and never downgrades.

mod support;

#[allow(unused_imports)]
use sip_transport::{
    CreatedTransport, Destination, Error, TargetUri, Transport, TransportFactory, TransportKind,
};
#[allow(unused_imports)]
use support::{Responder, bounded, next_message};

/// Sends an OPTIONS from `client` to `dest` and waits for the 200 on the client's events.
#[allow(dead_code)]
async fn round_trip(client: &mut CreatedTransport, dest: &Destination, server: &mut Responder) {
    let kind = client.kind();
    let req = sip_transport_testkit::options_request(
        "sip:x@example.invalid",
        kind.via_token(),
        "client.invalid",
        7,
    );
    client
        .transport
        .send_message(&req, dest)
        .await
        .unwrap_or_else(|e| panic!("{kind} send to {dest}: {e}"));
    let got = server.next_request().await;
    assert_eq!(got.kind, kind);
    let resp = next_message(&mut client.events).await;
    assert_eq!(resp.message.status_code(), Some(200), "{kind}");
}

#[test]
fn sips_never_downgrades() {
    for uri in [
        "sips:127.0.0.1;transport=udp",
        "sips:example.com;transport=UDP",
    ] {
        assert!(
            matches!(TargetUri::parse(uri), Err(Error::InvalidUri { .. })),
            "{uri}"
        );
    }
    for uri in [
        "sips:127.0.0.1",
        "sips:example.com;transport=tcp",
        "sips:[::1]:5061;transport=tls",
        "sips:example.com;transport=ws",
        "sips:example.com;transport=wss",
    ] {
        let k =
            TransportFactory::kind_for_uri(&TargetUri::parse(uri).expect("valid")).expect("a kind");
        assert!(k.is_secure(), "{uri} gave {k}");
    }
}

#[tokio::test]
async fn invalid_uris_and_disabled_kinds_are_typed() {
    let f = TransportFactory::new();
    let e = f
        .create_from_uri("sips:127.0.0.1;transport=udp")
        .await
        .expect_err("downgrade");
    assert!(matches!(e, Error::InvalidUri { .. }) && !e.is_recoverable());
    let e = f.create_from_uri("mailto:a@b").await.expect_err("not SIP");
    assert!(matches!(e, Error::InvalidUri { .. }));
    for (uri, kind) in [
        ("sip:127.0.0.1", TransportKind::Udp),
        ("sip:127.0.0.1;transport=tcp", TransportKind::Tcp),
        ("sips:127.0.0.1", TransportKind::Tls),
        ("sip:127.0.0.1;transport=ws", TransportKind::Ws),
        ("sips:127.0.0.1;transport=ws", TransportKind::Wss),
    ] {
        match f.create_from_uri(uri).await {
            Ok(c) => {
                assert!(TransportFactory::is_enabled(kind));
                assert_eq!(c.kind(), kind, "{uri}");
                assert!(!c.transport.is_closed());
            }
            Err(e) => {
                assert!(!TransportFactory::is_enabled(kind), "{uri}: {e}");
                assert!(matches!(e, Error::TransportUnavailable { kind: k } if k == kind));
            }
        }
    }
}

#[cfg(feature = "udp")]
#[tokio::test]
async fn udp_ipv4_ipv6_and_names() {
    bounded(async {
        let f = TransportFactory::new();
        for (listen, uri_host) in [("127.0.0.1:0", "127.0.0.1"), ("[::1]:0", "[::1]")] {
            let addr: std::net::SocketAddr = listen.parse().expect("addr");
            let mut server = Responder::start(sip_transport::bind_udp(addr).await.expect("bind"));
            let uri = format!("sip:alice@{uri_host}:{}", server.port());
            let mut c = f.create_from_uri(&uri).await.expect("client");
            assert_eq!(c.kind(), TransportKind::Udp);
            let local = c.transport.local_addr();
            assert!(local.ip().is_unspecified() && local.port() != 0, "{local}");
            assert_eq!(
                local.is_ipv6(),
                addr.is_ipv6(),
                "bound for the host's family"
            );
            let dest = c.destination().expect("numeric");
            assert_eq!(dest.addr.port(), server.port());
            round_trip(&mut c, &dest, &mut server).await;
        }
        // A name: family unknown, so a dual-stack socket (or IPv4 without IPv6); no destination.
        let c = f
            .create_from_uri("sip:alice@example.com")
            .await
            .expect("client");
        assert_eq!(c.kind(), TransportKind::Udp);
        assert!(c.destination().is_none());
        // The default port when the URI has none.
        let c = f.create_from_uri("sip:192.0.2.1").await.expect("client");
        assert_eq!(c.destination().expect("numeric").addr.port(), 5060);
    })
    .await;
}

#[cfg(feature = "tcp")]
#[tokio::test]
async fn tcp_ipv4_and_ipv6() {
    bounded(async {
        let f = TransportFactory::new();
        for listen in ["127.0.0.1:0", "[::1]:0"] {
            let addr: std::net::SocketAddr = listen.parse().expect("addr");
            let mut server = Responder::start(sip_transport::bind_tcp(addr).await.expect("bind"));
            let host = if addr.is_ipv6() { "[::1]" } else { "127.0.0.1" };
            let uri = format!("sip:{host}:{};transport=TCP", server.port());
            let mut c = f.create_from_uri(&uri).await.expect("client");
            assert_eq!(c.kind(), TransportKind::Tcp);
            let dest = c.destination().expect("numeric");
            round_trip(&mut c, &dest, &mut server).await;
        }
    })
    .await;
}

/// The factory's DSCP mark and TCP keepalive reach the sockets its clients dial (read back
/// through `ss`); the listener, bound with the defaults, shows neither mark nor short timer.
#[cfg(all(feature = "tcp", feature = "ws", target_os = "linux"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dscp_and_tcp_keepalive_reach_dialed_sockets() {
    use std::time::Duration;

    use sip_transport::Dscp;
    use sip_transport::tcp::TcpKeepaliveConfig;
    use sip_transport_testkit::ss::{Expected, check_stream_sockets};

    let f = TransportFactory::new()
        .with_dscp(Some(Dscp::CS3))
        .with_tcp_keepalive(Some(
            TcpKeepaliveConfig::new().with_idle(Duration::from_secs(30)),
        ));
    let os_idle = sip_transport_testkit::ss::os_keepalive_idle_secs();
    let server_side = Expected {
        tos: 0,
        keepalive_at_most: Some(Duration::from_secs(os_idle)),
    };
    let dialed = Expected {
        tos: 0x60,
        keepalive_at_most: Some(Duration::from_secs(30)),
    };
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let tcp = sip_transport::bind_tcp(addr).await.expect("bind");
    let ws = sip_transport::bind_ws(addr).await.expect("bind");
    for (bound, uri) in [
        (tcp.0.local_addr(), "sip:127.0.0.1:{};transport=tcp"),
        (ws.0.local_addr(), "sip:127.0.0.1:{};transport=ws"),
    ] {
        let uri = uri.replace("{}", &bound.port().to_string());
        let c = f.create_from_uri(&uri).await.expect("client");
        let dest = c.destination().expect("numeric");
        let req = sip_transport_testkit::options_request(
            "sip:x@example.invalid",
            c.kind().via_token(),
            "client.invalid",
            1,
        );
        c.transport.send_message(&req, &dest).await.expect("send");
        check_stream_sockets(bound, server_side, server_side, dialed);
        c.transport.close().await;
    }
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_by_ip_and_by_name_sips_and_transport_tls() {
    use sip_transport::tls::TlsConfig;
    bounded(async {
        let pki = sip_transport_testkit::certs::TestPki::generate();
        let mut server = Responder::start(
            sip_transport::bind_tls(
                ([127, 0, 0, 1], 0),
                &pki.server.cert_path,
                &pki.server.key_path,
            )
            .await
            .expect("bind tls"),
        );
        let port = server.port();
        let f = TransportFactory::new()
            .with_tls_client(TlsConfig::client().with_server_ca_file(&pki.ca_cert_path));
        for uri in [
            format!("sips:127.0.0.1:{port}"),
            format!("sips:127.0.0.1:{port};transport=tcp"),
            format!("sip:127.0.0.1:{port};transport=tls"),
        ] {
            let mut c = f.create_from_uri(&uri).await.expect("client");
            assert_eq!(c.kind(), TransportKind::Tls, "{uri}");
            let dest = c.destination().expect("numeric");
            round_trip(&mut c, &dest, &mut server).await;
        }
        // A name: the certificate is checked against it (RFC 5922 §4).
        let mut c = f
            .create_from_uri(&format!("sips:localhost:{port}"))
            .await
            .expect("client");
        assert!(c.destination().is_none());
        let dest = Destination::new(([127, 0, 0, 1], port).into()).with_server_name("localhost");
        round_trip(&mut c, &dest, &mut server).await;
    })
    .await;
}

#[cfg(feature = "ws")]
#[tokio::test]
async fn ws_plain() {
    bounded(async {
        let mut server = Responder::start(
            sip_transport::bind_ws(([127, 0, 0, 1], 0))
                .await
                .expect("bind ws"),
        );
        let f = TransportFactory::new();
        let uri = format!("sip:127.0.0.1:{};transport=ws", server.port());
        let mut c = f.create_from_uri(&uri).await.expect("client");
        assert_eq!(c.kind(), TransportKind::Ws);
        let dest = c.destination().expect("numeric");
        round_trip(&mut c, &dest, &mut server).await;
    })
    .await;
}

#[cfg(all(feature = "ws", feature = "tls"))]
#[tokio::test]
async fn wss_from_sips_ws_and_sip_wss() {
    use sip_transport::ws::WsConfig;
    bounded(async {
        let pki = sip_transport_testkit::certs::TestPki::generate();
        let mut server = Responder::start(
            sip_transport::bind_wss(
                ([127, 0, 0, 1], 0),
                &pki.server.cert_path,
                &pki.server.key_path,
            )
            .await
            .expect("bind wss"),
        );
        assert_eq!(server.transport.kind(), TransportKind::Wss);
        let port = server.port();
        let f = TransportFactory::new()
            .with_ws_client(WsConfig::default().with_ca_file(&pki.ca_cert_path));
        for uri in [
            format!("sips:127.0.0.1:{port};transport=ws"),
            format!("sip:127.0.0.1:{port};transport=wss"),
        ] {
            let mut c = f.create_from_uri(&uri).await.expect("client");
            assert_eq!(c.kind(), TransportKind::Wss, "{uri}");
            let dest = c.destination().expect("numeric");
            round_trip(&mut c, &dest, &mut server).await;
        }
    })
    .await;
}
