//! Opening TCP sockets: the listening socket and outbound connections (socket2 options,
//! connect timeout, `TCP_NODELAY`, DSCP and TCP keepalive), and how one dial's error is handed to every sender that
//! waited on it. No SIP here; the connector and the driver take over once the socket is up.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sip_transport_api::{Error, Result};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::StreamSocketOptions;

/// Binds and listens on `addr` with `SO_REUSEADDR` (restarts do not wait for TIME_WAIT),
/// `backlog` and `options` (which accepted sockets inherit, and which mark the SYN-ACKs).
/// Public for the other transports on TCP (WebSocket), so every listener is made alike.
pub fn listen(
    addr: SocketAddr,
    backlog: u32,
    options: &StreamSocketOptions,
) -> Result<TcpListener> {
    let bind_err = |source| Error::Bind { addr, source };
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(bind_err)?;
    sock.set_reuse_address(true).map_err(bind_err)?;
    options
        .apply(socket2::SockRef::from(&sock), addr.is_ipv6())
        .map_err(bind_err)?;
    sock.set_nonblocking(true).map_err(bind_err)?;
    sock.bind(&addr.into()).map_err(bind_err)?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    sock.listen(backlog).map_err(bind_err)?;
    TcpListener::from_std(sock.into()).map_err(bind_err)
}

/// Connects to `peer` within `timeout`, from `local_ip` when given, with `options` set
/// before the SYN.
pub(crate) async fn connect(
    peer: SocketAddr,
    local_ip: Option<IpAddr>,
    nodelay: bool,
    options: &StreamSocketOptions,
    timeout: Duration,
) -> Result<TcpStream> {
    let err = |source| Error::Connect { peer, source };
    let sock =
        Socket::new(Domain::for_address(peer), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    sock.set_tcp_nodelay(nodelay).map_err(err)?;
    options
        .apply(socket2::SockRef::from(&sock), peer.is_ipv6())
        .map_err(err)?;
    sock.set_nonblocking(true).map_err(err)?;
    if let Some(ip) = local_ip {
        sock.bind(&SocketAddr::new(ip, 0).into()).map_err(err)?;
    }
    let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(sock));
    match tokio::time::timeout(timeout, sock.connect(peer)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(Error::Connect { peer, source }),
        Err(_) => Err(Error::ConnectTimeout {
            peer,
            after: timeout,
        }),
    }
}

/// Bounds how long bytes already handed to the kernel may wait for the peer: on Linux,
/// `TCP_USER_TIMEOUT` = `write_timeout`, so a connection whose sent data stays unacknowledged,
/// or whose peer keeps a zero window (Linux 5.11+), is aborted with `ETIMEDOUT`. The driver's
/// own write-stall timer only sees its outbox; on loopback the kernel's autotuned send buffer
/// takes megabytes, so a peer that never reads could otherwise hold accepted messages (and the
/// connection) until it closes. Set after connect: it must not shorten the connect timeout.
///
/// The same option decides when kernel TCP keepalive gives up (it overrides the probe count):
/// with `keepalive`'s timing all set, the bound is raised to its
/// [`detection_time`](crate::TcpKeepaliveConfig::detection_time) when that is longer, so
/// that every probe is tried before an idle connection is reset. Public for the other
/// transports on TCP (WebSocket), which have the same blind spot.
pub fn bound_unacked(
    tcp: &TcpStream,
    write_timeout: Duration,
    keepalive: Option<&crate::TcpKeepaliveConfig>,
) {
    let bound = keepalive
        .and_then(crate::TcpKeepaliveConfig::detection_time)
        .map_or(write_timeout, |d| d.max(write_timeout));
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(bound)) {
        tracing::debug!(error = %e, "TCP_USER_TIMEOUT not set");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
    let _ = (tcp, bound);
}

/// A copy of a dial error for each sender that waited on the same dial (`Error` is not
/// `Clone`: OS errors keep their kind and text). Variants a dial does not produce become
/// `Error::Connect` with the original text.
pub(crate) fn duplicate(e: &Error, peer: SocketAddr) -> Error {
    let copy_io = |s: &io::Error| io::Error::new(s.kind(), s.to_string());
    match e {
        Error::Connect { peer, source } => Error::Connect {
            peer: *peer,
            source: copy_io(source),
        },
        Error::ConnectTimeout { peer, after } => Error::ConnectTimeout {
            peer: *peer,
            after: *after,
        },
        Error::Io { peer, source } => Error::Io {
            peer: *peer,
            source: copy_io(source),
        },
        Error::ConnectionLimit { limit } => Error::ConnectionLimit { limit: *limit },
        // A connector's (TLS) errors keep their type: certificate problems are final.
        Error::TlsCertificate { peer, reason } => Error::TlsCertificate {
            peer: *peer,
            reason: reason.clone(),
        },
        Error::TlsHandshake { peer, source } => Error::TlsHandshake {
            peer: *peer,
            source: source.to_string().into(),
        },
        Error::HandshakeTimeout { peer, after } => Error::HandshakeTimeout {
            peer: *peer,
            after: *after,
        },
        Error::TransportClosed => Error::TransportClosed,
        Error::InvalidDestination { reason } => Error::InvalidDestination {
            reason: reason.clone(),
        },
        Error::AddressFamilyMismatch {
            transport,
            local,
            peer,
        } => Error::AddressFamilyMismatch {
            transport: *transport,
            local: *local,
            peer: *peer,
        },
        other => Error::Connect {
            peer,
            source: io::Error::other(other.to_string()),
        },
    }
}

/// The address as the pool keys it: IPv4-mapped IPv6 (`::ffff:a.b.c.d`, seen on dual-stack
/// listeners) becomes plain IPv4, so one peer has one key.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_keep_kind() {
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let e = Error::Connect {
            peer,
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        match duplicate(&e, peer) {
            Error::Connect { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused)
            }
            other => panic!("{other:?}"),
        }
        let cert = Error::TlsCertificate {
            peer,
            reason: sip_transport_api::CertificateProblem::UnknownIssuer,
        };
        assert!(matches!(
            duplicate(&cert, peer),
            Error::TlsCertificate { .. }
        ));
        let t = Error::HandshakeTimeout {
            peer,
            after: Duration::from_secs(1),
        };
        assert!(matches!(
            duplicate(&t, peer),
            Error::HandshakeTimeout { .. }
        ));
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5060".parse().expect("addr");
        assert_eq!(canonical(mapped), "10.0.0.1:5060".parse().expect("addr"));
    }

    #[tokio::test]
    async fn refused_and_listen() {
        let opts = StreamSocketOptions::default();
        let l = listen("127.0.0.1:0".parse().expect("addr"), 16, &opts).expect("listen");
        let addr = l.local_addr().expect("local");
        drop(l);
        let e = connect(addr, None, true, &opts, Duration::from_secs(2))
            .await
            .expect_err("nobody listens");
        assert!(matches!(e, Error::Connect { .. }), "{e:?}");
        assert!(e.is_recoverable());
    }

    /// `TCP_USER_TIMEOUT` on a real connection: the write timeout, raised to the keepalive's
    /// detection time when all its timing is set (so Linux tries every probe), never lowered.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_kernel_write_bound_leaves_room_for_every_keepalive_probe() {
        use crate::TcpKeepaliveConfig;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let tcp = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let secs = Duration::from_secs;
        let nat = TcpKeepaliveConfig::new()
            .with_idle(secs(60))
            .with_interval(secs(15))
            .with_retries(4);
        let quick = TcpKeepaliveConfig::new()
            .with_idle(secs(1))
            .with_interval(secs(1))
            .with_retries(2);
        for (keepalive, want) in [
            (None, secs(10)),
            (Some(TcpKeepaliveConfig::new()), secs(10)),
            (
                Some(TcpKeepaliveConfig::new().with_idle(secs(60))),
                secs(10),
            ),
            (Some(nat), secs(120)),
            (Some(quick), secs(10)),
        ] {
            bound_unacked(&tcp, secs(10), keepalive.as_ref());
            let got = socket2::SockRef::from(&tcp)
                .tcp_user_timeout()
                .expect("TCP_USER_TIMEOUT");
            assert_eq!(got, Some(want), "{keepalive:?}");
        }
    }
}
