//! SIP over TLS between two of our transports on loopback: request/response both ways (with
//! the IP-address and the DNS-name server identity), 1,000 pipelined messages on one
//! connection, keepalive ping/pong, and the peer's certificate identity on received messages.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use sip_transport_api::{Destination, Direction, Limits, Transport, TransportEvent, TransportKind};
use sip_transport_testkit::certs::{CLIENT_DNS_NAME, CLIENT_SIP_URI, TestPki};
use sip_transport_tls::{PemSource, TlsConfig, rustls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_both_ways() {
    let pki = TestPki::generate();
    let (a, a_rx) = server(&pki, Limits::default()).await;
    let (b, b_rx) = server(&pki, Limits::default()).await;
    assert_eq!(a.kind(), TransportKind::Tls);
    let mut a_fwd = spawn_uas(Arc::clone(&a), a_rx);
    let mut b_fwd = spawn_uas(Arc::clone(&b), b_rx);

    // A -> B by address only: B's certificate is verified against IP SAN 127.0.0.1.
    let req = options(a.local_addr(), 1);
    let flow = a
        .send_message(&req, &Destination::new(b.local_addr()))
        .await
        .expect("send")
        .expect("a flow");
    let got = wait_fwd(&mut b_fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got.message.call_id(), req.call_id());
    assert_eq!(got.kind, TransportKind::Tls);
    assert!(got.peer_identity.is_none(), "A sent no client certificate");
    let via = got.message.top_via().expect("via");
    assert_eq!(via.rport(), Some(Some(got.source.port())), "RFC 3581 rport");
    let resp = wait_fwd(&mut a_fwd, |ev| match ev {
        TransportEvent::Message(m) if m.message.is_response() => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(resp.flow, Some(flow), "response came back on our flow");
    assert_eq!(resp.message.status_code(), Some(200));
    let server_id = resp
        .peer_identity
        .expect("server identity on the client side");
    assert_eq!(server_id.dns_names, vec!["localhost".to_owned()]);
    assert!(
        server_id
            .ip_addresses
            .contains(&IpAddr::from([127, 0, 0, 1]))
    );

    // B -> A by name: SNI and verification use "localhost".
    let req = options(b.local_addr(), 2);
    let dest = Destination::new(a.local_addr()).with_server_name("localhost");
    b.send_message(&req, &dest).await.expect("send back");
    let resp = wait_fwd(&mut b_fwd, |ev| match ev {
        TransportEvent::Message(m) if m.message.is_response() => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(resp.message.call_id(), req.call_id());
    assert_eq!(a.stats().connections_dialed, 1);
    assert_eq!(a.stats().connections_accepted, 1);
    a.close().await;
    b.close().await;
    assert_eq!(a.task_count(), 0);
    assert_eq!(b.task_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback() {
    let pki = TestPki::generate();
    let Ok((srv, srv_rx)) = sip_transport_tls::TlsTransport::bind(
        server_config(&pki, &pki.server).with_bind("[::1]:0".parse().expect("addr")),
    )
    .await
    else {
        eprintln!("*** SKIPPED: no IPv6 loopback on this machine ***");
        return;
    };
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (cli, mut cli_rx) = bind(client_config(&pki)).await;
    let req = options(srv.local_addr(), 3);
    // By address: verified against IP SAN ::1.
    cli.send_message(&req, &Destination::new(srv.local_addr()))
        .await
        .expect("send over IPv6");
    let resp = next_message(&mut cli_rx).await;
    assert_eq!(resp.message.status_code(), Some(200));
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_pipelined_on_one_connection() {
    const N: u64 = 1_000;
    let pki = TestPki::generate();
    let (srv, srv_rx) = server(&pki, Limits::default()).await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (cli, mut cli_rx) = bind(client_config(&pki)).await;
    let dest = Destination::new(srv.local_addr()).with_server_name("localhost");
    let mut flows = std::collections::HashSet::new();
    for n in 1..=N {
        let flow = cli
            .send_message(&options(srv.local_addr(), n), &dest)
            .await
            .expect("queued")
            .expect("flow");
        flows.insert(flow);
    }
    assert_eq!(flows.len(), 1, "every message on one connection");
    let mut seen = std::collections::HashSet::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while seen.len() < N as usize {
            match cli_rx.recv().await.expect("events") {
                TransportEvent::Message(m) => {
                    assert_eq!(m.message.status_code(), Some(200));
                    assert!(flows.contains(&m.flow.expect("flow")));
                    seen.insert(m.message.cseq().expect("cseq").seq);
                }
                TransportEvent::Error { error, .. } => panic!("error: {error}"),
                _ => {}
            }
        }
    })
    .await
    .expect("1000 responses in time");
    assert_eq!(cli.stats().connections_dialed, 1);
    assert_eq!(srv.stats().messages_received, N);
    assert_eq!(srv.stats().messages_sent, N);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_ping_pong_over_tls() {
    let pki = TestPki::generate();
    let (srv, mut srv_rx) = server(&pki, Limits::default()).await;
    let (cli, mut cli_rx) =
        bind(client_config(&pki).with_keepalive_interval(Some(Duration::from_millis(200)))).await;
    let flow = cli
        .connect(&Destination::new(srv.local_addr()))
        .await
        .expect("connect");
    // Two pongs: the keepalive keeps going.
    for _ in 0..2 {
        let pong_flow = wait_for(&mut cli_rx, |ev| match ev {
            TransportEvent::Pong { flow, .. } => Some(flow),
            _ => None,
        })
        .await;
        assert_eq!(pong_flow, flow);
    }
    assert!(srv.stats().keepalives_received >= 2, "server saw the pings");
    assert!(cli.stats().keepalives_received >= 2, "client saw the pongs");
    let dir = wait_for(&mut srv_rx, |ev| match ev {
        TransportEvent::ConnectionOpened { direction, .. } => Some(direction),
        _ => None,
    })
    .await;
    assert_eq!(dir, Direction::Inbound);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_identity_with_mutual_tls() {
    let pki = TestPki::generate();
    let (srv, mut srv_rx) = bind(
        server_config(&pki, &pki.server)
            .with_required_client_certificates(PemSource::file(&pki.ca_cert_path)),
    )
    .await;
    let (cli, mut cli_rx) = bind(mtls_client_config(&pki)).await;
    let req = options(srv.local_addr(), 1);
    cli.send_message(&req, &Destination::new(srv.local_addr()))
        .await
        .expect("send");
    let m = next_message(&mut srv_rx).await;
    let id = m.peer_identity.clone().expect("client identity");
    let want: [u8; 32] = Sha256::digest(&pki.client.cert_der).into();
    assert_eq!(id.fingerprint_sha256, want);
    assert_eq!(id.fingerprint_hex().len(), 64);
    assert_eq!(id.dns_names, vec![CLIENT_DNS_NAME.to_owned()]);
    assert_eq!(id.uris, vec![CLIENT_SIP_URI.to_owned()]);
    assert!(id.has_dns_name(CLIENT_DNS_NAME));

    // The same identity (same Arc) on every message of the flow.
    srv.send_response(&sip_transport_testkit::ok_response(&m.message), m.flow)
        .await
        .expect("respond");
    let resp = next_message(&mut cli_rx).await;
    let server_id = resp.peer_identity.expect("server identity");
    let want: [u8; 32] = Sha256::digest(&pki.server.cert_der).into();
    assert_eq!(server_id.fingerprint_sha256, want);
    cli.send_message(
        &options(srv.local_addr(), 2),
        &Destination::new(srv.local_addr()),
    )
    .await
    .expect("second");
    let m2 = next_message(&mut srv_rx).await;
    assert_eq!(m2.flow, m.flow);
    assert!(Arc::ptr_eq(
        m2.peer_identity.as_ref().expect("id"),
        m.peer_identity.as_ref().expect("id")
    ));
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_made_rustls_configs() {
    let pki = TestPki::generate();
    // Build with our helpers, then hand them back as caller-made configurations.
    let server = server_config(&pki, &pki.server)
        .build_server_config()
        .expect("server config")
        .expect("has identity");
    let client = client_config(&pki).build_client_config().expect("client");
    let (srv, srv_rx) = bind(
        TlsConfig::default()
            .with_bind(loopback())
            .with_server_config(server),
    )
    .await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (cli, mut cli_rx) = bind(TlsConfig::client().with_client_config(client)).await;
    cli.send_message(
        &options(srv.local_addr(), 1),
        &Destination::new(srv.local_addr()),
    )
    .await
    .expect("send");
    assert_eq!(
        next_message(&mut cli_rx).await.message.status_code(),
        Some(200)
    );
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_made_client_config_keeps_its_own_verifier() {
    // A caller-made ClientConfig replaces ours, verifier included: rustls's own webpki
    // verifier here, whose HTTPS name rules accept a wildcard that ours (RFC 5922) refuses.
    let pki = TestPki::generate();
    let (srv, srv_rx) = bind(server_config(&pki, &pki.wildcard_server)).await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_cert_pem.as_bytes()).expect("CA PEM"))
        .expect("CA");
    let provider = TlsConfig::client().provider().expect("provider");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (cli, mut cli_rx) = bind(TlsConfig::client().with_client_config(Arc::new(client))).await;
    cli.send_message(
        &options(srv.local_addr(), 1),
        &Destination::new(srv.local_addr()).with_server_name("a.wild.sip-transport.test"),
    )
    .await
    .expect("the caller's verifier accepts the wildcard");
    assert_eq!(
        next_message(&mut cli_rx).await.message.status_code(),
        Some(200)
    );
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_without_certificate_is_a_config_error() {
    let e = sip_transport_tls::TlsTransport::bind(TlsConfig::default().with_bind(loopback()))
        .await
        .expect_err("no certificate");
    assert!(
        matches!(e, sip_transport_api::Error::InvalidConfig { .. }),
        "{e:?}"
    );
    let e = sip_transport_tls::TlsTransport::bind(
        TlsConfig::default()
            .with_bind(loopback())
            .with_certificate_files("/nonexistent/cert.pem", "/nonexistent/key.pem"),
    )
    .await
    .expect_err("missing files");
    assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
}
