//! `TlsConfig`: everything a TLS transport needs — the shared stream settings (bind address,
//! limits, keepalive) plus who we are (server certificate, optional client certificate), whom
//! we trust (server verification, client-certificate verification) and the crypto provider.
//!
//! Only settings live here. Files are read, and rustls configurations built, when the
//! transport is bound ([`TlsConfig::build_server_config`], [`TlsConfig::build_client_config`]).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use sip_transport_api::{Dscp, Limits, Result};
use sip_transport_tcp::{StreamConfig, StreamTransportConfig, TcpKeepaliveConfig};

use crate::{PemSource, TlsConnector};

/// A certificate chain (leaf first) and its private key, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedKeySource {
    /// The chain, leaf first.
    pub chain: PemSource,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PemSource,
}

/// How the listener identifies itself.
#[derive(Clone)]
pub enum ServerIdentity {
    /// A certificate chain and key, loaded at bind.
    Certificate(CertifiedKeySource),
    /// A complete rustls server configuration made by the caller (ALPN, resumption, key logging,
    /// certificate resolvers, ...). Client-certificate settings of `TlsConfig` do not apply.
    Config(Arc<rustls::ServerConfig>),
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerIdentity::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
            ServerIdentity::Config(_) => f.write_str("Config(..)"),
        }
    }
}

/// Whether the listener asks connecting clients for a certificate (mutual TLS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for (the default; ordinary SIP over TLS).
    #[default]
    Off,
    /// A certificate is asked for; clients without one are accepted, clients with one must
    /// present a certificate issued by a CA in the bundle.
    Optional {
        /// Trusted CAs for client certificates.
        ca: PemSource,
    },
    /// Every client must present a certificate issued by a CA in the bundle.
    Required {
        /// Trusted CAs for client certificates.
        ca: PemSource,
    },
}

/// Which rules a verified server certificate's names follow (for [`ServerVerification`]'s
/// verifying choices).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerNameRules {
    /// SIP's (RFC 5922 §7.1, §7.2): `sip:` URI identities first, DNS names otherwise, never a
    /// wildcard ([`SipServerCertVerifier`](crate::SipServerCertVerifier)). The default, for
    /// SIP over TLS.
    #[default]
    Sip,
    /// HTTPS's (RFC 6125 as webpki applies it: DNS and IP names, `*.` wildcards): for secure
    /// WebSocket (RFC 7118 over RFC 6455), whose servers are web servers with web certificates.
    Https,
}

/// How outbound connections verify the server's certificate. Both verifying choices check the
/// server name by [`TlsConfig::server_name_rules`]: SIP's by default
/// ([`SipServerCertVerifier`](crate::SipServerCertVerifier), RFC 5922 §7.1, §7.2: no
/// wildcards, `sip:` URI identities), not HTTPS's.
#[derive(Clone, Default)]
pub enum ServerVerification {
    /// Against the Mozilla root program (`webpki-roots`). The default.
    #[default]
    WebPkiRoots,
    /// Against the CAs in this PEM bundle only.
    CaBundle(PemSource),
    /// No verification at all: any certificate, any name. Only through
    /// [`TlsConfig::dangerous_accept_any_server_certificate`]; never in production.
    DangerousAcceptAny,
    /// A complete rustls client configuration made by the caller, its verifier included
    /// (wrap a `WebPkiServerVerifier` in a [`SipServerCertVerifier`](crate::SipServerCertVerifier)
    /// for SIP's name rules). The client-certificate setting of `TlsConfig` does not apply.
    Config(Arc<rustls::ClientConfig>),
}

impl fmt::Debug for ServerVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerVerification::WebPkiRoots => f.write_str("WebPkiRoots"),
            ServerVerification::CaBundle(s) => f.debug_tuple("CaBundle").field(s).finish(),
            ServerVerification::DangerousAcceptAny => f.write_str("DangerousAcceptAny"),
            ServerVerification::Config(_) => f.write_str("Config(..)"),
        }
    }
}

/// Configuration of a [`TlsTransport`](crate::TlsTransport). `Default` listens on
/// `0.0.0.0:5061` (RFC 3261 §19.1.2) with [`Limits::default`], no client certificates asked,
/// servers verified against webpki-roots, and the crate's default crypto provider; a server
/// identity must be set before binding a listener ([`TlsConfig::client`] needs none).
#[derive(Clone)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Bind address, limits, keepalive, listen or client-only, backlog, `TCP_NODELAY`, DSCP
    /// marking and TCP keepalive: the settings shared with TCP.
    pub stream: StreamConfig,
    /// The listener's certificate. Required when listening.
    pub server_identity: Option<ServerIdentity>,
    /// Whether the listener asks for client certificates.
    pub client_auth: ClientAuth,
    /// How we verify servers we connect to.
    pub server_verification: ServerVerification,
    /// Which name rules a verified server certificate follows: SIP's (the default) or HTTPS's.
    pub server_name_rules: ServerNameRules,
    /// Further listener certificates, chosen by the name a client asks for in its TLS
    /// handshake (SNI, RFC 6066 §3), for a server that is several SIP domains: a certificate
    /// whose SIP domain identity (RFC 5922 §7.1) is the name first, then an exact dNSName,
    /// then a one-label `*.` wildcard dNSName (for browsers on secure WebSocket); the first
    /// configured wins within a rank. The [`ServerIdentity::Certificate`] stays the default,
    /// for clients that send no name (SIP clients that connect to an address) or a name no
    /// other certificate has. Ignored with [`ServerIdentity::Config`], whose configuration
    /// chooses its own certificates.
    pub sni_certificates: Vec<CertifiedKeySource>,
    /// Our certificate when a server asks for one (mutual TLS).
    pub client_identity: Option<CertifiedKeySource>,
    /// The rustls crypto provider; `None` uses the crate feature's (`aws-lc-rs` if enabled,
    /// else `ring`). It is passed explicitly, never installed process-wide.
    pub crypto_provider: Option<Arc<CryptoProvider>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("stream", &self.stream)
            .field("server_identity", &self.server_identity)
            .field("client_auth", &self.client_auth)
            .field("server_verification", &self.server_verification)
            .field("server_name_rules", &self.server_name_rules)
            .field("sni_certificates", &self.sni_certificates)
            .field("client_identity", &self.client_identity)
            .field(
                "crypto_provider",
                &self.crypto_provider.as_ref().map(|_| ".."),
            )
            .finish()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            stream: StreamConfig::default()
                .with_bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5061))),
            server_identity: None,
            client_auth: ClientAuth::Off,
            server_verification: ServerVerification::WebPkiRoots,
            server_name_rules: ServerNameRules::Sip,
            sni_certificates: Vec::new(),
            client_identity: None,
            crypto_provider: None,
        }
    }
}

impl TlsConfig {
    /// Starts from the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client-only configuration: no listener, outbound connections from any local address.
    pub fn client() -> Self {
        TlsConfig {
            stream: StreamConfig::client(),
            ..Self::default()
        }
    }

    /// Sets the listening address (port 0 picks a free port).
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.stream = self.stream.with_bind(bind);
        self
    }

    /// Sets the limits (sizes, connections, handshake timeout and concurrency, ...).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.stream = self.stream.with_limits(limits);
        self
    }

    /// Sets the interval of CRLFCRLF keepalive pings on connections we dial (RFC 5626 §4.4.1).
    pub fn with_keepalive_interval(mut self, interval: Option<Duration>) -> Self {
        self.stream = self.stream.with_keepalive_interval(interval);
        self
    }

    /// Sets how long a keepalive ping may go unanswered before the flow is closed with
    /// `CloseReason::KeepaliveTimeout` (default 10 s, RFC 5626 §4.4.1).
    pub fn with_pong_timeout(mut self, timeout: Duration) -> Self {
        self.stream = self.stream.with_pong_timeout(timeout);
        self
    }

    /// Sets the DSCP mark of the listener's and every connection's packets
    /// ([`StreamConfig::dscp`]; default none).
    pub fn with_dscp(mut self, dscp: Option<Dscp>) -> Self {
        self.stream = self.stream.with_dscp(dscp);
        self
    }

    /// Sets kernel TCP keepalive on every connection ([`StreamConfig::tcp_keepalive`]; default
    /// on with the OS's timing, `None` switches it off). Not the RFC 5626 pings of
    /// [`with_keepalive_interval`](Self::with_keepalive_interval).
    pub fn with_tcp_keepalive(mut self, keepalive: Option<TcpKeepaliveConfig>) -> Self {
        self.stream = self.stream.with_tcp_keepalive(keepalive);
        self
    }

    /// Listens (`true`, the default) or is client-only.
    pub fn with_listen(mut self, listen: bool) -> Self {
        self.stream = self.stream.with_listen(listen);
        self
    }

    /// Replaces all the stream settings at once.
    pub fn with_stream_config(mut self, stream: StreamConfig) -> Self {
        self.stream = stream;
        self
    }

    /// The listener's certificate chain and key, from PEM files read at bind.
    pub fn with_certificate_files(
        self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.with_certificate(PemSource::file(chain), PemSource::file(key))
    }

    /// The listener's certificate chain and key, from PEM text in memory.
    pub fn with_certificate_pem(self, chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.with_certificate(PemSource::memory(chain), PemSource::memory(key))
    }

    /// The listener's certificate chain and key.
    pub fn with_certificate(mut self, chain: PemSource, key: PemSource) -> Self {
        self.server_identity = Some(ServerIdentity::Certificate(CertifiedKeySource {
            chain,
            key,
        }));
        self
    }

    /// Adds a listener certificate chosen when a client asks for one of its names (see
    /// [`TlsConfig::sni_certificates`]); the one from [`TlsConfig::with_certificate`] stays
    /// the default.
    pub fn with_sni_certificate(mut self, chain: PemSource, key: PemSource) -> Self {
        self.sni_certificates
            .push(CertifiedKeySource { chain, key });
        self
    }

    /// [`TlsConfig::with_sni_certificate`] from PEM files read at bind.
    pub fn with_sni_certificate_files(
        self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.with_sni_certificate(PemSource::file(chain), PemSource::file(key))
    }

    /// A caller-made rustls server configuration for the listener.
    pub fn with_server_config(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.server_identity = Some(ServerIdentity::Config(config));
        self
    }

    /// Sets whether the listener asks for client certificates.
    pub fn with_client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// Requires every client to present a certificate issued by a CA in `ca` (mutual TLS).
    pub fn with_required_client_certificates(self, ca: PemSource) -> Self {
        self.with_client_auth(ClientAuth::Required { ca })
    }

    /// Verifies servers against webpki-roots (the default).
    pub fn with_webpki_roots(mut self) -> Self {
        self.server_verification = ServerVerification::WebPkiRoots;
        self
    }

    /// Verifies servers against the CAs in this PEM bundle only.
    pub fn with_server_ca(mut self, ca: PemSource) -> Self {
        self.server_verification = ServerVerification::CaBundle(ca);
        self
    }

    /// Verifies servers against the CAs in this PEM file only.
    pub fn with_server_ca_file(self, path: impl Into<PathBuf>) -> Self {
        self.with_server_ca(PemSource::file(path))
    }

    /// **Disables server certificate verification entirely**: any certificate for any name is
    /// accepted, so anyone on the path can impersonate the server. For lab use against
    /// throwaway peers only. The handshake signature is still checked (it proves nothing
    /// without a verified certificate).
    pub fn dangerous_accept_any_server_certificate(mut self) -> Self {
        self.server_verification = ServerVerification::DangerousAcceptAny;
        self
    }

    /// Sets [`TlsConfig::server_name_rules`]: `ServerNameRules::Https` for a secure WebSocket
    /// client, which talks to web servers.
    pub fn with_server_name_rules(mut self, rules: ServerNameRules) -> Self {
        self.server_name_rules = rules;
        self
    }

    /// A caller-made rustls client configuration for outbound connections, used as given: its
    /// own server certificate verifier decides, SIP's name rules only if it applies them
    /// ([`SipServerCertVerifier`](crate::SipServerCertVerifier)).
    pub fn with_client_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.server_verification = ServerVerification::Config(config);
        self
    }

    /// Our certificate for servers that ask for one.
    pub fn with_client_certificate(mut self, chain: PemSource, key: PemSource) -> Self {
        self.client_identity = Some(CertifiedKeySource { chain, key });
        self
    }

    /// Our certificate for servers that ask for one, from PEM files read at bind.
    pub fn with_client_certificate_files(
        self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.with_client_certificate(PemSource::file(chain), PemSource::file(key))
    }

    /// Uses this crypto provider instead of the crate feature's.
    pub fn with_crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.crypto_provider = Some(provider);
        self
    }
}

impl StreamTransportConfig for TlsConfig {
    type Connector = TlsConnector;

    fn into_parts(self) -> Result<(TlsConnector, StreamConfig)> {
        let connector = TlsConnector::new(&self)?;
        Ok((connector, self.stream))
    }
}
