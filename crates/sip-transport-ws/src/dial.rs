//! Outbound connections: TCP connect (within `Limits::connect_timeout`; DSCP mark and TCP
//! keepalive set before the SYN), then TLS for `wss`
//! and the WebSocket upgrade asking for `sip` (both within `Limits::handshake_timeout`), then
//! the driver. Concurrent senders to the same new destination share one dial: the first one
//! spawns it, the others wait for its outcome.
//!
//! Failures map onto the api's `Error`: connect errors and timeouts as such, TLS failures as
//! `TlsCertificate` (final) or `TlsHandshake`, a refused upgrade as `Error::Connect` naming
//! the HTTP status, and a handshake past its time as `HandshakeTimeout`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tracing::{Instrument, debug, debug_span};

use sip_transport_api::stats::inc;
use sip_transport_api::{Destination, Direction, Error, FlowId, Result};
use sip_transport_tls::map_handshake_error;

use crate::WsScheme;
use crate::connection::{ConnInfo, drive};
use crate::registry::{DialKey, DialState, Entry, Refused, Route};
use crate::shared::Shared;
use crate::stream::WsIo;
use crate::upgrade::{client_request, host_of};
use crate::watched_io::WatchedIo;

/// An open flow to `dest` over `scheme`: an existing one that serves it, the one a concurrent
/// dial is opening, or a new one.
pub(crate) async fn flow_to(
    shared: &Arc<Shared>,
    dest: &Destination,
    scheme: WsScheme,
) -> Result<FlowId> {
    let mut rx = match shared.registry.route(dest, scheme) {
        Route::Open(s) => return Ok(s.flow),
        Route::Wait(rx) => rx,
        Route::Dial(tx) => {
            let rx = tx.subscribe();
            let key = DialKey::new(dest, scheme);
            let flow = FlowId::next();
            let span = debug_span!("ws_conn", %flow, peer = %dest.addr, dir = "out");
            // Spawned, so that a caller giving up does not abort a dial others wait for.
            tokio::spawn(dial(shared.clone(), key, dest.clone(), flow, tx).instrument(span));
            rx
        }
    };
    let state = rx
        .wait_for(Option::is_some)
        .await
        .map_err(|_| Error::Connect {
            peer: dest.addr,
            source: io::Error::other("the dial ended without a result"),
        })?;
    match state.as_ref() {
        Some(Ok(flow)) => Ok(*flow),
        Some(Err(e)) => Err(duplicate(e, dest.addr)),
        None => Err(Error::TransportClosed),
    }
}

async fn dial(
    shared: Arc<Shared>,
    key: DialKey,
    dest: Destination,
    flow: FlowId,
    done: watch::Sender<DialState>,
) {
    let mut slot = match shared.registry.reserve_outbound() {
        Ok(s) => s,
        Err(Refused::Total(limit) | Refused::PerIp(limit)) => {
            shared.registry.dial_failed(&key);
            let _ = done.send(Some(Err(Arc::new(Error::ConnectionLimit { limit }))));
            return;
        }
    };
    let mut shutdown = shared.shutdown.subscribe();
    let outcome = if *shutdown.borrow_and_update() {
        Err(Error::TransportClosed)
    } else {
        tokio::select! {
            _ = shutdown.changed() => Err(Error::TransportClosed),
            // Boxed: the handshake state is freed before the connection runs.
            r = Box::pin(open(&shared, &dest, key.scheme)) => r,
        }
    };
    let (ws, local) = match outcome {
        Ok(x) => x,
        Err(e) => {
            debug!(error = %e, "dial failed");
            shared.registry.dial_failed(&key);
            let _ = done.send(Some(Err(Arc::new(e))));
            return;
        }
    };
    inc(&shared.counters.connections_dialed);
    let (tx, rx) = crate::write_queue::channel(&shared.limits);
    shared.registry.register_dialed(
        &mut slot,
        &key,
        flow,
        Entry {
            tx,
            peer: dest.addr,
            scheme: key.scheme,
            direction: Direction::Outbound,
            server_name: dest.server_name.clone(),
            resource: dest.resource.clone(),
        },
    );
    let _ = done.send(Some(Ok(flow)));
    drop(done);
    let info = ConnInfo {
        flow,
        peer: dest.addr,
        local,
        kind: key.scheme.kind(),
        direction: Direction::Outbound,
    };
    debug!("WebSocket connection opened");
    drive(ws, info, rx, slot, shared).await;
}

type Opened = (crate::connection::WsStream, SocketAddr);

async fn open(shared: &Shared, dest: &Destination, scheme: WsScheme) -> Result<Opened> {
    let peer = dest.addr;
    let limits = &shared.limits;
    // Build the request first: a bad name fails before any packet is sent.
    let request = client_request(dest, scheme, shared.client_origin.as_deref())
        .map_err(|reason| Error::InvalidDestination { reason })?;
    let tcp = match tokio::time::timeout(limits.connect_timeout, connect(shared, peer)).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => return Err(Error::Connect { peer, source }),
        Err(_) => {
            inc(&shared.counters.timeouts);
            return Err(Error::ConnectTimeout {
                peer,
                after: limits.connect_timeout,
            });
        }
    };
    let _ = tcp.set_nodelay(true);
    // As on accept: the kernel's send buffer is timed by the write timeout too.
    sip_transport_tcp::bound_unacked(
        &tcp,
        limits.write_timeout,
        shared.socket_options.tcp_keepalive.as_ref(),
    );
    let local = tcp
        .local_addr()
        .map_err(|source| Error::Io { peer, source })?;
    let handshake = async {
        let io = match scheme {
            WsScheme::Ws => WsIo::Plain(tcp),
            WsScheme::Wss => {
                let host = host_of(dest);
                let name =
                    ServerName::try_from(host.clone()).map_err(|e| Error::InvalidDestination {
                        reason: format!("invalid TLS server name {host:?}: {e}"),
                    })?;
                let connector = tokio_rustls::TlsConnector::from(shared.client_tls.clone());
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| map_handshake_error(e, peer, Some(&host)))?;
                WsIo::Client(Box::new(tls))
            }
        };
        // Watched from the first byte on (the scanner skips the HTTP response head).
        let io = WatchedIo::new(io);
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(request, io, Some(shared.ws_config))
                .await
                .map_err(|e| Error::Connect {
                    peer,
                    source: upgrade_error(e),
                })?;
        Ok::<_, Error>(ws)
    };
    match tokio::time::timeout(limits.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => Ok((ws, local)),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            inc(&shared.counters.timeouts);
            Err(Error::HandshakeTimeout {
                peer,
                after: limits.handshake_timeout,
            })
        }
    }
}

/// A TCP connection to `peer` with the DSCP mark and keepalive set before the SYN.
async fn connect(shared: &Shared, peer: SocketAddr) -> io::Result<TcpStream> {
    let socket = if peer.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    (shared.socket_options).apply(socket2::SockRef::from(&socket), peer.is_ipv6())?;
    socket.connect(peer).await
}

/// A failed WebSocket upgrade as an I/O error that says what the server answered.
fn upgrade_error(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e {
        WsError::Io(io) => io,
        WsError::Http(resp) => io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("WebSocket upgrade refused: HTTP {}", resp.status()),
        ),
        other => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket upgrade failed: {other}"),
        ),
    }
}

/// A copy of a dial error for each waiter (the api's `Error` is not `Clone`; OS errors keep
/// their kind and text). Variants a dial does not produce become `Error::Connect`.
fn duplicate(e: &Error, peer: SocketAddr) -> Error {
    let copy_io = |s: &io::Error| io::Error::new(s.kind(), s.to_string());
    match e {
        Error::Connect { peer, source } => Error::Connect {
            peer: *peer,
            source: copy_io(source),
        },
        Error::Io { peer, source } => Error::Io {
            peer: *peer,
            source: copy_io(source),
        },
        Error::ConnectTimeout { peer, after } => Error::ConnectTimeout {
            peer: *peer,
            after: *after,
        },
        Error::HandshakeTimeout { peer, after } => Error::HandshakeTimeout {
            peer: *peer,
            after: *after,
        },
        Error::TlsCertificate { peer, reason } => Error::TlsCertificate {
            peer: *peer,
            reason: reason.clone(),
        },
        Error::TlsHandshake { peer, source } => Error::TlsHandshake {
            peer: *peer,
            source: source.to_string().into(),
        },
        Error::ConnectionLimit { limit } => Error::ConnectionLimit { limit: *limit },
        Error::InvalidDestination { reason } => Error::InvalidDestination {
            reason: reason.clone(),
        },
        Error::TransportClosed => Error::TransportClosed,
        other => Error::Connect {
            peer,
            source: io::Error::other(other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_transport_api::CertificateProblem;

    #[test]
    fn duplicates_keep_variant_and_kind() {
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let e = Error::Connect {
            peer,
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(matches!(duplicate(&e, peer), Error::Connect { source, .. }
            if source.kind() == io::ErrorKind::ConnectionRefused));
        let e = Error::TlsCertificate {
            peer,
            reason: CertificateProblem::Expired,
        };
        assert!(!duplicate(&e, peer).is_recoverable());
    }

    /// What a failed `wss` handshake reports, through the TLS crate's mapping (this test came
    /// with it from the crate's former copy of that mapping).
    #[test]
    fn tls_certificate_errors_are_final_others_not() {
        use rustls::CertificateError;
        let peer: SocketAddr = "127.0.0.1:443".parse().expect("addr");
        let wrapped = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let e = map_handshake_error(
            wrapped(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            peer,
            Some("localhost"),
        );
        assert!(matches!(
            e,
            Error::TlsCertificate {
                reason: CertificateProblem::UnknownIssuer,
                ..
            }
        ));
        assert!(!e.is_recoverable());
        let e = map_handshake_error(
            wrapped(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
            peer,
            Some("a.example"),
        );
        assert!(e.to_string().contains("a.example"), "{e}");
        let e = map_handshake_error(wrapped(rustls::Error::HandshakeNotComplete), peer, None);
        assert!(matches!(e, Error::TlsHandshake { .. }) && e.is_recoverable());
        let e = map_handshake_error(io::Error::from(io::ErrorKind::ConnectionReset), peer, None);
        assert!(matches!(e, Error::Io { .. }));
    }
}
