//! `WsConfig`: what [`WsTransport::bind`](crate::WsTransport::bind) needs, with defaults and
//! builder-style setters, plus the client TLS verification choice ([`ClientTls`]) and the
//! URI scheme of a flow ([`WsScheme`]).
//!
//! Plain data: nothing here opens a socket or reads a file (the CA bundle is read at bind).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::{Dscp, Limits, TransportKind};
use sip_transport_tcp::{ProxyProtocolConfig, StreamSocketOptions, TcpKeepaliveConfig};

/// `ws` or `wss`: which kind of WebSocket connection to open (RFC 7118 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WsScheme {
    /// Plain WebSocket over TCP (`ws://`).
    Ws,
    /// WebSocket over TLS (`wss://`).
    Wss,
}

impl WsScheme {
    /// The SIP transport kind of a flow with this scheme.
    pub fn kind(self) -> TransportKind {
        match self {
            WsScheme::Ws => TransportKind::Ws,
            WsScheme::Wss => TransportKind::Wss,
        }
    }

    /// `"ws"` or `"wss"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WsScheme::Ws => "ws",
            WsScheme::Wss => "wss",
        }
    }
}

impl fmt::Display for WsScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How outbound `wss` connections verify the server certificate.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum ClientTls {
    /// Mozilla's root store as shipped by the `webpki-roots` crate (the default).
    #[default]
    WebPkiRoots,
    /// Trust only the certificates in this PEM file (a CA bundle, or a self-signed server
    /// certificate used as its own trust anchor).
    CaFile(PathBuf),
    /// Trust only these PEM-encoded certificates.
    CaPem(Vec<u8>),
    /// A complete rustls client configuration made by the caller (for example by the TLS
    /// crate, with client certificates). Used as given.
    Config(Arc<rustls::ClientConfig>),
    /// The TLS crate's client settings: server verification, our client certificate (mutual
    /// TLS) and crypto provider, built at bind by
    /// [`TlsConfig::build_client_config`](sip_transport_tls::TlsConfig::build_client_config).
    /// Its stream and listener settings do not apply. Set it with
    /// [`WsConfig::with_client_tls_settings`].
    Tls(Box<sip_transport_tls::TlsConfig>),
    /// **Accept any server certificate, for tests only.** Offers no protection against an
    /// active attacker. Set it with
    /// [`WsConfig::danger_accept_invalid_certs_for_tests`].
    DangerAcceptInvalidCertsForTests,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientTls::WebPkiRoots => f.write_str("WebPkiRoots"),
            ClientTls::CaFile(p) => f.debug_tuple("CaFile").field(p).finish(),
            ClientTls::CaPem(p) => write!(f, "CaPem({} bytes)", p.len()),
            ClientTls::Config(_) => f.write_str("Config(..)"),
            ClientTls::Tls(c) => f.debug_tuple("Tls").field(c).finish(),
            ClientTls::DangerAcceptInvalidCertsForTests => {
                f.write_str("DangerAcceptInvalidCertsForTests")
            }
        }
    }
}

/// Read buffer per connection by default: small, since most SIP messages fit and an idle
/// connection should cost little (tungstenite's own default is 128 KiB).
pub const DEFAULT_READ_BUFFER_SIZE: usize = 4 * 1024;

/// Bytes gathered before a write goes to the socket; `flush` after each batch writes the rest.
pub const DEFAULT_WRITE_BUFFER_SIZE: usize = 16 * 1024;

/// How long a keepalive ping waits for its pong by default: 10 s, as RFC 5626 §4.4.1 gives a
/// STUN or CRLF keepalive.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// Configuration of one [`WsTransport`](crate::WsTransport).
///
/// `Default` listens for plain `ws` on `127.0.0.1` with an ephemeral port, requires the `sip`
/// subprotocol, accepts any request path and origin, verifies `wss` servers against the
/// webpki root store, turns kernel TCP keepalive on with the OS's timing and sets no DSCP
/// mark.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsConfig {
    /// The local address to listen on. Default `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Whether to listen at all. `false` makes a client-only transport. Default `true`.
    pub listen: bool,
    /// Listen backlog: connections the kernel completes before we accept them (capped by
    /// `net.core.somaxconn`). Default 1024, as on TCP.
    pub backlog: u32,
    /// Size, connection, time and queue limits. `max_message_size` is also the largest
    /// WebSocket frame and message accepted.
    pub limits: Limits,
    /// When set, the listener speaks `wss` with this rustls configuration and the transport's
    /// kind is [`TransportKind::Wss`].
    pub server_tls: Option<Arc<rustls::ServerConfig>>,
    /// How outbound `wss` connections verify servers. Default [`ClientTls::WebPkiRoots`].
    pub client_tls: ClientTls,
    /// The scheme `Transport::send_message` uses for new outbound connections, and the
    /// transport's kind. Default `ws`; [`with_server_tls`](Self::with_server_tls) makes it `wss`.
    pub scheme: WsScheme,
    /// Request paths the listener accepts (exact match on the path, query ignored); others get
    /// `404 Not Found`. Empty (the default): any path.
    pub allowed_paths: Vec<String>,
    /// `Origin` values the listener accepts (exact, case-insensitive); a request with another
    /// `Origin`, or none, gets `403 Forbidden`. Empty (the default): any or no origin.
    pub allowed_origins: Vec<String>,
    /// Sends a WebSocket ping after this long without traffic; `None` (the default) sends none.
    /// Pings are always answered. Not the kernel's TCP keepalive
    /// ([`tcp_keepalive`](Self::tcp_keepalive)), which the peer's TCP stack answers.
    pub keepalive_interval: Option<Duration>,
    /// After a keepalive ping, how long to wait for a pong (or any other frame) before the
    /// connection is closed with `CloseReason::KeepaliveTimeout`. Only applies when
    /// [`keepalive_interval`](Self::keepalive_interval) is set. Must not be zero (`bind`
    /// refuses it). Default [`DEFAULT_PONG_TIMEOUT`].
    pub pong_timeout: Duration,
    /// Require a PROXY protocol header (v1 or v2) from a trusted load balancer on every
    /// accepted connection, before the TLS handshake and the HTTP upgrade, and use the client
    /// address it carries as the connection's peer (message source, `received`/`rport`, flow
    /// key). A connection from a source not in its trusted list is refused at accept. The
    /// header must end within its `header_timeout` and fit its `max_header_len`; header, TLS
    /// handshake and upgrade together must end within `Limits::handshake_timeout`. The same
    /// settings as [`StreamConfig::proxy_protocol`](sip_transport_tcp::StreamConfig::proxy_protocol) on TCP
    /// and TLS. `None` (default): off.
    pub proxy_protocol: Option<ProxyProtocolConfig>,
    /// Read buffer per connection, in bytes. Default [`DEFAULT_READ_BUFFER_SIZE`].
    pub read_buffer_size: usize,
    /// Write batching threshold per connection, in bytes. Default [`DEFAULT_WRITE_BUFFER_SIZE`].
    pub write_buffer_size: usize,
    /// The `Origin` header our outbound handshakes send, if any. Default none.
    pub client_origin: Option<String>,
    /// DSCP mark for every packet of the listener and of every connection, inbound and
    /// outbound (`IP_TOS`; `IPV6_TCLASS` on IPv6, plus `IP_TOS` for the IPv4 peers of a
    /// dual-stack `[::]` listener). [`Dscp::CS3`] is the usual class for SIP signalling
    /// (RFC 4594 §3.2). `None` (default): no marking, the OS default. As
    /// [`StreamConfig::dscp`](sip_transport_tcp::StreamConfig::dscp) on TCP and TLS.
    pub dscp: Option<Dscp>,
    /// Kernel TCP keepalive (`SO_KEEPALIVE` and its timing) on every connection, inbound and
    /// outbound, so that a peer that vanished is noticed even when it sends nothing. Not the
    /// WebSocket pings of [`keepalive_interval`](Self::keepalive_interval): see
    /// [`TcpKeepaliveConfig`]. Default: on, with the OS's timing; `None` switches it off. As
    /// [`StreamConfig::tcp_keepalive`](sip_transport_tcp::StreamConfig::tcp_keepalive) on TCP
    /// and TLS.
    pub tcp_keepalive: Option<TcpKeepaliveConfig>,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            listen: true,
            backlog: 1024,
            limits: Limits::default(),
            server_tls: None,
            client_tls: ClientTls::default(),
            scheme: WsScheme::Ws,
            allowed_paths: Vec::new(),
            allowed_origins: Vec::new(),
            keepalive_interval: None,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            proxy_protocol: None,
            read_buffer_size: DEFAULT_READ_BUFFER_SIZE,
            write_buffer_size: DEFAULT_WRITE_BUFFER_SIZE,
            client_origin: None,
            dscp: None,
            tcp_keepalive: Some(TcpKeepaliveConfig::default()),
        }
    }
}

impl WsConfig {
    /// The defaults with another listen address.
    pub fn new(bind: SocketAddr) -> Self {
        WsConfig {
            bind,
            ..Self::default()
        }
    }

    /// A client-only `wss` transport (no listener) verifying servers with `client_tls`.
    pub fn wss_client(client_tls: ClientTls) -> Self {
        WsConfig {
            listen: false,
            scheme: WsScheme::Wss,
            client_tls,
            ..Self::default()
        }
    }

    /// Sets [`WsConfig::bind`].
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Sets [`WsConfig::listen`].
    pub fn with_listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// Sets [`WsConfig::backlog`].
    pub fn with_backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets [`WsConfig::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Makes the listener `wss` with this rustls server configuration (and the kind `Wss`).
    pub fn with_server_tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.server_tls = Some(config);
        self.scheme = WsScheme::Wss;
        self
    }

    /// Sets [`WsConfig::client_tls`].
    pub fn with_client_tls(mut self, tls: ClientTls) -> Self {
        self.client_tls = tls;
        self
    }

    /// Uses a caller-made rustls client configuration for outbound `wss`.
    pub fn with_client_tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.client_tls = ClientTls::Config(config);
        self
    }

    /// Outbound `wss` uses the TLS crate's client settings (server verification, client
    /// certificate, crypto provider); see [`ClientTls::Tls`].
    pub fn with_client_tls_settings(mut self, tls: sip_transport_tls::TlsConfig) -> Self {
        self.client_tls = ClientTls::Tls(Box::new(tls));
        self
    }

    /// Verifies outbound `wss` servers against the certificates in this PEM file only.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_tls = ClientTls::CaFile(path.into());
        self
    }

    /// **Tests only**: outbound `wss` accepts any server certificate.
    pub fn danger_accept_invalid_certs_for_tests(mut self) -> Self {
        self.client_tls = ClientTls::DangerAcceptInvalidCertsForTests;
        self
    }

    /// Sets [`WsConfig::scheme`].
    pub fn with_scheme(mut self, scheme: WsScheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Sets [`WsConfig::allowed_paths`].
    pub fn with_allowed_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`WsConfig::allowed_origins`].
    pub fn with_allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`WsConfig::keepalive_interval`].
    pub fn with_keepalive_interval(mut self, every: Option<Duration>) -> Self {
        self.keepalive_interval = every;
        self
    }

    /// Sets [`WsConfig::pong_timeout`].
    pub fn with_pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Sets [`WsConfig::proxy_protocol`].
    pub fn with_proxy_protocol(mut self, proxy: Option<ProxyProtocolConfig>) -> Self {
        self.proxy_protocol = proxy;
        self
    }

    /// Sets [`WsConfig::read_buffer_size`].
    pub fn with_read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes;
        self
    }

    /// Sets [`WsConfig::write_buffer_size`].
    pub fn with_write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Sets [`WsConfig::client_origin`].
    pub fn with_client_origin(mut self, origin: impl Into<String>) -> Self {
        self.client_origin = Some(origin.into());
        self
    }

    /// Sets [`WsConfig::dscp`].
    pub fn with_dscp(mut self, dscp: Option<Dscp>) -> Self {
        self.dscp = dscp;
        self
    }

    /// Sets [`WsConfig::tcp_keepalive`] (`None`: off).
    pub fn with_tcp_keepalive(mut self, keepalive: Option<TcpKeepaliveConfig>) -> Self {
        self.tcp_keepalive = keepalive;
        self
    }

    /// What the listener and every connection socket get besides `TCP_NODELAY`.
    pub(crate) fn socket_options(&self) -> StreamSocketOptions {
        StreamSocketOptions::new(self.dscp, self.tcp_keepalive)
    }

    /// The transport kind this configuration gives.
    pub fn kind(&self) -> TransportKind {
        self.scheme.kind()
    }

    /// The tungstenite settings for one connection: SIP-sized frames and messages, a small read
    /// buffer and a bounded write buffer (tungstenite's defaults are 64 MiB messages, a 128 KiB
    /// read buffer and an unbounded write buffer).
    pub(crate) fn websocket_config(
        &self,
    ) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        let max = self.limits.max_message_size.max(1);
        let write = self.write_buffer_size;
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size.max(256))
            .write_buffer_size(write)
            // One batch plus one full message plus a frame header (RFC 6455 §5.2: 14 bytes).
            .max_write_buffer_size(write.saturating_add(max).saturating_add(14 + 1))
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_setters() {
        let c = WsConfig::default();
        assert_eq!(c.kind(), TransportKind::Ws);
        assert!(c.listen && c.allowed_paths.is_empty());
        assert_eq!(c.pong_timeout, Duration::from_secs(10));
        assert!(c.proxy_protocol.is_none());
        assert_eq!(c.dscp, None);
        assert_eq!(c.tcp_keepalive, Some(TcpKeepaliveConfig::default()));
        let m = WsConfig::default()
            .with_dscp(Some(Dscp::CS3))
            .with_tcp_keepalive(None);
        assert_eq!(
            m.socket_options(),
            StreamSocketOptions::new(Some(Dscp::CS3), None)
        );
        let p = WsConfig::default()
            .with_pong_timeout(Duration::from_secs(3))
            .with_proxy_protocol(Some(ProxyProtocolConfig::default()));
        assert_eq!(p.pong_timeout, Duration::from_secs(3));
        assert_eq!(p.proxy_protocol, Some(ProxyProtocolConfig::default()));
        let w = c.websocket_config();
        assert_eq!(w.max_message_size, Some(65_535));
        assert_eq!(w.read_buffer_size, DEFAULT_READ_BUFFER_SIZE);
        assert!(w.max_write_buffer_size > w.write_buffer_size + 65_535);
        let c = WsConfig::wss_client(ClientTls::DangerAcceptInvalidCertsForTests)
            .with_allowed_paths(["/ws"]);
        assert_eq!(c.kind(), TransportKind::Wss);
        assert!(!c.listen);
        assert_eq!(c.allowed_paths, vec!["/ws".to_owned()]);
        assert_eq!(
            format!("{:?}", c.client_tls),
            "DangerAcceptInvalidCertsForTests"
        );
    }
}
