//! Helpers for this crate's integration tests: a fresh test PKI, TLS transports on loopback
//! configured from it; the bounded event waits and the stateless responder come from the
//! testkit.

#![allow(dead_code, unreachable_pub)]
// Each test binary uses some of the re-exported helpers, none uses all.
#![allow(unused_imports)]

use std::net::SocketAddr;
use std::sync::Arc;

use sip_transport_api::{Limits, Message};
use sip_transport_testkit::certs::{CertKey, TestPki};
use sip_transport_tls::{PemSource, TlsConfig, TlsTransport};

pub use sip_transport_testkit::events::{
    Events, WAIT, next_error, next_message, spawn_uas, wait_for, wait_fwd,
};

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
