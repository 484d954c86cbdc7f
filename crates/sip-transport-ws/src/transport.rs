//! `WsTransport`: binding, the [`Transport`] implementation (send, send on a flow, close,
//! stats) and the inherent calls that choose `ws` or `wss` per destination.
//!
//! The listener lives in [`crate::accept`], dialing in [`crate::dial`], each connection's
//! I/O in [`crate::connection`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::{Instrument, debug, info_span};

use sip_transport_api::stats::inc;
use sip_transport_api::{
    Counters, Destination, Direction, Error, FlowId, Message, Result, Transport, TransportEvent,
    TransportKind, TransportStats,
};

use crate::shared::Shared;
use crate::upgrade::UpgradePolicy;
use crate::write_queue::Refused;
use crate::{WsConfig, WsScheme, accept, client_tls, dial};

/// SIP over WebSocket (RFC 7118): a `ws` or `wss` listener plus outbound `ws`/`wss` flows.
///
/// Created by [`WsTransport::bind`], which also returns the event receiver. Dropping the last
/// `Arc` stops the listener and every connection without waiting; [`Transport::close`] closes
/// gracefully.
#[derive(Debug)]
pub struct WsTransport {
    shared: Arc<Shared>,
    local: SocketAddr,
    scheme: WsScheme,
    closed: AtomicBool,
    close_done: tokio::sync::Mutex<bool>,
}

impl WsTransport {
    /// Binds the listener (unless [`WsConfig::listen`] is `false`) and starts accepting.
    /// Must be called inside a tokio runtime.
    ///
    /// Fails with `Error::Bind` when the address cannot be bound, and `Error::InvalidConfig`
    /// when the client TLS settings cannot be loaded (a CA file that is missing or holds no
    /// certificate), [`WsConfig::pong_timeout`] is zero or [`WsConfig::tcp_keepalive`] timing
    /// is out of the kernel's bounds. A DSCP or keepalive setting the listening socket refuses
    /// is `Error::Bind`.
    pub fn bind(config: WsConfig) -> Result<(Arc<WsTransport>, mpsc::Receiver<TransportEvent>)> {
        if config.pong_timeout.is_zero() {
            // No pong can arrive in no time: every keepalive flow would fail at its first ping.
            return Err(Error::InvalidConfig {
                reason: "pong_timeout must be greater than zero".into(),
            });
        }
        if let Some(keepalive) = &config.tcp_keepalive {
            keepalive.validate()?;
        }
        let socket_options = config.socket_options();
        let bind_err = |source: io::Error| Error::Bind {
            addr: config.bind,
            source,
        };
        let client_tls = client_tls::client_config(&config.client_tls).map_err(|e| {
            let reason = match e {
                Error::InvalidConfig { reason } => reason,
                other => other.to_string(),
            };
            Error::InvalidConfig {
                reason: format!("client TLS: {reason}"),
            }
        })?;
        let listener = if config.listen {
            // SO_REUSEADDR, the backlog and the socket options, as the TCP listener has them
            // (accepted sockets inherit the options on Linux, and SYN-ACKs carry the mark).
            Some(sip_transport_tcp::listen(
                config.bind,
                config.backlog,
                &socket_options,
            )?)
        } else {
            None
        };
        let local = match &listener {
            Some(l) => l.local_addr().map_err(bind_err)?,
            None => config.bind,
        };
        let limits = config.limits.clone();
        let (events_tx, events_rx) = mpsc::channel(sip_transport_api::Limits::capacity(
            limits.event_queue_depth,
        ));
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            registry: crate::registry::Registry::new(
                limits.max_connections,
                limits.max_connections_per_ip,
            ),
            handshakes: Arc::new(Semaphore::new(sip_transport_api::Limits::capacity(
                limits.max_concurrent_handshakes,
            ))),
            ws_config: config.websocket_config(),
            limits,
            counters: Counters::default(),
            events: events_tx,
            shutdown,
            stopped: watch::Sender::new(false),
            keepalive: config.keepalive_interval,
            pong_timeout: config.pong_timeout,
            socket_options,
            proxy: config.proxy_protocol.clone(),
            policy: UpgradePolicy {
                paths: config.allowed_paths.clone().into(),
                origins: config.allowed_origins.clone().into(),
            },
            server_tls: config.server_tls.clone(),
            client_tls,
            client_origin: config.client_origin.clone(),
        });
        if let Some(listener) = listener {
            let span = info_span!("ws_listener", %local, kind = %config.kind());
            tokio::spawn(accept::accept_loop(listener, shared.clone(), local).instrument(span));
        }
        debug!(%local, kind = %config.kind(), listen = config.listen, "WebSocket transport bound");
        let t = WsTransport {
            shared,
            local,
            scheme: config.scheme,
            closed: AtomicBool::new(false),
            close_done: tokio::sync::Mutex::new(false),
        };
        Ok((Arc::new(t), events_rx))
    }

    /// The scheme new outbound connections use in [`Transport::send_message`].
    pub fn scheme(&self) -> WsScheme {
        self.scheme
    }

    /// An open flow to `dest` over `scheme`: one that already serves it (an inbound connection
    /// from that address included), the one a concurrent call is opening, or a new connection.
    pub async fn connect(&self, dest: &Destination, scheme: WsScheme) -> Result<FlowId> {
        if self.is_closed() {
            return Err(Error::TransportClosed);
        }
        dial::flow_to(&self.shared, dest, scheme).await
    }

    /// Sends `message` to `dest` over `scheme` (`ws://` or `wss://`), reusing an open flow or
    /// opening one. Returns the flow used.
    pub async fn send_message_via(
        &self,
        message: &Message,
        dest: &Destination,
        scheme: WsScheme,
    ) -> Result<FlowId> {
        let r = self.send_via(message, dest, scheme).await;
        self.count_failure(&r);
        r
    }

    async fn send_via(
        &self,
        message: &Message,
        dest: &Destination,
        scheme: WsScheme,
    ) -> Result<FlowId> {
        self.check_size(message)?;
        // A flow can close between lookup and send; one retry opens a new one.
        for _ in 0..2 {
            let flow = self.connect(dest, scheme).await?;
            match self.queue_on_flow(flow, message) {
                Err(Error::FlowClosed { .. }) => continue,
                other => return other.map(|()| flow),
            }
        }
        Err(Error::Connect {
            peer: dest.addr,
            source: io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection closed as soon as it opened",
            ),
        })
    }

    /// The flows open now, with their peer and direction.
    pub fn flows(&self) -> Vec<(FlowId, SocketAddr, Direction)> {
        self.shared.registry.open_flows()
    }

    /// Queues `message` on `flow`'s bounded write queue, failing fast: `FlowClosed` once the
    /// flow's close has begun, `WriteQueueFull` when the peer does not read fast enough (the
    /// queue's message or byte limit is reached).
    fn queue_on_flow(&self, flow: FlowId, message: &Message) -> Result<()> {
        if self.is_closed() {
            return Err(Error::TransportClosed);
        }
        self.check_size(message)?;
        let Some(sender) = self.shared.registry.sender(flow) else {
            return Err(Error::FlowClosed { flow });
        };
        sender.tx.try_send(frame_of(message)).map_err(|e| match e {
            Refused::Full => Error::WriteQueueFull {
                peer: sender.peer,
                depth: self.shared.limits.write_queue_depth,
            },
            Refused::Closed => Error::FlowClosed { flow },
        })
    }

    /// Every send that returns an error counts once in `send_errors`, whatever failed (as in
    /// the stream transports).
    fn count_failure<T>(&self, r: &Result<T>) {
        if r.is_err() {
            inc(&self.shared.counters.send_errors);
        }
    }

    fn check_size(&self, message: &Message) -> Result<()> {
        let limit = self.shared.limits.max_message_size;
        if message.len() > limit {
            return Err(Error::MessageTooLarge {
                size: message.len(),
                limit,
            });
        }
        Ok(())
    }
}

/// One SIP message as one WebSocket message: text when it is UTF-8 (SIP is text, RFC 7118
/// §5.1), binary when a body is not.
fn frame_of(message: &Message) -> WsMessage {
    let bytes = message.as_bytes().clone();
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => WsMessage::Text(text),
        Err(_) => WsMessage::Binary(bytes),
    }
}

#[async_trait]
impl Transport for WsTransport {
    fn kind(&self) -> TransportKind {
        self.scheme.kind()
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn send_message(&self, message: &Message, dest: &Destination) -> Result<Option<FlowId>> {
        self.send_message_via(message, dest, self.scheme)
            .await
            .map(Some)
    }

    async fn send_on_flow(&self, flow: FlowId, message: &Message) -> Result<()> {
        let r = self.queue_on_flow(flow, message);
        self.count_failure(&r);
        r
    }

    async fn close(&self) {
        let mut done = self.close_done.lock().await;
        if *done {
            return;
        }
        self.closed.store(true, Ordering::SeqCst);
        self.shared.shutdown.send_replace(true);
        // Every connection flushes and closes within the grace period; allow a little more
        // for the tasks to report.
        let grace = self.shared.limits.close_grace;
        let wait = grace
            .saturating_add(grace / 2)
            .saturating_add(std::time::Duration::from_millis(100));
        let _ = tokio::time::timeout(wait, self.shared.registry.wait_empty()).await;
        // Past it, connections drop the last events the application has no room for, as the
        // stream transports do, and end.
        self.shared.stopped.send_replace(true);
        let rest = std::time::Duration::from_secs(1);
        let _ = tokio::time::timeout(rest, self.shared.registry.wait_empty()).await;
        let _ = tokio::time::timeout(grace, self.shared.events.send(TransportEvent::Closed)).await;
        *done = true;
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn stats(&self) -> TransportStats {
        self.shared.counters.snapshot()
    }
}

impl Drop for WsTransport {
    fn drop(&mut self) {
        // Stops the listener and the connections (they close without waiting for anyone).
        self.shared.shutdown.send_replace(true);
        self.shared.stopped.send_replace(true);
    }
}
