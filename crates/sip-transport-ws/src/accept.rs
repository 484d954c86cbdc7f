//! The listener: accepts TCP connections, applies the connection limits, runs the TLS and
//! WebSocket handshakes (both inside `Limits::handshake_timeout`) and hands each upgraded
//! connection to its driver.
//!
//! Refused connections are counted; failed TLS handshakes and handshake timeouts are also
//! reported as `Error` events, but only when the event queue has room: a scan of the port
//! must not hold up the application. A refused WebSocket upgrade (400/403/404) is the HTTP
//! client's business and is only counted.
//!
//! With PROXY protocol on, as on the TCP and TLS listeners: a connection from an untrusted
//! source is refused at accept (counted, no event), and the header is read first, inside the
//! handshake timeout, before TLS and the upgrade; a missing or bad header is refused and
//! reported. The client address it carries becomes the connection's peer. The total limit is
//! applied at accept; the per-IP limit only once the header is read, to the client's address
//! (counting the balancer would put every client behind it in one per-IP budget).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, debug, debug_span, warn};

use sip_transport_api::stats::inc;
use sip_transport_api::{Direction, Error, FlowId, TransportEvent};
use sip_transport_tls::map_handshake_error;

use crate::connection::{ConnInfo, drive};
use crate::registry::{Entry, Slot, canonical};
use crate::shared::Shared;
use crate::stream::WsIo;
use crate::watched_io::WatchedIo;

/// Accepts until the transport closes.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, local: SocketAddr) {
    let mut shutdown = shared.shutdown.subscribe();
    if *shutdown.borrow_and_update() {
        return;
    }
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            // A dual-stack socket reports IPv4 clients as `::ffff:a.b.c.d`: plain IPv4 in
            // every event, as the TCP and UDP transports report them.
            Ok((tcp, peer)) => (tcp, canonical(peer)),
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Some(proxy) = &shared.proxy
            && !proxy.is_trusted(peer.ip().to_canonical())
        {
            // Only a trusted balancer may name another client address; anyone else is refused
            // rather than served under their own address, so a misrouted client shows up.
            debug!(%peer, "PROXY protocol: source not trusted; connection refused");
            inc(&shared.counters.connections_refused);
            continue;
        }
        // Behind a PROXY-protocol balancer every connection comes from the balancer: only the
        // total is counted here, and the per-IP limit once the header names the client.
        let reserved = match shared.proxy {
            None => shared.registry.reserve_inbound(peer.ip()),
            Some(_) => shared.registry.reserve_inbound_total(),
        };
        let slot = match reserved {
            Ok(s) => s,
            Err(limit) => {
                debug!(%peer, ?limit, "connection refused: limit reached");
                inc(&shared.counters.connections_refused);
                continue;
            }
        };
        let Ok(permit) = shared.handshakes.clone().try_acquire_owned() else {
            debug!(%peer, "connection refused: too many handshakes in progress");
            inc(&shared.counters.connections_refused);
            continue;
        };
        let flow = FlowId::next();
        let span = debug_span!(
            "ws_conn", %flow, %peer, dir = "in", client = tracing::field::Empty,
        );
        tokio::spawn(
            accept_one(tcp, peer, local, flow, slot, permit, shared.clone()).instrument(span),
        );
    }
}

async fn accept_one(
    mut tcp: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    flow: FlowId,
    mut slot: Slot,
    permit: OwnedSemaphorePermit,
    shared: Arc<Shared>,
) {
    let _ = tcp.set_nodelay(true);
    // Bytes the kernel holds for a peer that stopped reading are timed by the write timeout
    // too, as on TCP: the connection's own stall timer sees only its queue.
    sip_transport_tcp::bound_unacked(
        &tcp,
        shared.limits.write_timeout,
        shared.socket_options.tcp_keepalive.as_ref(),
    );
    let ipv6 = local.is_ipv6();
    if let Err(e) = (shared.socket_options).apply_accepted(socket2::SockRef::from(&tcp), ipv6) {
        debug!(error = %e, "DSCP or TCP keepalive not set on an accepted socket");
    }
    let local = canonical(tcp.local_addr().unwrap_or(local));
    let mut shutdown = shared.shutdown.subscribe();
    let policy = shared.policy.clone();
    // Boxed: the handshake state (TLS session setup, HTTP buffers) is freed once done.
    let handshake = Box::pin(async {
        // PROXY protocol first: its header precedes the TLS ClientHello and the HTTP request.
        let client = match &shared.proxy {
            None => peer,
            Some(proxy) => {
                let client = sip_transport_tcp::proxy::read_header(&mut tcp, peer, proxy)
                    .await
                    .map_err(|e| {
                        debug!(error = %e, "PROXY header refused");
                        report(&shared, peer, e);
                    })?;
                // The per-IP limit counts the client, not the balancer (the slot, dropped on
                // return, releases the total it holds).
                shared.registry.charge_ip(&mut slot, client.ip()).map_err(
                    |limit| debug!(%client, ?limit, "connection refused: limit reached"),
                )?;
                client
            }
        };
        if client != peer {
            tracing::Span::current().record("client", tracing::field::display(client));
        }
        let io = match &shared.server_tls {
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                let stream = acceptor.accept(tcp).await.map_err(|e| {
                    debug!(error = %e, "TLS handshake failed");
                    report(&shared, peer, map_handshake_error(e, peer, None));
                })?;
                WsIo::Server(Box::new(stream))
            }
            None => WsIo::Plain(tcp),
        };
        #[allow(clippy::result_large_err)]
        let check = move |req: &_, resp| policy.check(req, resp);
        // Watched for frames once the handshake is done: tungstenite refuses bytes after the
        // request, so everything read until then was the request, whatever its line ends.
        let io = WatchedIo::new(io);
        tokio_tungstenite::accept_hdr_async_with_config(io, check, Some(shared.ws_config))
            .await
            .map(|mut ws| {
                ws.get_mut().start_frames();
                (ws, client)
            })
            .map_err(|e| debug!(error = %e, "WebSocket upgrade refused or failed"))
    });
    let result = tokio::select! {
        _ = shutdown.changed() => return,
        r = tokio::time::timeout(shared.limits.handshake_timeout, handshake) => r,
    };
    drop(permit);
    // From here on the peer is the client (the PROXY header's address, if any).
    let (ws, client) = match result {
        Ok(Ok(x)) => x,
        Ok(Err(())) => {
            inc(&shared.counters.connections_refused);
            return;
        }
        Err(_elapsed) => {
            debug!("handshake timed out");
            inc(&shared.counters.timeouts);
            inc(&shared.counters.connections_refused);
            let after = shared.limits.handshake_timeout;
            report(&shared, peer, Error::HandshakeTimeout { peer, after });
            return;
        }
    };
    inc(&shared.counters.connections_accepted);
    let scheme = if shared.server_tls.is_some() {
        crate::WsScheme::Wss
    } else {
        crate::WsScheme::Ws
    };
    let (tx, rx) = crate::write_queue::channel(&shared.limits);
    shared.registry.register(
        &mut slot,
        flow,
        Entry {
            tx,
            peer: client,
            scheme,
            direction: Direction::Inbound,
            server_name: None,
            resource: None,
        },
    );
    let info = ConnInfo {
        flow,
        peer: client,
        local,
        kind: scheme.kind(),
        direction: Direction::Inbound,
    };
    debug!("WebSocket connection accepted");
    drive(ws, info, rx, slot, shared).await;
}

/// Reports a handshake failure if the application keeps up; dropped otherwise.
fn report(shared: &Shared, peer: SocketAddr, error: Error) {
    let _ = shared.events.try_send(TransportEvent::Error {
        peer: Some(peer),
        flow: None,
        error,
    });
}
