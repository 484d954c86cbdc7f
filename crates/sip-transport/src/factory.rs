//! [`TransportFactory`]: from a SIP or SIPS URI to a client transport of the right kind.
//!
//! The rule ([`TransportFactory::kind_for_uri`]) reads only the URI, never DNS:
//! - the `transport` parameter names the kind (`udp`, `tcp`, `tls`, `ws`, `wss`);
//! - on a `sips:` URI, `tcp` and `tls` mean TLS and `ws` and `wss` mean WSS, and `udp` is
//!   refused: a SIPS URI asks for TLS on every hop and is never downgrade (RFC 3261 §26.2.2);
//! - without the parameter: TLS for `sips:`, UDP for `sip:` (the RFC 3263 §4.1 default when a
//!   domain publishes no NAPTR or SRV records). To let NAPTR and SRV records choose, send
//!   through the [`TransportManager`](crate::TransportManager) with a resolver.
//!
//! The transport is a client: no listener, an ephemeral local port, the unspecified address
//! of the family the URI's host needs (a dual-stack `[::]` UDP socket for a host name, when
//! the machine has IPv6). A kind whose cargo feature is off is
//! [`Error::TransportUnavailable`]; a URI that cannot be used is [`Error::InvalidUri`].
//!
//! Not here: listeners (see the `bind_*` helpers) and routing (see the manager).

use std::fmt;
#[cfg(any(feature = "udp", feature = "tcp", feature = "ws"))]
use std::net::SocketAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use sip_transport_api::{
    Destination, Dscp, Error, Limits, Result, Transport, TransportEvent, TransportKind,
};
#[cfg(feature = "tcp")]
use sip_transport_tcp::TcpKeepaliveConfig;
#[cfg(all(feature = "ws", not(feature = "tcp")))]
use sip_transport_ws::TcpKeepaliveConfig;
use tokio::sync::mpsc;

use crate::uri::{Host, TargetUri};

/// Creates client transports from SIP URIs. Cheap to clone; holds only settings.
///
/// ```
/// use sip_transport::{TransportFactory, TransportKind};
///
/// let uri = "sips:example.com;transport=tcp".parse()?;
/// // SIPS over "tcp" is TLS (RFC 3261 §26.2.2); a SIPS URI never downgrades.
/// assert_eq!(TransportFactory::kind_for_uri(&uri)?, TransportKind::Tls);
/// assert!("sips:example.com;transport=udp".parse::<sip_transport::TargetUri>().is_err());
/// # Ok::<(), sip_transport::Error>(())
/// ```
#[derive(Clone)]
pub struct TransportFactory {
    limits: Limits,
    dscp: Option<Dscp>,
    #[cfg(any(feature = "tcp", feature = "ws"))]
    tcp_keepalive: Option<TcpKeepaliveConfig>,
    bind_v4: Ipv4Addr,
    bind_v6: Ipv6Addr,
    #[cfg(feature = "tls")]
    tls: sip_transport_tls::TlsConfig,
    #[cfg(feature = "ws")]
    ws: sip_transport_ws::WsConfig,
}

impl fmt::Debug for TransportFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportFactory")
            .field("bind_v4", &self.bind_v4)
            .field("bind_v6", &self.bind_v6)
            .finish_non_exhaustive()
    }
}

impl Default for TransportFactory {
    fn default() -> Self {
        Self::new()
    }
}

/// A transport made by the factory: the transport, its event receiver, and the URI it was
/// made for.
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatedTransport {
    /// The transport (a client: no listener).
    pub transport: Arc<dyn Transport>,
    /// Its events, bounded by the factory's `Limits::event_queue_depth`.
    pub events: mpsc::Receiver<TransportEvent>,
    /// The URI it was made for, when made from one.
    pub uri: Option<TargetUri>,
}

impl CreatedTransport {
    /// The transport's kind.
    pub fn kind(&self) -> TransportKind {
        self.transport.kind()
    }

    /// Where to send when the URI's target (its `maddr`, else its host) is numeric: that
    /// address with the URI's port or the kind's default port (RFC 3263 §4.2), and the URI's
    /// domain, if any, as the TLS name. `None` for a host name, which needs RFC 3263
    /// resolution (the manager's job).
    pub fn destination(&self) -> Option<Destination> {
        let uri = self.uri.as_ref()?;
        let Host::Ip(ip) = uri.target() else {
            return None;
        };
        let port = uri.port.unwrap_or(self.kind().default_port());
        let dest = Destination::new((*ip, port).into());
        Some(match uri.server_name() {
            Some(name) => dest.with_server_name(name),
            None => dest,
        })
    }

    /// The transport and its events.
    pub fn into_parts(self) -> (Arc<dyn Transport>, mpsc::Receiver<TransportEvent>) {
        (self.transport, self.events)
    }
}

impl TransportFactory {
    /// A factory with default limits, binding the unspecified addresses, verifying TLS and
    /// WSS servers against the webpki roots, with no DSCP mark and kernel TCP keepalive on
    /// (the OS's timing), as each transport's own config defaults.
    pub fn new() -> Self {
        TransportFactory {
            limits: Limits::default(),
            dscp: None,
            #[cfg(any(feature = "tcp", feature = "ws"))]
            tcp_keepalive: Some(TcpKeepaliveConfig::default()),
            bind_v4: Ipv4Addr::UNSPECIFIED,
            bind_v6: Ipv6Addr::UNSPECIFIED,
            #[cfg(feature = "tls")]
            tls: sip_transport_tls::TlsConfig::client(),
            #[cfg(feature = "ws")]
            ws: sip_transport_ws::WsConfig::default().with_listen(false),
        }
    }

    /// The limits of every transport the factory makes.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The DSCP mark of every transport the factory makes (UDP datagrams, TCP, TLS and
    /// WebSocket connections); default none. E.g. [`Dscp::CS3`] for SIP signalling.
    pub fn with_dscp(mut self, dscp: Option<Dscp>) -> Self {
        self.dscp = dscp;
        self
    }

    /// Kernel TCP keepalive on every TCP, TLS and WebSocket connection the factory's
    /// transports open (default: on, with the OS's timing; `None`: off). Not the RFC 5626
    /// CRLF or WebSocket pings, which the TLS and WebSocket client settings carry.
    #[cfg(any(feature = "tcp", feature = "ws"))]
    pub fn with_tcp_keepalive(mut self, keepalive: Option<TcpKeepaliveConfig>) -> Self {
        self.tcp_keepalive = keepalive;
        self
    }

    /// The local IPv4 address transports bind to (default `0.0.0.0`).
    pub fn with_bind_v4(mut self, ip: Ipv4Addr) -> Self {
        self.bind_v4 = ip;
        self
    }

    /// The local IPv6 address transports bind to (default `::`).
    pub fn with_bind_v6(mut self, ip: Ipv6Addr) -> Self {
        self.bind_v6 = ip;
        self
    }

    /// The TLS client settings (server verification, client certificate, crypto provider).
    /// Listening, the bind address, the limits, the DSCP mark and TCP keepalive are the
    /// factory's.
    #[cfg(feature = "tls")]
    pub fn with_tls_client(mut self, config: sip_transport_tls::TlsConfig) -> Self {
        self.tls = config;
        self
    }

    /// The WebSocket client settings (for `wss`, server verification; `Origin`, buffers).
    /// Listening, the scheme, the bind address, the limits, the DSCP mark and TCP keepalive
    /// are the factory's.
    #[cfg(feature = "ws")]
    pub fn with_ws_client(mut self, config: sip_transport_ws::WsConfig) -> Self {
        self.ws = config;
        self
    }

    /// True when this build has the transport (its cargo feature is on).
    pub fn is_enabled(kind: TransportKind) -> bool {
        match kind {
            TransportKind::Udp => cfg!(feature = "udp"),
            TransportKind::Tcp => cfg!(feature = "tcp"),
            TransportKind::Tls => cfg!(feature = "tls"),
            TransportKind::Ws | TransportKind::Wss => cfg!(feature = "ws"),
        }
    }

    /// The kind a URI asks for (see the module docs): the `transport` parameter read with the
    /// scheme, else TLS for `sips:` and UDP for `sip:`. Does not check the features.
    pub fn kind_for_uri(uri: &TargetUri) -> Result<TransportKind> {
        Ok(match uri.transport_kind()? {
            Some(kind) => kind,
            None if uri.secure => TransportKind::Tls,
            None => TransportKind::Udp,
        })
    }

    /// Parses `uri` and creates a client transport of the kind it asks for, bound for the
    /// family of its host. Errors: [`Error::InvalidUri`], [`Error::TransportUnavailable`]
    /// (feature off), and the transport's own bind errors.
    ///
    /// ```no_run
    /// # async fn run() -> sip_transport::Result<()> {
    /// use sip_transport::{Transport, TransportFactory, TransportKind};
    ///
    /// let factory = TransportFactory::new();
    /// let created = factory.create_from_uri("sip:192.0.2.10:5060;transport=tcp").await?;
    /// assert_eq!(created.kind(), TransportKind::Tcp);
    /// let dest = created.destination().expect("numeric host");
    /// # Ok(()) }
    /// ```
    pub async fn create_from_uri(&self, uri: &str) -> Result<CreatedTransport> {
        self.create_for_uri(&TargetUri::parse(uri)?).await
    }

    /// [`create_from_uri`](Self::create_from_uri) for a parsed URI.
    pub async fn create_for_uri(&self, uri: &TargetUri) -> Result<CreatedTransport> {
        let kind = Self::kind_for_uri(uri)?;
        let family = match uri.target() {
            Host::Ip(ip) => Some(*ip),
            Host::Name(_) => None,
        };
        let mut created = self.create_client(kind, family).await?;
        created.uri = Some(uri.clone());
        Ok(created)
    }

    /// A client transport of `kind`, bound to the configured address of `peer`'s family (any
    /// family when `None`: dual-stack for UDP where the machine has IPv6).
    pub async fn create_client(
        &self,
        kind: TransportKind,
        peer: Option<IpAddr>,
    ) -> Result<CreatedTransport> {
        if !Self::is_enabled(kind) {
            return Err(Error::TransportUnavailable { kind });
        }
        let (transport, events) = self.bind_client(kind, peer).await?;
        Ok(CreatedTransport {
            transport,
            events,
            uri: None,
        })
    }

    /// Binds the client transport of `kind` (a feature that is off: unavailable).
    async fn bind_client(
        &self,
        kind: TransportKind,
        peer: Option<IpAddr>,
    ) -> Result<(Arc<dyn Transport>, mpsc::Receiver<TransportEvent>)> {
        // Only read by the transports compiled in.
        let _ = peer;
        match kind {
            #[cfg(feature = "udp")]
            TransportKind::Udp => {
                let (t, rx) = self.udp_client(peer)?;
                Ok((t, rx))
            }
            #[cfg(feature = "tcp")]
            TransportKind::Tcp => {
                use sip_transport_tcp::{TcpConfig, TcpTransport};
                let config = TcpConfig::client()
                    .with_bind(self.stream_bind(peer))
                    .with_limits(self.limits.clone())
                    .with_dscp(self.dscp)
                    .with_tcp_keepalive(self.tcp_keepalive);
                let (t, rx) = TcpTransport::bind(config).await?;
                Ok((t, rx))
            }
            #[cfg(feature = "tls")]
            TransportKind::Tls => {
                let config = self
                    .tls
                    .clone()
                    .with_listen(false)
                    .with_bind(self.stream_bind(peer))
                    .with_limits(self.limits.clone())
                    .with_dscp(self.dscp)
                    .with_tcp_keepalive(self.tcp_keepalive);
                let (t, rx) = sip_transport_tls::TlsTransport::bind(config).await?;
                Ok((t, rx))
            }
            #[cfg(feature = "ws")]
            TransportKind::Ws | TransportKind::Wss => {
                use sip_transport_ws::{WsScheme, WsTransport};
                let scheme = if kind == TransportKind::Wss {
                    WsScheme::Wss
                } else {
                    WsScheme::Ws
                };
                let config = self
                    .ws
                    .clone()
                    .with_listen(false)
                    .with_scheme(scheme)
                    .with_bind(self.stream_bind(peer))
                    .with_limits(self.limits.clone())
                    .with_dscp(self.dscp)
                    .with_tcp_keepalive(self.tcp_keepalive);
                let (t, rx) = WsTransport::bind(config)?;
                Ok((t, rx))
            }
            #[allow(unreachable_patterns)]
            _ => Err(Error::TransportUnavailable { kind }),
        }
    }

    /// Stream clients bind port 0 of the configured address of the peer's family; with the
    /// unspecified address the OS picks the source, so one transport reaches both families.
    #[cfg(any(feature = "tcp", feature = "ws"))]
    fn stream_bind(&self, peer: Option<IpAddr>) -> SocketAddr {
        match peer {
            Some(IpAddr::V6(_)) if !self.bind_v6.is_unspecified() => (self.bind_v6, 0).into(),
            Some(IpAddr::V4(_)) | None if !self.bind_v4.is_unspecified() => {
                (self.bind_v4, 0).into()
            }
            _ => (Ipv4Addr::UNSPECIFIED, 0).into(),
        }
    }

    /// UDP needs a socket of the right family: IPv4 for an IPv4 peer, IPv6 for an IPv6 peer,
    /// and for a name (family unknown until resolved) a dual-stack `[::]` socket, or IPv4
    /// where IPv6 is not available.
    #[cfg(feature = "udp")]
    fn udp_client(
        &self,
        peer: Option<IpAddr>,
    ) -> Result<(
        Arc<sip_transport_udp::UdpTransport>,
        mpsc::Receiver<TransportEvent>,
    )> {
        use sip_transport_udp::{UdpConfig, UdpTransport};
        let bind = |addr: SocketAddr| {
            let config = UdpConfig::new(addr)
                .with_limits(self.limits.clone())
                .with_dscp(self.dscp);
            UdpTransport::bind(config)
        };
        let v4 = SocketAddr::from((self.bind_v4, 0));
        let v6 = SocketAddr::from((self.bind_v6, 0));
        match peer {
            Some(IpAddr::V4(_)) => bind(v4),
            Some(IpAddr::V6(_)) => bind(v6),
            None if self.bind_v6.is_unspecified() => bind(v6).or_else(|_| bind(v4)),
            None => bind(v4),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransportKind::{Tcp, Tls, Udp, Ws, Wss};

    fn kind(uri: &str) -> Result<TransportKind> {
        TransportFactory::kind_for_uri(&TargetUri::parse(uri)?)
    }

    #[test]
    fn kind_rule_for_every_scheme_and_parameter() {
        let hosts = ["example.com", "192.0.2.1:5070", "[2001:db8::1]"];
        let cases: [(&str, Option<TransportKind>, Option<TransportKind>); 6] = [
            // (parameter, kind for sip:, kind for sips: (None = refused))
            ("", Some(Udp), Some(Tls)),
            (";transport=udp", Some(Udp), None),
            (";transport=tcp", Some(Tcp), Some(Tls)),
            (";transport=TLS", Some(Tls), Some(Tls)),
            (";transport=ws", Some(Ws), Some(Wss)),
            (";transport=wss", Some(Wss), Some(Wss)),
        ];
        for host in hosts {
            for (param, sip, sips) in cases {
                let plain = format!("sip:alice@{host}{param}");
                assert_eq!(kind(&plain).ok(), sip, "{plain}");
                let secure = format!("sips:alice@{host}{param}");
                match sips {
                    Some(k) => assert_eq!(kind(&secure).ok(), Some(k), "{secure}"),
                    None => assert!(
                        matches!(kind(&secure), Err(Error::InvalidUri { .. })),
                        "{secure} must not downgrade"
                    ),
                }
            }
        }
    }

    #[test]
    fn secure_kinds_never_downgrade() {
        for param in [
            "",
            ";transport=tcp",
            ";transport=tls",
            ";transport=ws",
            ";transport=wss",
        ] {
            let k = kind(&format!("sips:h.example{param}")).expect("valid");
            assert!(k.is_secure(), "sips{param} gave {k}");
        }
    }

    #[test]
    fn invalid_uris_are_typed() {
        for s in [
            "http://x",
            "sip:",
            "sip:h:0",
            "sip:h;transport=sctp",
            "sip:[::1",
        ] {
            let e = kind(s).expect_err(s);
            assert!(matches!(e, Error::InvalidUri { .. }), "{s}: {e:?}");
            assert!(!e.is_recoverable());
        }
    }

    #[test]
    fn enabled_kinds_follow_features() {
        assert_eq!(TransportFactory::is_enabled(Udp), cfg!(feature = "udp"));
        assert_eq!(TransportFactory::is_enabled(Tls), cfg!(feature = "tls"));
        assert_eq!(TransportFactory::is_enabled(Wss), cfg!(feature = "ws"));
    }

    #[tokio::test]
    async fn disabled_kinds_are_unavailable() {
        let f = TransportFactory::new();
        for k in TransportKind::ALL {
            if !TransportFactory::is_enabled(k) {
                let e = f.create_client(k, None).await.expect_err("feature off");
                assert!(matches!(e, Error::TransportUnavailable { kind } if kind == k));
            }
        }
    }
}
