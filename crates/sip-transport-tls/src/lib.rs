//! # sip-transport-tls
//!
//! SIP over TLS (RFC 3261 §26.2, RFC 5922): rustls around the TCP crate's stream machinery.
//!
//! [`TlsTransport`] is `sip_transport_tcp::StreamTransport<TlsConnector>`: the listener,
//! pooling, framing, limits, keepalive, handshake timeout and handshake concurrency cap are
//! the TCP crate's, unchanged; [`TlsConnector`] adds the handshakes and the peer's certificate
//! identity ([`PeerIdentity`](sip_transport_api::PeerIdentity) on every received message).
//!
//! - [`TlsConfig`]: bind address, limits, server certificate (PEM files, PEM in memory or a
//!   caller-made `rustls::ServerConfig`), client-certificate verification (off, optional,
//!   required), server verification (webpki-roots, a CA bundle, or — only through
//!   [`TlsConfig::dangerous_accept_any_server_certificate`] — none), an optional client
//!   certificate or a caller-made `rustls::ClientConfig`, keepalive.
//! - SNI and name verification use `Destination::server_name` (the SIP URI host), falling back
//!   to the destination's IP address (an IP subjectAltName). Names are matched by SIP's rules,
//!   not HTTPS's ([`SipServerCertVerifier`], RFC 5922 §7.1, §7.2): a `sip:` URI subjectAltName
//!   host, else a dNSName, exactly; no wildcards. A pooled connection serves another name only
//!   when its certificate passes the same check.
//! - [`map_handshake_error`] turns what rustls reports into the api's typed errors; public so
//!   that other transports running rustls over their own streams (WSS) report the same errors.
//! - The crypto provider is passed explicitly (`ring` by default, `aws-lc-rs` opt-in); this
//!   crate never installs a process-wide default.
//!
//! ```no_run
//! use sip_transport_api::{Destination, Transport, TransportEvent};
//! use sip_transport_tls::{TlsConfig, TlsTransport};
//!
//! # async fn run(request: sip_transport_api::Message) -> sip_transport_api::Result<()> {
//! let config = TlsConfig::default()
//!     .with_bind("0.0.0.0:5061".parse().expect("addr"))
//!     .with_certificate_files("/etc/sip/cert.pem", "/etc/sip/key.pem");
//! let (transport, mut events) = TlsTransport::bind(config).await?;
//! let dest = Destination::new("192.0.2.10:5061".parse().expect("addr"))
//!     .with_server_name("sip.example.com");
//! transport.send_message(&request, &dest).await?;
//! while let Some(event) = events.recv().await {
//!     if let TransportEvent::Message(m) = event {
//!         let who = m.peer_identity.as_ref().map(|id| id.fingerprint_hex());
//!         println!("{} bytes from {} ({who:?})", m.message.len(), m.source);
//!     }
//! }
//! # Ok(()) }
//! ```

mod config;
mod connector;
mod danger;
mod handshake_error;
mod identity;
mod pem;
mod provider;
mod rustls_config;
mod sip_names;
mod sni;
mod verifier;

pub use config::{
    CertifiedKeySource, ClientAuth, ServerIdentity, ServerNameRules, ServerVerification, TlsConfig,
};
pub use connector::TlsConnector;
pub use pem::PemSource;
pub use verifier::SipServerCertVerifier;

/// Maps an I/O error from a rustls stream (tokio-rustls handshake, read or write) to the api's
/// `Error::TlsCertificate` / `Error::TlsHandshake` / `Error::Io`, as this crate reports them.
pub use handshake_error::map_io_error as map_handshake_error;

/// Re-exported so callers can build their own configurations with the same rustls.
pub use rustls;

/// SIP over TLS: `TlsTransport::bind(TlsConfig)` returns the transport and its event receiver.
/// Kind [`TransportKind::Tls`](sip_transport_api::TransportKind::Tls).
pub type TlsTransport = sip_transport_tcp::StreamTransport<TlsConnector>;
