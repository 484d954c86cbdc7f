//! Helpers for this crate's integration tests: a fresh test PKI, TLS transports on loopback
//! configured from it, bounded waits for events and a stateless responder. Every wait here is
//! bounded by [`WAIT`].

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::{Limits, Message, ReceivedMessage, Transport, TransportEvent};
use sip_transport_testkit::certs::{CertKey, TestPki};
use sip_transport_tls::{PemSource, TlsConfig, TlsTransport};
use tokio::sync::mpsc;

/// The bound on any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Events = mpsc::Receiver<TransportEvent>;

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// A listening config on `127.0.0.1:0` presenting `cert`, trusting `pki`'s CA as a client.
pub fn server_config(pki: &TestPki, cert: &CertKey) -> TlsConfig {
    TlsConfig::default()
        .with_bind(loopback())
        .with_certificate_files(&cert.cert_path, &cert.key_path)
        .with_server_ca_file(&pki.ca_cert_path)
}

/// A client-only config trusting `pki`'s CA.
pub fn client_config(pki: &TestPki) -> TlsConfig {
    TlsConfig::client().with_server_ca(PemSource::memory(&pki.ca_cert_pem))
}

/// The same client presenting `pki.client` when asked.
pub fn mtls_client_config(pki: &TestPki) -> TlsConfig {
    client_config(pki).with_client_certificate(
        PemSource::memory(&pki.client.cert_pem),
        PemSource::memory(&pki.client.key_pem),
    )
}

pub async fn bind(config: TlsConfig) -> (Arc<TlsTransport>, Events) {
    TlsTransport::bind(config).await.expect("bind")
}

/// A listening transport with the good server certificate and `limits`.
pub async fn server(pki: &TestPki, limits: Limits) -> (Arc<TlsTransport>, Events) {
    bind(server_config(pki, &pki.server).with_limits(limits)).await
}

/// An OPTIONS request over TLS with Via sent-by `via` and sequence `n`.
pub fn options(via: SocketAddr, n: u64) -> Message {
    sip_transport_testkit::options_request("sip:ping@localhost", "TLS", &via.to_string(), n)
}

/// Waits (bounded) for the first event `f` accepts; other events are skipped.
pub async fn wait_for<T>(rx: &mut Events, mut f: impl FnMut(TransportEvent) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.recv().await.expect("event channel open");
            if let Some(t) = f(ev) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// Waits for the next received message.
pub async fn next_message(rx: &mut Events) -> ReceivedMessage {
    wait_for(rx, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await
}

/// Waits for the next `TransportEvent::Error` and returns its error.
pub async fn next_error(rx: &mut Events) -> sip_transport_api::Error {
    wait_for(rx, |ev| match ev {
        TransportEvent::Error { error, .. } => Some(error),
        _ => None,
    })
    .await
}

/// Runs a stateless UAS on `transport`: each request is answered with 200 over its flow
/// (`send_response`); every event is forwarded to the returned receiver.
pub fn spawn_uas(
    transport: Arc<TlsTransport>,
    mut rx: Events,
) -> mpsc::UnboundedReceiver<TransportEvent> {
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let TransportEvent::Message(m) = &ev
                && m.message.is_request()
            {
                let resp = sip_transport_testkit::ok_response(&m.message);
                if let Err(e) = transport.send_response(&resp, m.flow).await {
                    panic!("responding failed: {e}");
                }
            }
            let closed = matches!(ev, TransportEvent::Closed);
            if tx.send(ev).is_err() || closed {
                break;
            }
        }
    });
    out
}

/// Waits (bounded) for the first forwarded event `f` accepts.
pub async fn wait_fwd<T>(
    rx: &mut mpsc::UnboundedReceiver<TransportEvent>,
    mut f: impl FnMut(TransportEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.recv().await.expect("forwarder open");
            if let Some(t) = f(ev) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for a forwarded event")
}
