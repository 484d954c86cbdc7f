//! Connection reuse and TLS server names (RFC 5922 §7.2, RFC 5923 §6): a pooled connection is
//! reused for a destination naming a server only if the peer's certificate covers that name by
//! the rules the handshake verifies it with (no wildcards); otherwise the transport dials and
//! verifies the name itself.

mod common;

use std::sync::Arc;

use common::*;
use sip_transport_api::{
    CertificateProblem, Destination, Error, Limits, Transport, TransportEvent,
};
use sip_transport_testkit::certs::TestPki;

/// Sends request `n` from `client` to `dest` and waits for its 200 on the same flow.
async fn exchange(
    client: &Arc<sip_transport_tls::TlsTransport>,
    rx: &mut Events,
    dest: &Destination,
    n: u64,
) -> sip_transport_api::FlowId {
    let req = options(client.local_addr(), n);
    let flow = client
        .send_message(&req, dest)
        .await
        .expect("send")
        .expect("a flow");
    let resp = wait_for(rx, |ev| match ev {
        TransportEvent::Message(m) if m.message.call_id() == req.call_id() => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(resp.message.status_code(), Some(200));
    assert_eq!(resp.flow, Some(flow));
    flow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_certificate_covers_share_a_connection() {
    let pki = TestPki::generate();
    let (srv, srv_rx) = server(&pki, Limits::default()).await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (client, mut rx) = bind(client_config(&pki)).await;
    let to = srv.local_addr();

    let by_name = Destination::new(to).with_server_name("localhost");
    let flow = exchange(&client, &mut rx, &by_name, 1).await;
    // The certificate also covers 127.0.0.1 (IP SAN) and "LOCALHOST." is the same name.
    for (n, name) in [(2, "127.0.0.1"), (3, "LOCALHOST.")] {
        let dest = Destination::new(to).with_server_name(name);
        assert_eq!(exchange(&client, &mut rx, &dest, n).await, flow, "{name}");
    }
    assert_eq!(
        exchange(&client, &mut rx, &Destination::new(to), 4).await,
        flow
    );
    assert_eq!(client.stats().connections_dialed, 1);
    assert_eq!(client.connection_count(), 1);
    client.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_certificate_lacks_is_verified_on_a_new_dial() {
    let pki = TestPki::generate();
    // Covers localhost, 127.0.0.1 and ::1 only.
    let (srv, srv_rx) = server(&pki, Limits::default()).await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (client, mut rx) = bind(client_config(&pki)).await;
    let to = srv.local_addr();

    let good = Destination::new(to).with_server_name("localhost");
    let flow = exchange(&client, &mut rx, &good, 1).await;

    // Same address, a name the connection was never verified for: no reuse, a new handshake
    // that fails with the typed, final certificate error.
    let other = Destination::new(to).with_server_name("other.test");
    let e = client
        .send_message(&options(client.local_addr(), 2), &other)
        .await
        .expect_err("other.test is not covered by the certificate");
    assert!(
        matches!(
            &e,
            Error::TlsCertificate {
                reason: CertificateProblem::NameMismatch { expected },
                ..
            } if expected == "other.test"
        ),
        "{e:?}"
    );
    assert!(!e.is_recoverable());
    // Concurrent senders for the uncovered name share that refusal's dial; none reuses.
    let (r3, r4) = (
        options(client.local_addr(), 3),
        options(client.local_addr(), 4),
    );
    let (a, b) = tokio::join!(
        client.send_message(&r3, &other),
        client.send_message(&r4, &other),
    );
    assert!(matches!(a, Err(Error::TlsCertificate { .. })), "{a:?}");
    assert!(matches!(b, Err(Error::TlsCertificate { .. })), "{b:?}");

    // The first flow is untouched and still carries requests for its name.
    assert_eq!(exchange(&client, &mut rx, &good, 5).await, flow);
    assert_eq!(client.stats().connections_dialed, 1);
    assert_eq!(client.connection_count(), 1);
    client.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_name_certificate_serves_only_its_name() {
    let pki = TestPki::generate();
    let (srv, srv_rx) = bind(server_config(&pki, &pki.wrong_name_server)).await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (client, mut rx) = bind(client_config(&pki)).await;
    let to = srv.local_addr();

    let good = Destination::new(to).with_server_name(sip_transport_testkit::certs::WRONG_NAME);
    let flow = exchange(&client, &mut rx, &good, 1).await;
    for name in ["localhost", "127.0.0.1"] {
        let dest = Destination::new(to).with_server_name(name);
        let e = client
            .send_message(&options(client.local_addr(), 2), &dest)
            .await
            .expect_err("not covered");
        assert!(matches!(e, Error::TlsCertificate { .. }), "{name}: {e:?}");
        assert!(!e.is_recoverable());
    }
    assert_eq!(exchange(&client, &mut rx, &good, 3).await, flow);
    assert_eq!(client.connection_count(), 1);
    client.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_does_not_let_a_pooled_connection_serve_a_name() {
    // The certificate's only DNS name is `*.wild.sip-transport.test`, plus 127.0.0.1.
    let pki = TestPki::generate();
    let (srv, srv_rx) = bind(server_config(&pki, &pki.wildcard_server)).await;
    let _fwd = spawn_uas(Arc::clone(&srv), srv_rx);
    let (client, mut rx) = bind(client_config(&pki)).await;
    let to = srv.local_addr();

    // Verified by address: a pooled flow to the server.
    let flow = exchange(&client, &mut rx, &Destination::new(to), 1).await;
    // A name only the wildcard would cover (HTTPS rules) is not served by that flow: the
    // transport dials, and the handshake refuses the name (RFC 5922 §7.2).
    let wild = Destination::new(to).with_server_name("a.wild.sip-transport.test");
    let e = client
        .send_message(&options(client.local_addr(), 2), &wild)
        .await
        .expect_err("a wildcard covers no SIP name");
    assert!(
        matches!(
            &e,
            Error::TlsCertificate {
                reason: CertificateProblem::NameMismatch { expected },
                ..
            } if expected == "a.wild.sip-transport.test"
        ),
        "{e:?}"
    );
    assert_eq!(
        exchange(&client, &mut rx, &Destination::new(to), 3).await,
        flow
    );
    assert_eq!(client.connection_count(), 1);
    client.close().await;
    srv.close().await;
}
