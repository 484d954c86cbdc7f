//! One-line listeners: `bind_udp(addr)`, `bind_tcp(addr)`, `bind_tls(addr, cert, key)`,
//! `bind_ws(addr)` and `bind_wss(addr, cert, key)`, each behind its feature.
//!
//! Each is the protocol crate's `bind(config)` with that crate's defaults and the address
//! given; for anything else (limits, keepalive, client certificates, allow-lists) build the
//! config and call `bind` yourself. Every helper returns the transport and the bounded
//! receiver of its events, ready for [`TransportManager::add`](crate::TransportManager::add).
//! They must run inside a Tokio runtime.

#[cfg(any(feature = "udp", feature = "tcp", feature = "ws"))]
use std::net::SocketAddr;
#[cfg(feature = "tls")]
use std::path::PathBuf;
#[cfg(any(feature = "udp", feature = "tcp", feature = "ws"))]
use std::sync::Arc;

#[cfg(any(feature = "udp", feature = "tcp", feature = "ws"))]
use sip_transport_api::{Result, TransportEvent};
#[cfg(any(feature = "udp", feature = "tcp", feature = "ws"))]
use tokio::sync::mpsc::Receiver;

/// A UDP listener on `addr` (e.g. `0.0.0.0:5060`; port 0 picks a free port).
///
/// ```no_run
/// # async fn run() -> sip_transport::Result<()> {
/// let (udp, mut events) = sip_transport::bind_udp(([0, 0, 0, 0], 5060)).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "udp")]
pub async fn bind_udp(
    addr: impl Into<SocketAddr>,
) -> Result<(
    Arc<sip_transport_udp::UdpTransport>,
    Receiver<TransportEvent>,
)> {
    use sip_transport_udp::{UdpConfig, UdpTransport};
    UdpTransport::bind(UdpConfig::new(addr.into()))
}

/// A TCP listener on `addr`; it also dials outbound connections.
#[cfg(feature = "tcp")]
pub async fn bind_tcp(
    addr: impl Into<SocketAddr>,
) -> Result<(
    Arc<sip_transport_tcp::TcpTransport>,
    Receiver<TransportEvent>,
)> {
    use sip_transport_tcp::{TcpConfig, TcpTransport};
    TcpTransport::bind(TcpConfig::default().with_bind(addr.into())).await
}

/// A TLS listener on `addr` with the certificate chain and key in these PEM files. Outbound
/// connections verify servers against the webpki roots.
///
/// ```no_run
/// # async fn run() -> sip_transport::Result<()> {
/// let (tls, events) =
///     sip_transport::bind_tls(([0, 0, 0, 0], 5061), "/etc/sip/cert.pem", "/etc/sip/key.pem")
///         .await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tls")]
pub async fn bind_tls(
    addr: impl Into<SocketAddr>,
    cert_chain_pem: impl Into<PathBuf>,
    key_pem: impl Into<PathBuf>,
) -> Result<(
    Arc<sip_transport_tls::TlsTransport>,
    Receiver<TransportEvent>,
)> {
    use sip_transport_tls::{TlsConfig, TlsTransport};
    let config = TlsConfig::default()
        .with_bind(addr.into())
        .with_certificate_files(cert_chain_pem, key_pem);
    TlsTransport::bind(config).await
}

/// A plain WebSocket (`ws`) listener on `addr`, requiring the `sip` subprotocol (RFC 7118).
#[cfg(feature = "ws")]
pub async fn bind_ws(
    addr: impl Into<SocketAddr>,
) -> Result<(Arc<sip_transport_ws::WsTransport>, Receiver<TransportEvent>)> {
    use sip_transport_ws::{WsConfig, WsTransport};
    WsTransport::bind(WsConfig::new(addr.into()))
}

/// A secure WebSocket (`wss`) listener on `addr` with the certificate chain and key in these
/// PEM files (features `ws` and `tls`: the TLS crate loads them).
#[cfg(all(feature = "ws", feature = "tls"))]
pub async fn bind_wss(
    addr: impl Into<SocketAddr>,
    cert_chain_pem: impl Into<PathBuf>,
    key_pem: impl Into<PathBuf>,
) -> Result<(Arc<sip_transport_ws::WsTransport>, Receiver<TransportEvent>)> {
    use sip_transport_api::Error;
    use sip_transport_tls::TlsConfig;
    use sip_transport_ws::{WsConfig, WsTransport};
    let server = TlsConfig::default()
        .with_certificate_files(cert_chain_pem, key_pem)
        .build_server_config()?
        .ok_or_else(|| Error::InvalidConfig {
            reason: "no server certificate for the wss listener".to_owned(),
        })?;
    WsTransport::bind(WsConfig::new(addr.into()).with_server_tls(server))
}
