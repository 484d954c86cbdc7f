//! A listener that is several SIP domains (RFC 6066 §3 SNI): over real loopback handshakes,
//! each client gets the certificate for the name it asked for, verified by SIP's rules; a
//! client that asks for no name (it connects to an address) or for a name no certificate has
//! gets the default one. One client transport asks for every name in turn, so its pool must
//! also keep the connections apart by name.

mod common;

use std::sync::Arc;

use common::*;
use sip_transport_api::{CertificateProblem, Destination, Error, Transport};
use sip_transport_testkit::certs::{SERVER_SIP_DOMAIN, SERVER_SIP_URI, TestPki, WRONG_NAME};
use sip_transport_tls::PemSource;

/// What the certificate chosen for a name must present.
type Presents = dyn Fn(&sip_transport_api::PeerIdentity) -> bool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_name_gets_its_certificate_and_the_rest_the_default() {
    let pki = TestPki::generate();
    let config = server_config(&pki, &pki.server)
        .with_sni_certificate_files(
            &pki.wrong_name_server.cert_path,
            &pki.wrong_name_server.key_path,
        )
        .with_sni_certificate(
            PemSource::memory(&pki.sip_uri_server.cert_pem),
            PemSource::memory(&pki.sip_uri_server.key_pem),
        );
    let (srv, srv_rx) = bind(config).await;
    let _uas = spawn_uas(Arc::clone(&srv), srv_rx);
    let (cli, mut cli_rx) = bind(client_config(&pki)).await;
    let to = srv.local_addr();

    // (server name asked for, what the chosen certificate must present)
    let cases: [(Option<&str>, &Presents); 4] = [
        (Some(WRONG_NAME), &|id| id.dns_names == [WRONG_NAME]),
        (Some(SERVER_SIP_DOMAIN), &|id| id.uris == [SERVER_SIP_URI]),
        (Some("localhost"), &|id| id.has_dns_name("localhost")),
        // No name: SNI carries none, verified against the address.
        (None, &|id| id.has_dns_name("localhost")),
    ];
    for (n, (name, presents)) in (1..).zip(cases) {
        let dest = match name {
            Some(name) => Destination::new(to).with_server_name(name),
            None => Destination::new(to),
        };
        cli.send_message(&options(to, n), &dest)
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e:?}"));
        let answer = next_message(&mut cli_rx).await;
        assert_eq!(answer.message.status_code(), Some(200), "{name:?}");
        let id = answer
            .peer_identity
            .expect("a TLS flow has the server's identity");
        assert!(presents(&id), "{name:?}: the server presented {id}");
    }
    assert_eq!(
        cli.connection_count(),
        3,
        "one connection per certificate: the three names and the address (same \
         certificate as localhost) must not share a connection whose certificate does not \
         cover them"
    );

    // A name nobody has: the default certificate, which the client refuses for that name.
    let e = cli
        .send_message(
            &options(to, 9),
            &Destination::new(to).with_server_name("nobody.sip-transport.test"),
        )
        .await
        .expect_err("the default certificate does not cover this name");
    match e {
        Error::TlsCertificate {
            reason: CertificateProblem::NameMismatch { expected },
            ..
        } => assert_eq!(expected, "nobody.sip-transport.test"),
        other => panic!("expected a name mismatch, got {other:?}"),
    }
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_match_its_key_is_a_typed_bind_error() {
    let pki = TestPki::generate();
    let config = server_config(&pki, &pki.server).with_sni_certificate(
        PemSource::memory(&pki.wrong_name_server.cert_pem),
        PemSource::memory(&pki.sip_uri_server.key_pem),
    );
    match sip_transport_tls::TlsTransport::bind(config).await {
        Err(Error::InvalidConfig { reason }) => {
            assert!(reason.contains("SNI certificate 0"), "{reason}");
        }
        Err(other) => panic!("expected InvalidConfig, got {other:?}"),
        Ok(_) => panic!("a key that is not the certificate's must not bind"),
    }
}
