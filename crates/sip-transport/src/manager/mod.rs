//! [`TransportManager`]: the transports an application added, one merged event stream, and
//! `send_message(message, to)`, which picks the transport and the connection.
//!
//! - Requests to a URI ([`SendTo::Uri`]) go through RFC 3263 (numeric hosts need no DNS;
//!   names use the `SipResolver`, feature `dns`), narrowed to the
//!   transports held, ordered by priority and spread by the [`LoadBalancing`] mode; an open
//!   flow to the chosen address is reused by the transport itself.
//! - Failover: a recoverable failure (refused, reset, timeout) holds the target back and the
//!   next one is tried (RFC 3263 §4.3); held targets come back after the hold time, or when an
//!   OPTIONS health check succeeds.
//! - RFC 3261 §18.1.1: a request larger than the UDP threshold goes over TCP to the same
//!   address; and whenever a request goes over another transport than its top Via names
//!   (the size rule, RFC 3263 selection, failover, a flow of another kind), the Via's
//!   transport is changed to match. Sent-by and branch are kept as the caller wrote them.
//! - Responses ([`SendTo::Reply`]): RFC 3261 §18.2.2 — over the request's flow while it is
//!   open, else to `maddr`/`received`/`rport`/sent-by (reconnecting for streams); a sent-by
//!   name through RFC 3263 §5, a `maddr` name by its A/AAAA records at the sent-by port; to a
//!   `maddr`, the destination carries the Via's `ttl` (or 1) for a multicast UDP send.
//! - Throttling: an optional cap on requests per second per destination address.
//!
//! What it is not: a transaction layer. It does not retransmit or time transactions out; a
//! transaction layer that sees a timeout can hold a target back with
//! [`TransportManager::mark_failed`].

mod balance;
mod config;
mod events;
mod health;
mod holdback;
mod stats;
mod targets;
mod throttle;
mod via;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use sip_transport_api::{
    Destination, Error, FlowId, Message, ReceivedMessage, ResponseHost, ResponseTarget, Result,
    Transport, TransportEvent, TransportKind, response_target,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

pub use config::{DEFAULT_UDP_MTU_THRESHOLD, HealthCheck, LoadBalancing, ManagerConfig};
pub use events::ManagerEvent;
pub use holdback::HeldTarget;
pub use stats::{ManagerStats, TransportSnapshot};

use balance::Balancer;
use events::Forwarder;
use health::Probes;
use holdback::HoldBack;
use stats::{ManagerCounters, inc};
use targets::Candidate;
use throttle::Throttle;

use crate::uri::TargetUri;

/// A poisoned lock only means another thread panicked mid-update of plain data.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The manager's name for one of its transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransportId(u32);

impl TransportId {
    /// The number, for logs and labels.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for TransportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transport#{}", self.0)
    }
}

/// Where [`TransportManager::send_message`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendTo {
    /// A request to a SIP or SIPS URI: RFC 3263 server location, failover, load balancing.
    Uri(TargetUri),
    /// A known address over a given transport kind (one target: hold-back, throttling and the
    /// UDP size rule apply).
    Address {
        /// The transport to use.
        kind: TransportKind,
        /// Where to.
        destination: Destination,
    },
    /// Over a known flow (connection) only; `Error::FlowClosed` when it is gone.
    Flow(FlowId),
    /// A response, routed by RFC 3261 §18.2.2 from its top Via: over `flow` while it is open,
    /// else to `received`/`rport`/sent-by; UDP answers leave from `local` when given (the
    /// address the request arrived on). Made from a [`ReceivedMessage`] with `From`.
    Reply {
        /// The request's flow, if it came over a connection.
        flow: Option<FlowId>,
        /// Our address the request arrived on.
        local: Option<SocketAddr>,
    },
}

impl SendTo {
    /// [`SendTo::Uri`] from text; [`Error::InvalidUri`] if it cannot be used.
    pub fn uri(uri: &str) -> Result<SendTo> {
        TargetUri::parse(uri).map(SendTo::Uri)
    }

    /// [`SendTo::Address`].
    pub fn address(kind: TransportKind, destination: impl Into<Destination>) -> SendTo {
        SendTo::Address {
            kind,
            destination: destination.into(),
        }
    }
}

impl From<TargetUri> for SendTo {
    fn from(uri: TargetUri) -> Self {
        SendTo::Uri(uri)
    }
}

impl From<FlowId> for SendTo {
    fn from(flow: FlowId) -> Self {
        SendTo::Flow(flow)
    }
}

/// The reply to a received request: back over its flow, or per its Via.
impl From<&ReceivedMessage> for SendTo {
    fn from(r: &ReceivedMessage) -> Self {
        SendTo::Reply {
            flow: r.flow,
            local: Some(r.local),
        }
    }
}

impl fmt::Display for SendTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTo::Uri(u) => write!(f, "{u}"),
            SendTo::Address { kind, destination } => write!(f, "{kind}:{destination}"),
            SendTo::Flow(flow) => write!(f, "{flow}"),
            SendTo::Reply {
                flow: Some(flow), ..
            } => write!(f, "reply on {flow}"),
            SendTo::Reply { flow: None, .. } => f.write_str("reply per Via"),
        }
    }
}

/// What [`TransportManager::send_message`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent {
    /// The transport used.
    pub transport: TransportId,
    /// Its kind (TCP when the UDP size rule moved the request).
    pub kind: TransportKind,
    /// The destination, `None` when sent on a known flow.
    pub destination: Option<Destination>,
    /// The flow used (`None` for UDP).
    pub flow: Option<FlowId>,
    /// Targets tried, this one included (more than 1 after failover).
    pub attempts: usize,
    /// True when the request's top Via transport was rewritten to the one used, because it
    /// named another (RFC 3261 §18.1.1: the UDP size rule, RFC 3263 selection or failover
    /// picked another transport than the caller wrote). Only the transport token changes:
    /// sent-by and branch are the caller's. Responses are never rewritten.
    pub via_rewritten: bool,
}

struct Entry {
    id: TransportId,
    kind: TransportKind,
    local: SocketAddr,
    transport: Arc<dyn Transport>,
}

/// What the manager's handles and tasks share.
pub(crate) struct Inner {
    config: ManagerConfig,
    transports: RwLock<Vec<Entry>>,
    merged: Mutex<Option<mpsc::Sender<ManagerEvent>>>,
    stop: watch::Sender<bool>,
    pub(crate) held: HoldBack,
    balancer: Balancer,
    throttle: Option<Throttle>,
    pub(crate) probes: Arc<Probes>,
    pub(crate) counters: Arc<ManagerCounters>,
    closed: AtomicBool,
    next_id: AtomicU32,
    forwarders: Mutex<Vec<JoinHandle<()>>>,
    health: Mutex<Option<JoinHandle<()>>>,
    #[cfg(feature = "dns")]
    resolver: std::sync::OnceLock<Arc<crate::dns::SipResolver>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(h) = lock(&self.health).take() {
            h.abort();
        }
    }
}

/// Holds transports and routes messages over them. Cheap to clone (a handle); `Send + Sync`.
///
/// ```no_run
/// use std::sync::Arc;
/// use sip_transport::prelude::*;
/// use tokio::sync::mpsc::Receiver;
///
/// # async fn run(
/// #     request: Message,
/// #     transport: Arc<dyn Transport>,
/// #     transport_events: Receiver<TransportEvent>,
/// # ) -> sip_transport::Result<()> {
/// let (manager, mut events) = TransportManager::new(ManagerConfig::default())?;
/// // e.g. `manager.add(bind_udp(addr).await?)`, or a transport made by hand:
/// manager.add_transport(transport, transport_events)?;
/// // RFC 3263 picks the transport and the address; failover on refusal.
/// let sent = manager.send_message(&request, SendTo::uri("sip:192.0.2.10")?).await?;
/// println!("sent over {} to {:?}", sent.kind, sent.destination);
/// while let Some(ev) = events.recv().await {
///     if let Some(m) = ev.message() {
///         println!("{} bytes from {} over {}", m.message.len(), m.source, ev.kind);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TransportManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for TransportManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<(TransportId, TransportKind, SocketAddr)> = read(&self.inner.transports)
            .iter()
            .map(|e| (e.id, e.kind, e.local))
            .collect();
        f.debug_struct("TransportManager")
            .field("transports", &kinds)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn no_runtime(what: &str) -> Error {
    Error::InvalidConfig {
        reason: format!("{what} must be called inside a Tokio runtime"),
    }
}

impl TransportManager {
    /// A manager without transports, and the receiver of the merged events (bounded by
    /// [`ManagerConfig::event_queue_depth`]). With health checks configured it starts their
    /// task, which needs a Tokio runtime ([`Error::InvalidConfig`] otherwise).
    pub fn new(config: ManagerConfig) -> Result<(TransportManager, mpsc::Receiver<ManagerEvent>)> {
        let (tx, rx) = mpsc::channel(sip_transport_api::Limits::capacity(
            config.event_queue_depth,
        ));
        let inner = Arc::new(Inner {
            held: HoldBack::new(
                config.hold_time,
                config.max_held_targets,
                config.health_check.is_some(),
            ),
            balancer: Balancer::new(config.load_balancing),
            throttle: config.max_sends_per_second.map(Throttle::new),
            transports: RwLock::new(Vec::new()),
            merged: Mutex::new(Some(tx)),
            stop: watch::Sender::new(false),
            probes: Arc::new(Probes::new()),
            counters: Arc::new(ManagerCounters::default()),
            closed: AtomicBool::new(false),
            next_id: AtomicU32::new(1),
            forwarders: Mutex::new(Vec::new()),
            health: Mutex::new(None),
            #[cfg(feature = "dns")]
            resolver: std::sync::OnceLock::new(),
            config,
        });
        if let Some(check) = inner.config.health_check.clone() {
            let rt = tokio::runtime::Handle::try_current()
                .map_err(|_| no_runtime("TransportManager::new with health checks"))?;
            let span = tracing::info_span!("sip_manager_health");
            let task = health::run(Arc::downgrade(&inner), check, inner.stop.subscribe());
            *lock(&inner.health) = Some(rt.spawn(task.instrument(span)));
        }
        Ok((TransportManager { inner }, rx))
    }

    /// Adds a transport as its `bind` returned it (transport and event receiver), e.g.
    /// `manager.add(bind_udp(addr).await?)`.
    pub fn add<T: Transport>(
        &self,
        bound: (Arc<T>, mpsc::Receiver<TransportEvent>),
    ) -> Result<TransportId> {
        let (transport, events) = bound;
        self.add_transport(transport, events)
    }

    /// Adds a transport and its event receiver; its events join the merged stream. Must run
    /// inside a Tokio runtime. [`Error::TransportClosed`] after `close()`.
    pub fn add_transport(
        &self,
        transport: Arc<dyn Transport>,
        events: mpsc::Receiver<TransportEvent>,
    ) -> Result<TransportId> {
        let inner = &self.inner;
        if self.is_closed() {
            return Err(Error::TransportClosed);
        }
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| no_runtime("TransportManager::add_transport"))?;
        let merged = lock(&inner.merged).clone().ok_or(Error::TransportClosed)?;
        let id = TransportId(inner.next_id.fetch_add(1, Ordering::Relaxed));
        let kind = transport.kind();
        let local = transport.local_addr();
        write(&inner.transports).push(Entry {
            id,
            kind,
            local,
            transport,
        });
        let forwarder = Forwarder {
            transport: id,
            kind,
            events,
            merged,
            probes: Arc::clone(&inner.probes),
            stop: inner.stop.subscribe(),
            counters: Arc::clone(&inner.counters),
        };
        let span = tracing::info_span!("sip_manager_forward", transport = %id, %kind, %local);
        let task = rt.spawn(forwarder.run().instrument(span));
        let mut tasks = lock(&inner.forwarders);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        tracing::debug!(transport = %id, %kind, %local, "transport added");
        Ok(id)
    }

    /// The transports held, in the order added.
    pub fn transports(&self) -> Vec<(TransportId, Arc<dyn Transport>)> {
        read(&self.inner.transports)
            .iter()
            .map(|e| (e.id, Arc::clone(&e.transport)))
            .collect()
    }

    /// One transport by id.
    pub fn transport(&self, id: TransportId) -> Option<Arc<dyn Transport>> {
        read(&self.inner.transports)
            .iter()
            .find(|e| e.id == id)
            .map(|e| Arc::clone(&e.transport))
    }

    /// Sends `message` as `to` says (see [`SendTo`] and the module docs). Returns what was
    /// done; on failure the error of the last target tried (`is_recoverable()` tells whether
    /// a later attempt may succeed).
    pub async fn send_message(&self, message: &Message, to: impl Into<SendTo>) -> Result<Sent> {
        let to = to.into();
        let span = tracing::debug_span!(
            "sip_manager_send",
            to = %to,
            request = message.is_request(),
            len = message.len()
        );
        let result = self.inner.send(message, &to).instrument(span).await;
        let c = &self.inner.counters;
        match &result {
            Ok(_) if message.is_request() => inc(&c.requests_sent),
            Ok(_) => inc(&c.responses_sent),
            Err(e) => {
                inc(&c.send_errors);
                tracing::debug!(to = %to, error = %e, "send failed");
            }
        }
        result
    }

    /// Holds a target back as if a send to it had failed (for a transaction layer that saw a
    /// timeout). It is re-admitted after the hold time, or by a health check.
    pub fn mark_failed(&self, kind: TransportKind, destination: &Destination) {
        let inner = &self.inner;
        if inner.held.hold(
            kind,
            destination.addr,
            destination.server_name.clone(),
            Instant::now(),
        ) {
            inc(&inner.counters.targets_held_total);
        }
    }

    /// The targets held back now.
    pub fn held_targets(&self) -> Vec<HeldTarget> {
        self.inner.held.snapshot(Instant::now())
    }

    /// A snapshot of every transport's counters and the manager's own.
    pub fn stats(&self) -> ManagerStats {
        let transports = read(&self.inner.transports)
            .iter()
            .map(|e| TransportSnapshot {
                id: e.id,
                kind: e.kind,
                local: e.local,
                stats: e.transport.stats(),
            })
            .collect();
        let held = self.inner.held.count(Instant::now()) as u64;
        self.inner.counters.snapshot(transports, held)
    }

    /// Publishes [`stats`](Self::stats) through the `metrics` facade (feature `metrics`);
    /// call it periodically, e.g. from the exporter's scrape hook.
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        self.stats().publish_metrics();
    }

    /// Stops the health checks, closes every transport (each flushes within its grace period
    /// and reports `Closed`), forwards the last events within
    /// [`ManagerConfig::close_grace`], then ends the merged stream.
    pub async fn close(&self) {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(h) = lock(&inner.health).take() {
            h.abort();
        }
        let all: Vec<Arc<dyn Transport>> = read(&inner.transports)
            .iter()
            .map(|e| Arc::clone(&e.transport))
            .collect();
        for t in all {
            t.close().await;
        }
        let forwarders: Vec<JoinHandle<()>> = lock(&inner.forwarders).drain(..).collect();
        let drained = async {
            for f in forwarders {
                let _ = f.await;
            }
        };
        let _ = tokio::time::timeout(inner.config.close_grace, drained).await;
        inner.stop.send_replace(true);
        lock(&inner.merged).take();
    }

    /// True after `close()`.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

impl Inner {
    async fn send(&self, message: &Message, to: &SendTo) -> Result<Sent> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::TransportClosed);
        }
        match to {
            SendTo::Uri(uri) => {
                let mut candidates = self.candidates(uri).await?;
                self.balancer.order(&uri.to_string(), &mut candidates);
                self.try_candidates(message, candidates).await
            }
            SendTo::Address { kind, destination } => {
                let c = Candidate::new(*kind, destination);
                self.try_candidates(message, vec![c]).await
            }
            SendTo::Flow(flow) => self
                .send_on_flow(message, *flow)
                .await?
                .ok_or(Error::FlowClosed { flow: *flow }),
            SendTo::Reply { flow, local } => self.reply(message, *flow, *local).await,
        }
    }

    /// The distinct kinds of the open transports.
    fn kinds(&self) -> Vec<TransportKind> {
        let mut kinds: Vec<TransportKind> = read(&self.transports)
            .iter()
            .filter(|e| !e.transport.is_closed())
            .map(|e| e.kind)
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// RFC 3263 §4: the targets of a request to `uri`, in the order to try them.
    async fn candidates(&self, uri: &TargetUri) -> Result<Vec<Candidate>> {
        let held = self.kinds();
        if let Some(kind) = uri.transport_kind()?
            && !held.contains(&kind)
        {
            return Err(Error::TransportUnavailable { kind });
        }
        if let Some(numeric) = targets::numeric(uri, &held) {
            return numeric;
        }
        #[cfg(feature = "dns")]
        {
            let resolver = self.resolver()?;
            let policy = targets::narrowed_policy(&resolver.config().policy, &held);
            if policy.transports.is_empty() {
                let kind = if uri.secure {
                    TransportKind::Tls
                } else {
                    TransportKind::Udp
                };
                return Err(Error::TransportUnavailable { kind });
            }
            let found = resolver.resolve_with(uri, &policy).await?;
            tracing::debug!(%uri, targets = found.len(), "RFC 3263 targets");
            // A maddr name may resolve to a group: the URI's ttl goes with it.
            Ok(found
                .into_iter()
                .map(|t| Candidate {
                    multicast_ttl: uri.ttl,
                    ..Candidate::from(t)
                })
                .collect())
        }
        #[cfg(not(feature = "dns"))]
        Err(Error::InvalidDestination {
            reason: format!("{uri}: resolving a host name needs the `dns` feature"),
        })
    }

    #[cfg(feature = "dns")]
    fn resolver(&self) -> Result<Arc<crate::dns::SipResolver>> {
        use crate::dns::{SipResolver, SipResolverConfig};
        if let Some(r) = &self.config.resolver {
            return Ok(Arc::clone(r));
        }
        if let Some(r) = self.resolver.get() {
            return Ok(Arc::clone(r));
        }
        let made = Arc::new(SipResolver::new(SipResolverConfig::default())?);
        Ok(Arc::clone(self.resolver.get_or_init(|| made)))
    }

    /// Tries the targets in order, held-back ones last, until one takes the message.
    async fn try_candidates(&self, message: &Message, all: Vec<Candidate>) -> Result<Sent> {
        let now = Instant::now();
        let (ready, held): (Vec<Candidate>, Vec<Candidate>) = all
            .into_iter()
            .partition(|c| !self.held.is_held(c.kind, c.addr, now));
        let mut last: Option<Error> = None;
        // The first certificate problem, reported over later failures of other targets when
        // none succeeds: it is the one to fix (a wrong CA, a missing name), and not worth a retry.
        let mut certificate: Option<Error> = None;
        let mut attempts = 0;
        for c in ready.into_iter().chain(held).take(self.config.max_attempts) {
            attempts += 1;
            if message.is_request()
                && let Some(throttle) = &self.throttle
                && let Err(e) = throttle.admit(c.addr, Instant::now())
            {
                inc(&self.counters.throttled);
                tracing::debug!(kind = %c.kind, addr = %c.addr, "throttled");
                last = Some(e);
                continue;
            }
            match self.send_to(message, &c).await {
                Ok(mut sent) => {
                    sent.attempts = attempts;
                    if attempts > 1 {
                        inc(&self.counters.failovers);
                    }
                    if self.held.release(c.kind, c.addr) {
                        tracing::info!(kind = %c.kind, addr = %c.addr, "target re-admitted");
                    }
                    return Ok(sent);
                }
                Err(e) => {
                    tracing::debug!(kind = %c.kind, addr = %c.addr, error = %e, "target failed");
                    // Not worth retrying the same target, but the next one may do: another
                    // transport, another address family, another certificate (each target's
                    // certificate is checked against the same name, RFC 5922 §4.1).
                    let target_specific = matches!(
                        e,
                        Error::TransportUnavailable { .. }
                            | Error::AddressFamilyMismatch { .. }
                            | Error::TlsCertificate { .. }
                    );
                    if !e.is_recoverable() && !target_specific {
                        return Err(e);
                    }
                    if matches!(e, Error::TlsCertificate { .. }) && certificate.is_none() {
                        certificate = Some(e);
                        continue;
                    }
                    if e.is_recoverable()
                        && self
                            .held
                            .hold(c.kind, c.addr, c.server_name.clone(), Instant::now())
                    {
                        inc(&self.counters.targets_held_total);
                        tracing::info!(kind = %c.kind, addr = %c.addr, error = %e, "target held back");
                    }
                    last = Some(e);
                }
            }
        }
        Err(certificate
            .or(last)
            .unwrap_or_else(|| Error::InvalidDestination {
                reason: "no target to send to".to_owned(),
            }))
    }

    /// One target: the transport of its kind, with RFC 3261 §18.1.1's move to TCP. A request
    /// whose top Via names another transport than the target's goes with the Via changed
    /// (§18.1.1), its branch kept: each attempt starts from the caller's message, and the
    /// caller's transaction layer matches responses by that branch (RFC 3263 §4.3's advice to
    /// make a failed-over request a new transaction is the transaction layer's to follow).
    async fn send_to(&self, message: &Message, c: &Candidate) -> Result<Sent> {
        let oversized = message.is_request() && message.len() > self.config.udp_mtu_threshold;
        // A caller's waiver (`Destination::udp_size_rule_waived`) keeps it on UDP.
        if c.kind == TransportKind::Udp && oversized && !c.udp_size_rule_waived {
            return self.udp_as_tcp(message, c).await;
        }
        let (id, transport) = self.pick(c.kind, c.addr, None)?;
        let dest = c.destination();
        let rewritten = via::for_transport(message, c.kind)?;
        let out = rewritten.as_ref().unwrap_or(message);
        match transport.send_message(out, &dest).await {
            Ok(flow) => Ok(Sent {
                transport: id,
                kind: c.kind,
                destination: Some(dest),
                flow,
                attempts: 1,
                via_rewritten: rewritten.is_some(),
            }),
            Err(Error::UdpMessageTooLarge { .. }) if message.is_request() => {
                self.udp_as_tcp(message, c).await
            }
            Err(e) => Err(e),
        }
    }

    /// RFC 3261 §18.1.1: a request over the UDP size rule goes over TCP, top Via rewritten;
    /// if the TCP attempt is refused or reset, it goes over UDP after all, as that section
    /// asks (the size rule waived for this send; the datagram maximum still holds), its Via
    /// saying UDP.
    async fn udp_as_tcp(&self, message: &Message, c: &Candidate) -> Result<Sent> {
        let too_large = Error::UdpMessageTooLarge {
            size: message.len(),
            limit: self.config.udp_mtu_threshold,
        };
        let Ok((id, tcp)) = self.pick(TransportKind::Tcp, c.addr, None) else {
            return Err(too_large);
        };
        let to_tcp = via::for_transport(message, TransportKind::Tcp)?;
        let dest = c.destination();
        match tcp
            .send_message(to_tcp.as_ref().unwrap_or(message), &dest)
            .await
        {
            Ok(flow) => {
                inc(&self.counters.udp_to_tcp);
                tracing::debug!(addr = %c.addr, len = message.len(), "request moved from UDP to TCP");
                Ok(Sent {
                    transport: id,
                    kind: TransportKind::Tcp,
                    destination: Some(dest),
                    flow,
                    attempts: 1,
                    via_rewritten: to_tcp.is_some(),
                })
            }
            Err(e) if refused_or_reset(&e) => {
                let udp_dest = dest.clone().with_udp_size_rule_waived();
                let to_udp = via::for_transport(message, TransportKind::Udp)?;
                if let Ok((uid, udp)) = self.pick(TransportKind::Udp, c.addr, None)
                    && let Ok(flow) = udp
                        .send_message(to_udp.as_ref().unwrap_or(message), &udp_dest)
                        .await
                {
                    tracing::debug!(addr = %c.addr, len = message.len(), "TCP refused; large request sent over UDP");
                    return Ok(Sent {
                        transport: uid,
                        kind: TransportKind::Udp,
                        destination: Some(udp_dest),
                        flow,
                        attempts: 1,
                        via_rewritten: to_udp.is_some(),
                    });
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Over a known flow: the transport that has it (flow ids are unique in the process).
    /// `None` when no transport has it open. A request's top Via follows the flow's
    /// transport (RFC 3261 §18.1.1), as in [`send_to`](Self::send_to).
    async fn send_on_flow(&self, message: &Message, flow: FlowId) -> Result<Option<Sent>> {
        let streams: Vec<(TransportId, TransportKind, Arc<dyn Transport>)> = read(&self.transports)
            .iter()
            .filter(|e| e.kind.is_connection_oriented() && !e.transport.is_closed())
            .map(|e| (e.id, e.kind, Arc::clone(&e.transport)))
            .collect();
        // The copy for one kind serves every transport of that kind tried after it.
        let mut prepared: Option<(TransportKind, Option<Message>)> = None;
        for (id, kind, t) in streams {
            if prepared.as_ref().is_none_or(|(k, _)| *k != kind) {
                prepared = Some((kind, via::for_transport(message, kind)?));
            }
            let rewritten = prepared.as_ref().and_then(|(_, m)| m.as_ref());
            match t.send_on_flow(flow, rewritten.unwrap_or(message)).await {
                Ok(()) => {
                    return Ok(Some(Sent {
                        transport: id,
                        kind,
                        destination: None,
                        flow: Some(flow),
                        attempts: 1,
                        via_rewritten: rewritten.is_some(),
                    }));
                }
                Err(Error::FlowClosed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// RFC 3261 §18.2.2 (with RFC 3581 §4): the request's flow while it is open; else the
    /// address the top Via gives, reconnecting for streams; a name through
    /// [`reply_by_name`](Self::reply_by_name).
    ///
    /// A `maddr`'s TTL (`ResponseTarget::ttl`: the Via's `ttl`, or 1) goes with the
    /// destination; the UDP transport applies it when the address is a multicast group.
    async fn reply(
        &self,
        response: &Message,
        flow: Option<FlowId>,
        local: Option<SocketAddr>,
    ) -> Result<Sent> {
        if let Some(flow) = flow
            && let Some(sent) = self.send_on_flow(response, flow).await?
        {
            return Ok(sent);
        }
        let target = response_target(response)?;
        let addr = match &target.host {
            ResponseHost::Ip(ip) => SocketAddr::new(*ip, target.port),
            ResponseHost::Name(name) => return self.reply_by_name(response, name, &target).await,
        };
        let (id, transport) = self.pick(target.transport, addr, local)?;
        let mut dest = Destination::new(addr);
        if let Some(ttl) = target.ttl {
            // RFC 3261 §18.2.2: a multicast maddr gets the Via's ttl, or 1.
            dest = dest.with_multicast_ttl(ttl);
        }
        if target.transport.is_secure() {
            // A new TLS connection to `received` checks the certificate against the sent-by
            // name, as for any URI host (RFC 3263 §5, RFC 5922 §7.3): a name is what a
            // certificate carries, the address it resolved to rarely is.
            let via = response.top_via()?;
            if via.host_ip().is_none() {
                dest = dest.with_server_name(via.host());
            }
        }
        let flow = transport.send_message(response, &dest).await?;
        Ok(Sent {
            transport: id,
            kind: target.transport,
            destination: Some(dest),
            flow,
            attempts: 1,
            via_rewritten: false,
        })
    }

    /// A response whose target is the name `name` (RFC 3263 §5), the targets tried in order:
    /// - a name in `maddr` (RFC 3261 §18.2.2: the response goes "to the address listed
    ///   there, using the port indicated in sent-by", or the transport default): that name's
    ///   A/AAAA records at `target.port`; the port is given, so no SRV;
    /// - a sent-by name (no `received`): SRV for the Via's transport unless a port is given,
    ///   then A/AAAA.
    async fn reply_by_name(
        &self,
        response: &Message,
        name: &str,
        target: &ResponseTarget,
    ) -> Result<Sent> {
        // `response_target` gives a TTL exactly when the target is the Via's `maddr`.
        let to_maddr = target.ttl.is_some();
        #[cfg(feature = "dns")]
        {
            use crate::uri::{Host, SentBy};
            let sent_by = if to_maddr {
                SentBy {
                    host: Host::parse(name)?,
                    port: Some(target.port),
                    transport: target.transport,
                }
            } else {
                SentBy::from_via(&response.top_via()?)?
            };
            let found = self.resolver()?.resolve_response(&sent_by).await?;
            let candidates = found
                .into_iter()
                .map(|t| Candidate {
                    // A maddr name may resolve to a group (`sip.mcast.net`): its TTL goes too.
                    multicast_ttl: target.ttl,
                    ..Candidate::from(t)
                })
                .collect();
            self.try_candidates(response, candidates).await
        }
        #[cfg(not(feature = "dns"))]
        {
            let _ = response;
            let part = if to_maddr { "maddr" } else { "host" };
            Err(Error::InvalidDestination {
                reason: format!(
                    "Via {part} {name:?} needs DNS resolution (RFC 3263 §5): enable the `dns` feature"
                ),
            })
        }
    }

    /// The transport for `kind` to reach `addr`: the one bound to `prefer_local` if given and
    /// open, else the first whose address family can reach `addr`.
    pub(crate) fn pick(
        &self,
        kind: TransportKind,
        addr: SocketAddr,
        prefer_local: Option<SocketAddr>,
    ) -> Result<(TransportId, Arc<dyn Transport>)> {
        let list = read(&self.transports);
        let open = || {
            list.iter()
                .filter(move |e| e.kind == kind && !e.transport.is_closed())
        };
        let chosen = prefer_local
            .and_then(|l| open().find(|e| e.local == l))
            .or_else(|| open().find(|e| reaches(kind, e.local, addr)));
        if let Some(e) = chosen {
            return Ok((e.id, Arc::clone(&e.transport)));
        }
        match open().next() {
            Some(e) => Err(Error::AddressFamilyMismatch {
                transport: kind,
                local: e.local,
                peer: addr,
            }),
            None => Err(Error::TransportUnavailable { kind }),
        }
    }
}

/// Whether a transport bound to `local` can send to `peer`: a wildcard-bound stream transport
/// (client or listener on `0.0.0.0`/`::`) dials either family; a UDP socket reaches its own
/// family (IPv4 too from a dual-stack `[::]`); a specific address reaches its family.
fn reaches(kind: TransportKind, local: SocketAddr, peer: SocketAddr) -> bool {
    let peer_v4 = match peer.ip() {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    };
    if local.ip().is_unspecified() {
        kind != TransportKind::Udp || local.is_ipv6() || peer_v4
    } else {
        local.is_ipv4() == peer_v4
    }
}

/// Refused or reset: the cases RFC 3261 §18.1.1 retries over UDP.
fn refused_or_reset(e: &Error) -> bool {
    use std::io::ErrorKind::{ConnectionRefused, ConnectionReset};
    match e {
        Error::Connect { source, .. } | Error::Io { source, .. } => {
            matches!(source.kind(), ConnectionRefused | ConnectionReset)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn family_rules() {
        use TransportKind::{Tcp, Udp};
        assert!(reaches(Udp, sa("0.0.0.0:1"), sa("127.0.0.1:5060")));
        assert!(!reaches(Udp, sa("0.0.0.0:1"), sa("[::1]:5060")));
        assert!(reaches(Udp, sa("[::]:1"), sa("127.0.0.1:5060")));
        assert!(reaches(Tcp, sa("0.0.0.0:0"), sa("[::1]:5060")));
        assert!(!reaches(Tcp, sa("127.0.0.1:5"), sa("[::1]:5060")));
        assert!(reaches(Tcp, sa("[::1]:5"), sa("[::1]:5060")));
    }

    #[test]
    fn send_to_from_received_and_display() {
        let m = Message::parse(sip_transport_api::bytes::Bytes::from_static(
            b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n",
        ))
        .expect("msg");
        let r = ReceivedMessage::new(
            m,
            sa("127.0.0.1:1"),
            sa("127.0.0.1:2"),
            TransportKind::Udp,
            None,
        );
        assert_eq!(
            SendTo::from(&r),
            SendTo::Reply {
                flow: None,
                local: Some(sa("127.0.0.1:2"))
            }
        );
        assert_eq!(
            SendTo::uri("sip:example.com;transport=tcp")
                .expect("uri")
                .to_string(),
            "sip:example.com;transport=tcp"
        );
        assert!(matches!(
            SendTo::uri("tel:+1"),
            Err(Error::InvalidUri { .. })
        ));
        assert_eq!(
            SendTo::address(TransportKind::Tcp, sa("127.0.0.1:5060")).to_string(),
            "tcp:127.0.0.1:5060"
        );
    }

    #[test]
    fn manager_is_send_sync_and_futures_are_send() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _g = rt.enter();
        let (m, _rx) = TransportManager::new(ManagerConfig::default()).expect("manager");
        send_sync(&m);
        let msg = Message::parse(sip_transport_api::bytes::Bytes::from_static(
            b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 0\r\n\r\n",
        ))
        .expect("msg");
        send(&m.send_message(&msg, SendTo::Flow(FlowId::next())));
        send(&m.close());
    }
}
