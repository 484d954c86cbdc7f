//! The accept loop: takes connections from the listening socket, applies the connection limits
//! (total and per remote IP) before anything else (PROXY protocol: see below), and starts one
//! task per accepted connection, which runs the connector's server side under the handshake
//! timeout and concurrency limit (connections over the limit are refused and counted, never
//! queued: a flood of silent peers must not delay everyone else's handshake), then the driver.
//!
//! With PROXY protocol on, a connection from an untrusted source is refused at accept, and the
//! header is read (under the same concurrency limit) before the connector's handshake; the
//! client address it carries becomes the connection's peer. The total limit is applied at
//! accept, the per-IP limit only once the header is read, to the client's address: counting
//! the balancer would put every client behind it in one per-IP budget.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::stats::inc;
use sip_transport_api::{Direction, Error};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use crate::StreamConnector;
use crate::connection::Connection;
use crate::dial::canonical;
use crate::driver::Driver;
use crate::pool::Slot;
use crate::tasks::TaskToken;
use crate::transport::{Phase, Shared, handshake};

/// Accepts until the transport closes.
pub(crate) async fn run<C: StreamConnector>(
    shared: Arc<Shared<C>>,
    listener: TcpListener,
    _token: TaskToken,
) {
    tracing::debug!("listening");
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shared.reached(Phase::Draining) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(v) => v,
            Err(e) if is_resource_error(&e) => {
                // Out of descriptors or memory: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shared.reached(Phase::Draining) => break,
                }
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        let peer = canonical(peer);
        if let Some(proxy) = &shared.config.proxy_protocol
            && !proxy.is_trusted(peer.ip())
        {
            // Only a trusted balancer may name another client address; anyone else is refused
            // rather than served under their own address, so a misrouted client shows up.
            inc(&shared.counters.connections_refused);
            tracing::debug!(%peer, "PROXY protocol: source not trusted; connection refused");
            drop(tcp);
            continue;
        }
        // Behind a PROXY-protocol balancer every connection comes from the balancer: only the
        // total is counted here, and the per-IP limit once the header names the client.
        let reserved = match shared.config.proxy_protocol {
            None => shared.pool.reserve_inbound(peer.ip()),
            Some(_) => shared.pool.reserve_inbound_total(),
        };
        let slot = match reserved {
            Ok(slot) => slot,
            Err(why) => {
                // Refused before reading a byte; the established connections are untouched.
                inc(&shared.counters.connections_refused);
                tracing::debug!(%peer, ?why, "connection refused");
                drop(tcp);
                continue;
            }
        };
        let span = tracing::info_span!(
            "sip_conn", kind = %shared.kind, peer = %peer, dir = "in",
            flow = tracing::field::Empty, client = tracing::field::Empty,
        );
        let task = |token| serve(Arc::clone(&shared), tcp, peer, slot, token).instrument(span);
        shared.tasks.spawn(task);
    }
    tracing::debug!("listener stopped");
}

/// One accepted connection: the connector's server side, then the driver.
/// (An `async` block rather than an `async fn`: the arguments are then stored once in the
/// task, not twice.)
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice in the future; connection tasks must stay small"
)]
fn serve<C: StreamConnector>(
    shared: Arc<Shared<C>>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    mut slot: Slot,
    token: TaskToken,
) -> impl Future<Output = ()> + Send {
    async move {
        let _token = token;
        let _ = tcp.set_nodelay(shared.config.nodelay);
        let ipv6 = shared.config.bind.is_ipv6();
        let accepted = shared.config.socket_options();
        if let Err(e) = accepted.apply_accepted(socket2::SockRef::from(&tcp), ipv6) {
            tracing::debug!(error = %e, "DSCP or TCP keepalive not set on an accepted socket");
        }
        crate::dial::bound_unacked(
            &tcp,
            shared.config.limits.write_timeout,
            shared.config.tcp_keepalive.as_ref(),
        );
        let local = tcp.local_addr().map(canonical).unwrap_or(shared.local);
        let limits = &shared.config.limits;
        let Ok(permit) = Arc::clone(&shared.handshakes).try_acquire_owned() else {
            inc(&shared.counters.connections_refused);
            tracing::debug!(
                limit = limits.max_concurrent_handshakes,
                "too many handshakes in progress; connection refused"
            );
            return;
        };
        // PROXY protocol first: its header precedes the TLS ClientHello (and SIP). Boxed for
        // the same reason as the handshake below.
        let client = match &shared.config.proxy_protocol {
            None => peer,
            Some(proxy) => {
                let read = Box::pin(async {
                    tokio::select! {
                        r = crate::proxy::read_header(&mut tcp, peer, proxy) => r,
                        _ = shared.reached(Phase::Draining) => Err(Error::TransportClosed),
                    }
                })
                .await;
                let client = match read {
                    Ok(client) => client,
                    Err(Error::TransportClosed) => return,
                    Err(e) => {
                        inc(&shared.counters.connections_refused);
                        tracing::debug!(error = %e, "PROXY header refused");
                        shared.report(Some(peer), None, e);
                        return;
                    }
                };
                // The per-IP limit counts the client, not the balancer (the slot, dropped on
                // return, releases the total it holds).
                if let Err(why) = shared.pool.charge_ip(&mut slot, client.ip()) {
                    inc(&shared.counters.connections_refused);
                    tracing::debug!(%client, ?why, "connection refused");
                    return;
                }
                client
            }
        };
        if client != peer {
            tracing::Span::current().record("client", tracing::field::display(client));
        }
        // Boxed: the handshake's state is freed once it is done, instead of sitting in every
        // connection task for the connection's whole life.
        let accepted = Box::pin(async {
        tokio::select! {
            r = handshake(limits.handshake_timeout, peer, shared.connector.accept(tcp, peer)) => r,
            _ = shared.reached(Phase::Draining) => Err(Error::TransportClosed),
        }
    })
    .await;
        drop(permit);
        let stream = match accepted {
            Ok(s) => s,
            Err(Error::TransportClosed) => return,
            Err(e) => {
                inc(&shared.counters.connections_refused);
                if matches!(e, Error::HandshakeTimeout { .. }) {
                    inc(&shared.counters.timeouts);
                }
                tracing::debug!(error = %e, "handshake failed");
                shared.report(Some(peer), None, e);
                return;
            }
        };
        let info = shared.connector.peer_info(&stream);
        let conn = Arc::new(
            Connection::new(client, local, Direction::Inbound, limits)
                .with_peer(Box::new(info), None),
        );
        tracing::Span::current().record("flow", tracing::field::display(conn.flow));
        if !shared.pool.insert(&conn) {
            return; // closed meanwhile
        }
        inc(&shared.counters.connections_accepted);
        inc(&shared.counters.connections_open);
        Driver::new(shared, conn, stream, slot).run().await;
    }
}

fn is_resource_error(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM (Linux numbers; other systems just retry at once).
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) || e.kind() == io::ErrorKind::OutOfMemory
}
