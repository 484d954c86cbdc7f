//! `StreamConfig` (alias `TcpConfig`): the settings every stream transport shares, and
//! [`StreamTransportConfig`], which lets a protocol crate's own config (TLS) name its connector
//! so that `StreamTransport::bind(config)` works for it too.
//!
//! Only settings live here; nothing opens a socket.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sip_transport_api::{Limits, Result};

use crate::StreamConnector;
use crate::proxy::ProxyProtocolConfig;

/// Settings shared by the stream transports (TCP, and TLS around it). `Default` listens on
/// `0.0.0.0:5060` (RFC 3261 §19.1.2) with [`Limits::default`] and no client keepalive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamConfig {
    /// Address to listen on; port 0 picks a free port. In client-only mode its IP (when not
    /// unspecified) is the source address of outbound connections.
    pub bind: SocketAddr,
    /// Size, count and time bounds.
    pub limits: Limits,
    /// Interval of client-side CRLFCRLF keepalive pings on connections we dialed
    /// (RFC 5626 §4.4.1). Each ping goes out after a random 80–100 % of it. `None`: no pings.
    pub keepalive_interval: Option<Duration>,
    /// Whether to listen. `false` is client-only: outbound connections, no listener.
    pub listen: bool,
    /// Listen backlog.
    pub backlog: u32,
    /// Set `TCP_NODELAY` on every connection (SIP messages are small and latency-bound).
    pub nodelay: bool,
    /// Require a PROXY protocol header (v1 or v2) from a trusted load balancer on every
    /// accepted connection, and use the client address it carries. `None` (default): off.
    pub proxy_protocol: Option<ProxyProtocolConfig>,
}

/// The TCP transport's configuration: the shared stream settings.
pub type TcpConfig = StreamConfig;

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5060)),
            limits: Limits::default(),
            keepalive_interval: None,
            listen: true,
            backlog: 1024,
            nodelay: true,
            proxy_protocol: None,
        }
    }
}

impl StreamConfig {
    /// Starts from the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client-only configuration: no listener, outbound connections from any local address.
    pub fn client() -> Self {
        StreamConfig {
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            listen: false,
            ..Self::default()
        }
    }

    /// Sets [`StreamConfig::bind`].
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Sets [`StreamConfig::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`StreamConfig::keepalive_interval`].
    pub fn with_keepalive_interval(mut self, interval: Option<Duration>) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// Sets [`StreamConfig::listen`].
    pub fn with_listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// Sets [`StreamConfig::backlog`].
    pub fn with_backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets [`StreamConfig::nodelay`].
    pub fn with_nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Sets [`StreamConfig::proxy_protocol`].
    pub fn with_proxy_protocol(mut self, proxy: Option<ProxyProtocolConfig>) -> Self {
        self.proxy_protocol = proxy;
        self
    }
}

/// A configuration that knows its connector: what `StreamTransport::bind` takes.
///
/// [`StreamConfig`] binds TCP. A TLS crate implements this for its own `TlsConfig`
/// (`type Connector = TlsConnector`), so `StreamTransport::<TlsConnector>::bind(tls_config)`
/// (aliased `TlsTransport::bind`) works without an inherent impl in this crate.
pub trait StreamTransportConfig {
    /// The connector this configuration builds.
    type Connector: StreamConnector;

    /// Splits into the connector and the shared stream settings; fails on invalid settings
    /// (e.g. unreadable certificates).
    fn into_parts(self) -> Result<(Self::Connector, StreamConfig)>;
}
