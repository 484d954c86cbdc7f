//! Certificate verification over real loopback handshakes: mutual TLS accepted with the right
//! client certificate and refused without one (or with one from an unknown CA); servers with
//! a wrong name, an expired certificate or an unknown CA refused; server names matched by SIP's
//! rules (RFC 5922 §7.1, §7.2: `sip:` URI identities, no wildcards), not HTTPS's. Every refusal
//! is a typed, non-recoverable `Error::TlsCertificate`, on the side that refused and, where TLS
//! tells it, on the side that was refused.

mod common;

use std::sync::Arc;

use common::*;
use sip_transport_api::{CertificateProblem, Destination, Error, Transport, TransportEvent};
use sip_transport_testkit::certs::{CertKey, SERVER_SIP_DOMAIN, TestPki, WRONG_NAME};
use sip_transport_tls::{ClientAuth, PemSource, TlsConfig};

fn problem(e: &Error) -> &CertificateProblem {
    match e {
        Error::TlsCertificate { reason, .. } => reason,
        other => panic!("expected Error::TlsCertificate, got {other:?}"),
    }
}

/// Dials a server presenting `cert` as `name`; returns the client's error and the server's.
async fn refused_server(cert: fn(&TestPki) -> &CertKey, name: &str) -> (Error, Error) {
    let pki = TestPki::generate();
    let (srv, mut srv_rx) = bind(server_config(&pki, cert(&pki))).await;
    let (cli, _cli_rx) = bind(client_config(&pki)).await;
    let dest = Destination::new(srv.local_addr()).with_server_name(name);
    let e = cli
        .send_message(&options(srv.local_addr(), 1), &dest)
        .await
        .expect_err("must be refused");
    // The server hears about it through the alert the client sends.
    let server_side = next_error(&mut srv_rx).await;
    assert_eq!(srv.stats().connections_refused, 1);
    assert_eq!(srv.connection_count(), 0);
    assert_eq!(cli.connection_count(), 0);
    cli.close().await;
    srv.close().await;
    (e, server_side)
}

fn assert_rejected_by_peer(e: &Error) {
    assert!(
        matches!(problem(e), CertificateProblem::RejectedByPeer { .. }),
        "{e:?}"
    );
    assert!(!e.is_recoverable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_name_is_refused() {
    let (e, server_side) = refused_server(|p| &p.wrong_name_server, "localhost").await;
    assert_eq!(
        problem(&e),
        &CertificateProblem::NameMismatch {
            expected: "localhost".into()
        }
    );
    assert!(!e.is_recoverable());
    assert_rejected_by_peer(&server_side);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ip_address_is_refused() {
    // No server name: verification against the address, which the wrong-name cert lacks.
    let pki = TestPki::generate();
    let (srv, _srv_rx) = bind(server_config(&pki, &pki.wrong_name_server)).await;
    let (cli, _cli_rx) = bind(client_config(&pki)).await;
    let e = cli
        .send_message(
            &options(srv.local_addr(), 1),
            &Destination::new(srv.local_addr()),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        problem(&e),
        &CertificateProblem::NameMismatch {
            expected: "127.0.0.1".into()
        }
    );
    // The right name on the same server works.
    let ok = cli
        .send_message(
            &options(srv.local_addr(), 2),
            &Destination::new(srv.local_addr()).with_server_name(WRONG_NAME),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_certificate_is_refused() {
    // HTTPS would accept `*.wild.sip-transport.test` for this name; RFC 5922 §7.2 forbids
    // matching any form of wildcard.
    let (e, server_side) =
        refused_server(|p| &p.wildcard_server, "a.wild.sip-transport.test").await;
    assert_eq!(
        problem(&e),
        &CertificateProblem::NameMismatch {
            expected: "a.wild.sip-transport.test".into()
        }
    );
    assert!(!e.is_recoverable());
    assert_rejected_by_peer(&server_side);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sip_uri_certificate_is_accepted_for_its_domain() {
    // The certificate's only subjectAltName is `URI:sip:uri.sip-transport.test`: its SIP
    // domain identity (RFC 5922 §7.1), which HTTPS name rules do not know.
    let pki = TestPki::generate();
    let (srv, srv_rx) = bind(server_config(&pki, &pki.sip_uri_server)).await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (cli, mut cli_rx) = bind(client_config(&pki)).await;
    let to = srv.local_addr();
    // Matched as a DNS name: case-insensitive, trailing dot ignored.
    for (n, name) in [(1, SERVER_SIP_DOMAIN), (2, "URI.sip-transport.TEST.")] {
        cli.send_message(
            &options(to, n),
            &Destination::new(to).with_server_name(name),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            next_message(&mut cli_rx).await.message.status_code(),
            Some(200),
            "{name}"
        );
    }
    // Other names and the bare address are not identities of this certificate.
    let (other, _other_rx) = bind(client_config(&pki)).await;
    for (n, dest) in [
        (
            3,
            Destination::new(to).with_server_name("sip-transport.test"),
        ),
        (4, Destination::new(to)),
    ] {
        let e = other
            .send_message(&options(to, n), &dest)
            .await
            .expect_err("not an identity of the certificate");
        assert!(
            matches!(problem(&e), CertificateProblem::NameMismatch { .. }),
            "{dest:?}: {e:?}"
        );
    }
    other.close().await;
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_is_refused() {
    let (e, server_side) = refused_server(|p| &p.expired_server, "localhost").await;
    assert_eq!(problem(&e), &CertificateProblem::Expired);
    assert!(!e.is_recoverable());
    assert_rejected_by_peer(&server_side);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_is_refused() {
    let (e, server_side) = refused_server(|p| &p.untrusted_server, "localhost").await;
    assert_eq!(problem(&e), &CertificateProblem::UnknownIssuer);
    assert!(!e.is_recoverable());
    assert_rejected_by_peer(&server_side);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webpki_roots_do_not_trust_a_private_ca() {
    // The default verification (Mozilla roots) refuses our test CA.
    let pki = TestPki::generate();
    let (srv, _srv_rx) = bind(server_config(&pki, &pki.server)).await;
    let (cli, _cli_rx) = bind(TlsConfig::client()).await;
    let e = cli
        .send_message(
            &options(srv.local_addr(), 1),
            &Destination::new(srv.local_addr()).with_server_name("localhost"),
        )
        .await
        .expect_err("refused");
    assert_eq!(problem(&e), &CertificateProblem::UnknownIssuer);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_mode_accepts_anything() {
    let pki = TestPki::generate();
    let (srv, srv_rx) = bind(server_config(&pki, &pki.expired_server)).await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (cli, mut cli_rx) =
        bind(TlsConfig::client().dangerous_accept_any_server_certificate()).await;
    cli.send_message(
        &options(srv.local_addr(), 1),
        &Destination::new(srv.local_addr()).with_server_name("anything.invalid"),
    )
    .await
    .expect("no verification");
    assert_eq!(
        next_message(&mut cli_rx).await.message.status_code(),
        Some(200)
    );
    cli.close().await;
    srv.close().await;
}

fn mtls_server(pki: &TestPki, auth: fn(PemSource) -> ClientAuth) -> TlsConfig {
    server_config(pki, &pki.server).with_client_auth(auth(PemSource::file(&pki.ca_cert_path)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_accepts_the_right_client_certificate() {
    let pki = TestPki::generate();
    let (srv, srv_rx) = bind(mtls_server(&pki, |ca| ClientAuth::Required { ca })).await;
    let mut fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (cli, mut cli_rx) = bind(mtls_client_config(&pki)).await;
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
    let m = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert!(m.peer_identity.is_some());
    assert_eq!(srv.stats().connections_refused, 0);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_certificate() {
    let pki = TestPki::generate();
    let (srv, mut srv_rx) = bind(mtls_server(&pki, |ca| ClientAuth::Required { ca })).await;
    let (cli, mut cli_rx) = bind(client_config(&pki)).await;
    // TLS 1.3 finishes the client's side before the server has judged the client, so the
    // send may be accepted (or fail with FlowClosed when the alert closed the flow first);
    // the refusal itself arrives as the server's alert, reported as an Error event.
    let sent = cli
        .send_message(
            &options(srv.local_addr(), 1),
            &Destination::new(srv.local_addr()),
        )
        .await;
    let server_side = next_error(&mut srv_rx).await;
    assert_eq!(
        problem(&server_side),
        &CertificateProblem::ClientCertificateRequired
    );
    assert!(!server_side.is_recoverable());
    if let Err(e) = &sent {
        assert!(
            matches!(e, Error::FlowClosed { .. } | Error::TlsCertificate { .. }),
            "{e:?}"
        );
    }
    let client_side = next_error(&mut cli_rx).await;
    match problem(&client_side) {
        CertificateProblem::RejectedByPeer { alert } => {
            assert_eq!(alert, "CertificateRequired", "{client_side}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!client_side.is_recoverable());
    // At least one refusal (a send that raced the alert redials once).
    assert!(srv.stats().connections_refused >= 1);
    assert_eq!(srv.stats().messages_received, 0);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_certificate_from_an_unknown_ca() {
    let pki = TestPki::generate();
    let (srv, mut srv_rx) = bind(mtls_server(&pki, |ca| ClientAuth::Required { ca })).await;
    // A client presenting a client certificate from another PKI, whose CA the server does
    // not trust.
    let other = TestPki::generate();
    let (cli, _cli_rx) = bind(client_config(&pki).with_client_certificate(
        PemSource::memory(&other.client.cert_pem),
        PemSource::memory(&other.client.key_pem),
    ))
    .await;
    let _ = cli
        .send_message(
            &options(srv.local_addr(), 1),
            &Destination::new(srv.local_addr()),
        )
        .await;
    let server_side = next_error(&mut srv_rx).await;
    assert_eq!(problem(&server_side), &CertificateProblem::UnknownIssuer);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_auth_accepts_both() {
    let pki = TestPki::generate();
    let (srv, srv_rx) = bind(mtls_server(&pki, |ca| ClientAuth::Optional { ca })).await;
    let mut fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    for (n, cfg) in [(1, client_config(&pki)), (2, mtls_client_config(&pki))] {
        let (cli, mut cli_rx) = bind(cfg).await;
        cli.send_message(
            &options(srv.local_addr(), n),
            &Destination::new(srv.local_addr()),
        )
        .await
        .expect("send");
        assert_eq!(
            next_message(&mut cli_rx).await.message.status_code(),
            Some(200)
        );
        let m = wait_fwd(&mut fwd, |ev| match ev {
            TransportEvent::Message(m) => Some(m),
            _ => None,
        })
        .await;
        assert_eq!(
            m.peer_identity.is_some(),
            n == 2,
            "identity only with a cert"
        );
        cli.close().await;
    }
    srv.close().await;
}
