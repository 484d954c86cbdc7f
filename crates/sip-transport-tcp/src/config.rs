//! `StreamConfig` (alias `TcpConfig`): the settings every stream transport shares, and
//! [`StreamTransportConfig`], which lets a protocol crate's own config (TLS) name its connector
//! so that `StreamTransport::bind(config)` works for it too.
//!
//! Only settings live here; nothing opens a socket.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sip_transport_api::{Dscp, Error, Limits, Result};

use crate::StreamConnector;
use crate::proxy::ProxyProtocolConfig;
use crate::socket_options::{StreamSocketOptions, TcpKeepaliveConfig};

/// Settings shared by the stream transports (TCP, and TLS around it). `Default` listens on
/// `0.0.0.0:5060` (RFC 3261 §19.1.2) with [`Limits::default`], no client keepalive, a
/// 10 s pong timeout for when keepalives are turned on, TCP keepalive on with the OS's
/// timing and no DSCP mark.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamConfig {
    /// Address to listen on; port 0 picks a free port. In client-only mode its IP (when not
    /// unspecified) is the source address of outbound connections.
    pub bind: SocketAddr,
    /// Size, count and time bounds.
    pub limits: Limits,
    /// Interval of client-side CRLFCRLF keepalive pings on connections we dialed
    /// (RFC 5626 §4.4.1). One ping is in flight at a time: the first goes out a random
    /// 80–100 % of the interval after the connection opens, each next one that long after the
    /// previous one was answered (see [`StreamConfig::pong_timeout`]). `None`: no pings.
    pub keepalive_interval: Option<Duration>,
    /// How long after a keepalive ping has been written the flow may stay silent before it
    /// counts as failed and is closed with `CloseReason::KeepaliveTimeout` (RFC 5626 §4.4.1:
    /// 10 s, the default). The pong ends the wait, and so does any other byte from the peer:
    /// traffic proves the flow alive as well as a pong does. Only used with
    /// [`StreamConfig::keepalive_interval`]. Must not be zero (`bind` refuses it).
    pub pong_timeout: Duration,
    /// Whether to listen. `false` is client-only: outbound connections, no listener.
    pub listen: bool,
    /// Listen backlog.
    pub backlog: u32,
    /// Set `TCP_NODELAY` on every connection (SIP messages are small and latency-bound).
    pub nodelay: bool,
    /// Require a PROXY protocol header (v1 or v2) from a trusted load balancer on every
    /// accepted connection, and use the client address it carries. `None` (default): off.
    pub proxy_protocol: Option<ProxyProtocolConfig>,
    /// DSCP mark for every packet of the listener and of every connection, inbound and
    /// outbound (`IP_TOS`; `IPV6_TCLASS` on IPv6, plus `IP_TOS` for the IPv4 peers of a
    /// dual-stack `[::]` listener), like Kamailio's `tos` and PJSIP's `pj_qos_params`.
    /// [`Dscp::CS3`] is the usual class for SIP signalling (RFC 4594 §3.2). `None` (default):
    /// no marking, the OS default.
    pub dscp: Option<Dscp>,
    /// Kernel TCP keepalive (`SO_KEEPALIVE` and its timing) on every connection, inbound and
    /// outbound, so that a peer that vanished (behind a NAT, powered off) is noticed even when
    /// it sends no RFC 5626 keepalives. Not the same as
    /// [`keepalive_interval`](Self::keepalive_interval), the SIP-level CRLFCRLF pings on flows
    /// we dialed: see [`TcpKeepaliveConfig`]. Default: on, with the OS's timing (as Kamailio's
    /// `tcp_keepalive=1`); `None` switches it off.
    pub tcp_keepalive: Option<TcpKeepaliveConfig>,
}

/// RFC 5626 §4.4.1: a pong not received within 10 seconds of the ping means the flow failed.
const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// The TCP transport's configuration: the shared stream settings.
pub type TcpConfig = StreamConfig;

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5060)),
            limits: Limits::default(),
            keepalive_interval: None,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            listen: true,
            backlog: 1024,
            nodelay: true,
            proxy_protocol: None,
            dscp: None,
            tcp_keepalive: Some(TcpKeepaliveConfig::default()),
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

    /// Sets [`StreamConfig::pong_timeout`].
    pub fn with_pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Checks the settings that no value of their type makes safe; `bind` calls it.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.pong_timeout.is_zero() {
            // No pong can arrive in no time: every keepalive flow would fail at its first ping.
            return Err(Error::InvalidConfig {
                reason: "pong_timeout must be greater than zero".into(),
            });
        }
        if let Some(keepalive) = &self.tcp_keepalive {
            keepalive.validate()?;
        }
        Ok(())
    }

    /// The options [`StreamSocketOptions::apply`] sets on this transport's sockets.
    pub(crate) fn socket_options(&self) -> StreamSocketOptions {
        StreamSocketOptions::new(self.dscp, self.tcp_keepalive)
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

    /// Sets [`StreamConfig::dscp`].
    pub fn with_dscp(mut self, dscp: Option<Dscp>) -> Self {
        self.dscp = dscp;
        self
    }

    /// Sets [`StreamConfig::tcp_keepalive`] (`None`: off).
    pub fn with_tcp_keepalive(mut self, keepalive: Option<TcpKeepaliveConfig>) -> Self {
        self.tcp_keepalive = keepalive;
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
