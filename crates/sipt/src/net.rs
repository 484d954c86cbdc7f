//! Binding transports by kind and finding the local address to use towards a target.
//!
//! The one place in `sipt` that knows each protocol crate's constructor.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sip_transport::tcp::{TcpConfig, TcpTransport};
use sip_transport::udp::{UdpConfig, UdpTransport};
use sip_transport::{Limits, Transport, TransportEvent, TransportKind};
use tokio::sync::mpsc::Receiver;

/// A bound transport and its events.
pub(crate) type Bound = (Arc<dyn Transport>, Receiver<TransportEvent>);

/// Binds a transport of `kind` on `addr` with `limits`.
pub(crate) async fn bind(
    kind: TransportKind,
    addr: SocketAddr,
    limits: Limits,
) -> Result<Bound, String> {
    match kind {
        TransportKind::Udp => {
            let cfg = UdpConfig::default().with_bind(addr).with_limits(limits);
            let (t, rx) = UdpTransport::bind(cfg).map_err(|e| e.to_string())?;
            Ok((t as Arc<dyn Transport>, rx))
        }
        TransportKind::Tcp => {
            let cfg = TcpConfig::default().with_bind(addr).with_limits(limits);
            let (t, rx) = TcpTransport::bind(cfg).await.map_err(|e| e.to_string())?;
            Ok((t as Arc<dyn Transport>, rx))
        }
        other => Err(format!("{other} is not available in this build yet")),
    }
}

/// The local IP the OS would use to reach `dest` (no packet is sent).
pub(crate) fn local_ip_towards(dest: SocketAddr) -> IpAddr {
    let unspecified: SocketAddr = if dest.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    std::net::UdpSocket::bind(unspecified)
        .and_then(|s| {
            s.connect(dest)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(unspecified.ip())
}

/// Formats an address for a Via sent-by (IPv6 bracketed).
pub(crate) fn sent_by(addr: SocketAddr) -> String {
    addr.to_string()
}
