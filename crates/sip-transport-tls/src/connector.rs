//! `TlsConnector`: the TLS side of the TCP crate's stream machinery. It runs the rustls
//! handshake on sockets the machinery accepted or dialed, and reads the peer's certificate
//! identity once per connection.
//!
//! Framing, pooling, limits, keepalive, the handshake timeout and the cap on concurrent
//! handshakes are all the machinery's (`sip_transport_tcp::StreamTransport`); this file only
//! knows TLS: which server name to send and verify (RFC 5922 §7.2: the SIP URI host, else the
//! destination's IP address), and how rustls failures map to typed errors.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use rustls_pki_types::ServerName;
use sip_transport_api::{Destination, Error, PeerIdentity, ReceivedMessage, Result, TransportKind};
use sip_transport_tcp::StreamConnector;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsStream};

use crate::TlsConfig;
use crate::handshake_error::map_io_error;
use crate::identity::peer_identity;
use crate::sip_names::covers;

/// Runs TLS handshakes for a [`TlsTransport`](crate::TlsTransport): server side on accepted
/// connections, client side (SNI and verification from `Destination::server_name`) on dialed
/// ones. Built from a [`TlsConfig`] at bind.
#[derive(Clone)]
pub struct TlsConnector {
    acceptor: Option<TlsAcceptor>,
    client: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server", &self.acceptor.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// Builds both sides from `config` (reads certificate files now). A listening config needs
    /// a server identity.
    pub fn new(config: &TlsConfig) -> Result<Self> {
        let server = config.build_server_config()?;
        if server.is_none() && config.stream.listen {
            return Err(Error::InvalidConfig {
                reason: "a TLS listener needs a server certificate \
                         (with_certificate_files / with_certificate_pem / with_server_config), \
                         or use TlsConfig::client() for client-only"
                    .into(),
            });
        }
        Ok(Self::from_rustls(server, config.build_client_config()?))
    }

    /// Builds a connector from rustls configurations made elsewhere.
    pub fn from_rustls(
        server: Option<Arc<rustls::ServerConfig>>,
        client: Arc<rustls::ClientConfig>,
    ) -> Self {
        TlsConnector {
            acceptor: server.map(TlsAcceptor::from),
            client: tokio_rustls::TlsConnector::from(client),
        }
    }
}

/// The name to send as SNI and to verify the certificate against: the SIP URI host when there
/// is one (RFC 5922 §7.2), an IP literal as an IP address, else the destination address.
pub(crate) fn server_name(dest: &Destination) -> Result<ServerName<'static>> {
    match dest.server_name.as_deref() {
        Some(name) => parse_server_name(name),
        None => Ok(ServerName::IpAddress(dest.addr.ip().into())),
    }
}

/// A `Destination::server_name` as a TLS server name: an IP literal (bracketed or not) as an IP
/// address, else a DNS name without its trailing dot.
fn parse_server_name(name: &str) -> Result<ServerName<'static>> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.trim_end_matches('.').to_owned()).map_err(|e| {
        Error::InvalidDestination {
            reason: format!("{name:?} is not a valid TLS server name: {e}"),
        }
    })
}

#[async_trait]
impl StreamConnector for TlsConnector {
    type Stream = TlsStream<TcpStream>;
    type PeerInfo = Option<Arc<PeerIdentity>>;

    fn kind(&self) -> TransportKind {
        TransportKind::Tls
    }

    async fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> Result<Self::Stream> {
        let acceptor = self.acceptor.as_ref().ok_or_else(|| Error::InvalidConfig {
            reason: "no TLS server certificate".into(),
        })?;
        acceptor
            .accept(tcp)
            .await
            .map(TlsStream::Server)
            .map_err(|e| map_io_error(e, peer, None))
    }

    async fn connect(&self, tcp: TcpStream, dest: &Destination) -> Result<Self::Stream> {
        let name = server_name(dest)?;
        let expected = name.to_str().into_owned();
        self.client
            .connect(name, tcp)
            .await
            .map(TlsStream::Client)
            .map_err(|e| map_io_error(e, dest.addr, Some(&expected)))
    }

    fn peer_info(&self, stream: &Self::Stream) -> Self::PeerInfo {
        let (_, session) = stream.get_ref();
        let leaf = session.peer_certificates()?.first()?;
        Some(Arc::new(peer_identity(leaf.as_ref())))
    }

    /// A connection serves `name` when the peer's certificate covers it by the rules our
    /// handshake verifies a server name with (one implementation, shared with
    /// [`SipServerCertVerifier`](crate::SipServerCertVerifier)): an IP literal must equal an
    /// iPAddress SAN; a DNS name must equal, ASCII case-insensitively, a SIP domain identity —
    /// the host of a `sip:` URI SAN without user part, else a dNSName SAN — and never matches
    /// a wildcard (RFC 5922 §7.1, §7.2). RFC 5923 §6: a connection, inbound ones included, is
    /// reused only for names the peer's certificate covers. No certificate (an inbound peer
    /// without client auth), or a name that is no valid TLS server name: false, so the
    /// transport dials and verifies.
    fn serves_name(&self, info: &Self::PeerInfo, name: &str) -> bool {
        match (info, parse_server_name(name)) {
            (Some(identity), Ok(name)) => covers(identity, &name),
            _ => false,
        }
    }

    fn annotate(&self, info: &Self::PeerInfo, message: &mut ReceivedMessage) {
        message.peer_identity = info.clone();
    }

    fn stream_error(&self, peer: SocketAddr, error: std::io::Error) -> Error {
        // After the handshake: a TLS 1.3 server refusing our client certificate says so here.
        map_io_error(error, peer, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_destination() {
        let addr: SocketAddr = "192.0.2.7:5061".parse().expect("addr");
        let d = Destination::new(addr);
        assert_eq!(
            server_name(&d).expect("ip"),
            ServerName::IpAddress(IpAddr::from([192, 0, 2, 7]).into())
        );
        let d = Destination::new(addr).with_server_name("sip.example.com.");
        assert_eq!(server_name(&d).expect("dns").to_str(), "sip.example.com");
        let d = Destination::new(addr).with_server_name("[::1]");
        assert!(matches!(server_name(&d), Ok(ServerName::IpAddress(_))));
        let d = Destination::new(addr).with_server_name("bad name!");
        assert!(matches!(
            server_name(&d),
            Err(Error::InvalidDestination { .. })
        ));
    }
}
