//! `StreamTransport<C>`: the `Transport` implementation shared by every stream protocol —
//! binding, sending through the pool (reuse, dial de-duplication, limits), `close()` — and the
//! state its tasks share. The per-connection I/O is in `driver.rs`, the accept loop in
//! `listener.rs`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sip_transport_api::stats::inc;
use sip_transport_api::{
    Counters, Destination, Direction, Error, FlowId, Message, Result, Transport, TransportEvent,
    TransportKind, TransportStats,
};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument;

use crate::connection::Connection;
use crate::dial::{self, canonical};
use crate::driver::Driver;
use crate::pool::{ConnectionPool, Route, Slot};
use crate::tasks::{TaskToken, TaskTracker};
use crate::{StreamConfig, StreamConnector, StreamTransportConfig};

/// How far `close()` has got; tasks watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Serving.
    Running,
    /// Closing: no accepts or dials; connections flush within the close grace period.
    Draining,
    /// Past the grace period: tasks give up on delivering their last events.
    Stopped,
}

/// What the transport's tasks share.
pub(crate) struct Shared<C: StreamConnector> {
    pub(crate) connector: C,
    pub(crate) config: StreamConfig,
    pub(crate) kind: TransportKind,
    pub(crate) local: SocketAddr,
    pub(crate) events: mpsc::Sender<TransportEvent>,
    pub(crate) counters: Counters,
    pub(crate) pool: Arc<ConnectionPool>,
    pub(crate) tasks: Arc<TaskTracker>,
    pub(crate) phase: watch::Sender<Phase>,
    pub(crate) handshakes: Arc<Semaphore>,
}

impl<C: StreamConnector> Shared<C> {
    /// Resolves when the transport reaches `phase` (at once if it already has).
    pub(crate) async fn reached(&self, phase: Phase) {
        let mut rx = self.phase.subscribe();
        let _ = rx.wait_for(|p| *p >= phase).await;
    }

    /// Delivers an event that must not be lost while the transport runs (the application's
    /// backpressure applies), giving up once `close()` has passed its grace period.
    pub(crate) async fn deliver(&self, ev: TransportEvent) {
        let ev = match self.events.try_send(ev) {
            Err(mpsc::error::TrySendError::Full(ev)) => ev,
            _ => return,
        };
        tokio::select! {
            _ = self.events.send(ev) => {}
            _ = self.reached(Phase::Stopped) => {}
        }
    }

    /// Reports an error that is not worth blocking for (refused handshakes): dropped when the
    /// application is behind.
    pub(crate) fn report(&self, peer: Option<SocketAddr>, flow: Option<FlowId>, error: Error) {
        let _ = self
            .events
            .try_send(TransportEvent::Error { peer, flow, error });
    }

    /// The local IP outbound connections bind to: the configured one unless unspecified.
    fn source_ip(&self) -> Option<IpAddr> {
        let ip = self.config.bind.ip();
        (!ip.is_unspecified()).then_some(ip)
    }
}

/// A SIP stream transport (TCP, or TLS with the TLS crate's connector): one optional listener,
/// a pool of connections, one task per connection. See the crate docs.
pub struct StreamTransport<C: StreamConnector> {
    shared: Arc<Shared<C>>,
    closing: AtomicBool,
    closed: watch::Sender<bool>,
}

impl<C: StreamConnector> fmt::Debug for StreamTransport<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTransport")
            .field("kind", &self.shared.kind)
            .field("local", &self.shared.local)
            .field("connections", &self.shared.pool.len())
            .finish()
    }
}

impl<C: StreamConnector> StreamTransport<C> {
    /// Binds a transport from a configuration that names its connector: `TcpConfig` for
    /// [`TcpTransport`](crate::TcpTransport), the TLS crate's config for TLS. Returns the
    /// transport and its event receiver, bounded by `limits.event_queue_depth`.
    pub async fn bind<K>(config: K) -> Result<(Arc<Self>, mpsc::Receiver<TransportEvent>)>
    where
        K: StreamTransportConfig<Connector = C>,
    {
        let (connector, config) = config.into_parts()?;
        Self::with_connector(connector, config).await
    }

    /// Binds a transport with an explicit connector. Must run inside a tokio runtime. Fails
    /// with `Error::InvalidConfig` for a setting no connection can work with (a zero
    /// [`StreamConfig::pong_timeout`], [`StreamConfig::tcp_keepalive`] timing out of the
    /// kernel's bounds), and with `Error::Bind` when the address cannot be bound or the
    /// listener's DSCP or keepalive cannot be set.
    pub async fn with_connector(
        connector: C,
        config: StreamConfig,
    ) -> Result<(Arc<Self>, mpsc::Receiver<TransportEvent>)> {
        config.validate()?;
        let limits = &config.limits;
        let (events, rx) = mpsc::channel(sip_transport_api::Limits::capacity(
            limits.event_queue_depth,
        ));
        let listener = if config.listen {
            Some(dial::listen(
                config.bind,
                config.backlog,
                &config.socket_options(),
            )?)
        } else {
            None
        };
        let local = match &listener {
            Some(l) => l.local_addr().map_err(|source| Error::Bind {
                addr: config.bind,
                source,
            })?,
            None => config.bind,
        };
        let shared = Arc::new(Shared {
            kind: connector.kind(),
            pool: Arc::new(ConnectionPool::new(
                limits.max_connections,
                limits.max_connections_per_ip,
            )),
            handshakes: Arc::new(Semaphore::new(sip_transport_api::Limits::capacity(
                limits.max_concurrent_handshakes,
            ))),
            connector,
            config,
            local,
            events,
            counters: Counters::default(),
            tasks: Arc::new(TaskTracker::default()),
            phase: watch::Sender::new(Phase::Running),
        });
        if let Some(listener) = listener {
            let span = tracing::info_span!("sip_listener", kind = %shared.kind, local = %local);
            let task =
                |token| crate::listener::run(Arc::clone(&shared), listener, token).instrument(span);
            shared.tasks.spawn(task);
        }
        let transport = StreamTransport {
            shared,
            closing: AtomicBool::new(false),
            closed: watch::Sender::new(false),
        };
        Ok((Arc::new(transport), rx))
    }

    /// The connector (TLS: its configuration).
    pub fn connector(&self) -> &C {
        &self.shared.connector
    }

    /// The configuration in force.
    pub fn config(&self) -> &StreamConfig {
        &self.shared.config
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.shared.pool.len()
    }

    /// Tasks still running (listener and connections): zero after `close()` returns.
    pub fn task_count(&self) -> usize {
        self.shared.tasks.len()
    }

    /// The peer of an open flow.
    pub fn flow_peer(&self, flow: FlowId) -> Option<SocketAddr> {
        self.shared.pool.get(flow).map(|c| c.peer)
    }

    /// Opens a connection to `dest` without sending (or returns the open one): for keepalive
    /// flows (RFC 5626) and to pay the connect cost early.
    pub async fn connect(&self, dest: &Destination) -> Result<FlowId> {
        self.check_open()?;
        self.connection_for(dest).await.map(|c| c.flow)
    }

    /// Closes one flow gracefully: queued messages are flushed within the close grace period,
    /// then `ConnectionClosed { reason: LocalClose }` follows. False if the flow is not open.
    pub fn close_flow(&self, flow: FlowId) -> bool {
        match self.shared.pool.get(flow) {
            Some(c) => {
                c.begin_drain();
                true
            }
            None => false,
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::TransportClosed);
        }
        Ok(())
    }

    fn check_message(&self, message: &Message) -> Result<()> {
        let limit = self.shared.config.limits.max_message_size;
        if message.len() > limit {
            return Err(Error::MessageTooLarge {
                size: message.len(),
                limit,
            });
        }
        Ok(())
    }

    /// The open connection to `dest`, or a new one (sharing a dial in flight).
    async fn connection_for(&self, dest: &Destination) -> Result<Arc<Connection>> {
        let addr = canonical(dest.addr);
        if let Some(ip) = self.shared.source_ip()
            && ip.is_ipv4() != addr.is_ipv4()
        {
            return Err(Error::AddressFamilyMismatch {
                transport: self.shared.kind,
                local: self.shared.local,
                peer: addr,
            });
        }
        // A named destination reuses a connection only if it serves that TLS server name
        // (RFC 5922 §7.2, RFC 5923 §6): see the pool's module docs.
        let name = name_key(dest);
        let connector = &self.shared.connector;
        let serves = |c: &Connection| match (name, c.peer_info::<C::PeerInfo>()) {
            (Some(n), Some(info)) => connector.serves_name(info, n),
            _ => false,
        };
        // `exact`: a dial for another name was joined and did not give a connection serving
        // ours; the second round dials for this name (or joins such a dial).
        let mut exact = false;
        loop {
            let (mut rx, ours) = match self.shared.pool.route(addr, name, exact, &serves)? {
                Route::Open(c) => return Ok(c),
                Route::Wait(rx, ours) => (rx, ours),
                Route::Dial(slot, tx) => {
                    let rx = tx.subscribe();
                    let mut dest = dest.clone();
                    dest.addr = addr;
                    let span = tracing::info_span!(
                        "sip_conn", kind = %self.shared.kind, peer = %addr, dir = "out",
                        flow = tracing::field::Empty,
                    );
                    let shared = Arc::clone(&self.shared);
                    let task = |token| dial_task(shared, dest, slot, tx, token).instrument(span);
                    self.shared.tasks.spawn(task);
                    (rx, true)
                }
            };
            let outcome = rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| Error::TransportClosed)?;
            match &*outcome {
                Some(Ok(c)) if ours || serves(c) => return Ok(Arc::clone(c)),
                Some(Err(e)) if ours => return Err(dial::duplicate(e, addr)),
                None => return Err(Error::TransportClosed),
                // Another name's dial: its connection does not serve ours, or it failed.
                Some(_) if !exact => exact = true,
                Some(Ok(c)) => return Ok(Arc::clone(c)),
                Some(Err(e)) => return Err(dial::duplicate(e, addr)),
            }
        }
    }

    async fn send_inner(&self, message: &Message, dest: &Destination) -> Result<FlowId> {
        self.check_open()?;
        self.check_message(message)?;
        let mut conn = self.connection_for(dest).await?;
        match conn.enqueue(message.as_bytes().clone(), false) {
            // Closed between lookup and enqueue: one more try dials anew.
            Err(Error::FlowClosed { .. }) => {
                conn = self.connection_for(dest).await?;
                conn.enqueue(message.as_bytes().clone(), false)?;
            }
            other => other?,
        }
        Ok(conn.flow)
    }

    fn send_on_flow_inner(&self, flow: FlowId, message: &Message) -> Result<()> {
        self.check_open()?;
        self.check_message(message)?;
        let conn = self
            .shared
            .pool
            .get(flow)
            .ok_or(Error::FlowClosed { flow })?;
        // A draining flow still takes responses: the peer may only have half-closed.
        conn.enqueue(message.as_bytes().clone(), true)
    }

    /// Starts closing without waiting: no accepts or dials, every connection drains.
    fn begin_close(&self) -> bool {
        if self.closing.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.shared.phase.send_replace(Phase::Draining);
        for conn in self.shared.pool.close() {
            conn.begin_drain();
        }
        true
    }
}

/// Dials `dest`, publishes the outcome to the senders waiting on it, then drives the new
/// connection in the same task.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn stores its arguments twice in the future; connection tasks must stay small"
)]
fn dial_task<C: StreamConnector>(
    shared: Arc<Shared<C>>,
    dest: Destination,
    slot: Slot,
    tx: watch::Sender<crate::pool::DialOutcome>,
    token: TaskToken,
) -> impl Future<Output = ()> + Send {
    // An `async` block, not an `async fn`: arguments are stored once in the task, not twice.
    async move {
        let _token = token;
        /// Ends the dial in the pool even if this task is dropped mid-dial.
        struct EndDial<'a>(&'a ConnectionPool, SocketAddr, Option<&'a str>);
        impl Drop for EndDial<'_> {
            fn drop(&mut self) {
                self.0.end_dial(self.1, self.2);
            }
        }
        let addr = dest.addr;
        let end = EndDial(&shared.pool, addr, name_key(&dest));
        let limits = &shared.config.limits;
        // Boxed: the dial's state is freed once it is done, instead of sitting in the
        // connection task for the connection's whole life.
        let opened = Box::pin(async {
            tokio::select! {
                r = open_outbound(&shared, &dest) => r,
                _ = shared.reached(Phase::Draining) => Err(Error::TransportClosed),
            }
        })
        .await;
        let (stream, local) = match opened {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "dial failed");
                drop(end);
                tx.send_replace(Some(Err(e)));
                return;
            }
        };
        let info = shared.connector.peer_info(&stream);
        let conn = Arc::new(
            Connection::new(addr, local, Direction::Outbound, limits)
                .with_peer(Box::new(info), name_key(&dest).map(Arc::from)),
        );
        tracing::Span::current().record("flow", tracing::field::display(conn.flow));
        let inserted = shared.pool.insert(&conn);
        drop(end);
        if !inserted {
            tx.send_replace(Some(Err(Error::TransportClosed)));
            return;
        }
        inc(&shared.counters.connections_dialed);
        inc(&shared.counters.connections_open);
        tx.send_replace(Some(Ok(Arc::clone(&conn))));
        drop(tx);
        Driver::new(shared, conn, stream, slot).run().await;
    }
}

/// The destination's server name as the pool compares it (ASCII case-insensitively): without
/// the trailing dot of an absolute DNS name.
fn name_key(dest: &Destination) -> Option<&str> {
    dest.server_name
        .as_deref()
        .map(|n| n.strip_suffix('.').unwrap_or(n))
}

/// TCP connect (connect timeout), then the connector's client side (handshake timeout).
async fn open_outbound<C: StreamConnector>(
    shared: &Shared<C>,
    dest: &Destination,
) -> Result<(C::Stream, SocketAddr)> {
    let limits = &shared.config.limits;
    let tcp = dial::connect(
        dest.addr,
        shared.source_ip(),
        shared.config.nodelay,
        &shared.config.socket_options(),
        limits.connect_timeout,
    )
    .await?;
    dial::bound_unacked(
        &tcp,
        limits.write_timeout,
        shared.config.tcp_keepalive.as_ref(),
    );
    let local = tcp.local_addr().map_err(|source| Error::Io {
        peer: dest.addr,
        source,
    })?;
    let stream = handshake(
        limits.handshake_timeout,
        dest.addr,
        shared.connector.connect(tcp, dest),
    )
    .await?;
    Ok((stream, canonical(local)))
}

/// Runs a connector step under the handshake timeout.
pub(crate) async fn handshake<T>(
    limit: Duration,
    peer: SocketAddr,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::HandshakeTimeout { peer, after: limit }),
    }
}

#[async_trait]
impl<C: StreamConnector> Transport for StreamTransport<C> {
    fn kind(&self) -> TransportKind {
        self.shared.kind
    }

    fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    async fn send_message(&self, message: &Message, dest: &Destination) -> Result<Option<FlowId>> {
        let r = self.send_inner(message, dest).await;
        if r.is_err() {
            inc(&self.shared.counters.send_errors);
        }
        r.map(Some)
    }

    async fn send_on_flow(&self, flow: FlowId, message: &Message) -> Result<()> {
        let r = self.send_on_flow_inner(flow, message);
        if r.is_err() {
            inc(&self.shared.counters.send_errors);
        }
        r
    }

    async fn close(&self) {
        if !self.begin_close() {
            // Someone else is closing: wait until they are done.
            let mut rx = self.closed.subscribe();
            let _ = rx.wait_for(|done| *done).await;
            return;
        }
        let shared = &self.shared;
        let grace = shared.config.limits.close_grace;
        // Connections flush within the grace period, then report their close.
        let margin = Duration::from_millis(250);
        if tokio::time::timeout(grace.saturating_add(margin), shared.tasks.wait_idle())
            .await
            .is_err()
        {
            tracing::debug!(tasks = shared.tasks.len(), "close grace period over");
        }
        shared.phase.send_replace(Phase::Stopped);
        if tokio::time::timeout(Duration::from_secs(1), shared.tasks.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = shared.tasks.len(),
                "tasks still running after close"
            );
        }
        let _ = tokio::time::timeout(grace, shared.events.send(TransportEvent::Closed)).await;
        self.closed.send_replace(true);
    }

    fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    fn stats(&self) -> TransportStats {
        self.shared.counters.snapshot()
    }
}

impl<C: StreamConnector> Drop for StreamTransport<C> {
    /// Dropped without `close()`: stop listening and let connections drain on their own, with
    /// no one waiting for their last events.
    fn drop(&mut self) {
        if self.begin_close() {
            self.shared.phase.send_replace(Phase::Stopped);
        }
    }
}
