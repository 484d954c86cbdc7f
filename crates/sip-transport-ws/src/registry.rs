//! The connection table of one transport: open flows and their write queues, the flows to each
//! peer address (for reuse), connection counts against the limits, and dials in progress (so
//! concurrent sends to a new destination share one handshake).
//!
//! Counts are held by RAII [`Slot`]s, taken before a socket is used and released when its task
//! ends, so no path can leak a count. No I/O here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use sip_transport_api::{Destination, Direction, Error, FlowId};

use crate::WsScheme;
use crate::write_queue::QueueSender;

/// The outcome of a dial, shared by everyone waiting for it. `None` while in progress.
pub(crate) type DialState = Option<Result<FlowId, Arc<Error>>>;

/// What identifies an outbound connection target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DialKey {
    pub(crate) addr: SocketAddr,
    pub(crate) scheme: WsScheme,
    pub(crate) server_name: Option<Arc<str>>,
    pub(crate) resource: Option<Arc<str>>,
}

/// The address as the table keys it: IPv4-mapped IPv6 (`::ffff:a.b.c.d`, seen on dual-stack
/// listeners) becomes plain IPv4, so one peer has one key.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl DialKey {
    pub(crate) fn new(dest: &Destination, scheme: WsScheme) -> Self {
        DialKey {
            addr: canonical(dest.addr),
            scheme,
            server_name: dest.server_name.clone(),
            resource: dest.resource.clone(),
        }
    }
}

/// One open flow.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its bounded write queue.
    pub(crate) tx: QueueSender,
    pub(crate) peer: SocketAddr,
    pub(crate) scheme: WsScheme,
    pub(crate) direction: Direction,
    /// For outbound flows, the name and resource dialed (inbound: `None`, matches any).
    pub(crate) server_name: Option<Arc<str>>,
    pub(crate) resource: Option<Arc<str>>,
}

impl Entry {
    /// Whether a send to `dest` over `scheme` may use this flow: same scheme, and the name and
    /// resource agree where both sides have one.
    fn serves(&self, dest: &Destination, scheme: WsScheme) -> bool {
        fn agree(a: &Option<Arc<str>>, b: &Option<Arc<str>>, nocase: bool) -> bool {
            match (a, b) {
                (Some(a), Some(b)) if nocase => a.eq_ignore_ascii_case(b),
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
        }
        self.scheme == scheme
            && agree(&self.server_name, &dest.server_name, true)
            && agree(&self.resource, &dest.resource, false)
    }
}

#[derive(Debug, Default)]
struct Table {
    flows: HashMap<FlowId, Entry>,
    by_addr: HashMap<SocketAddr, Vec<FlowId>>,
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
    pending: HashMap<DialKey, watch::Receiver<DialState>>,
}

/// The connection table; see the module docs.
#[derive(Debug)]
pub(crate) struct Registry {
    table: Mutex<Table>,
    max_total: usize,
    max_per_ip: usize,
    /// Signalled whenever a slot is released (close() waits for the count to reach zero).
    released: Notify,
}

/// Why a slot was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Total(usize),
    PerIp(usize),
}

/// A counted connection (handshaking or open). Dropping it releases the count and, if a flow
/// was registered through it, unregisters the flow.
#[derive(Debug)]
pub(crate) struct Slot {
    registry: Arc<Registry>,
    ip: Option<IpAddr>,
    flow: Option<FlowId>,
}

/// What a sender needs to queue a message on a flow.
#[derive(Debug, Clone)]
pub(crate) struct FlowSender {
    pub(crate) flow: FlowId,
    pub(crate) peer: SocketAddr,
    pub(crate) tx: QueueSender,
}

/// Either an open flow to use, or a dial to wait for.
#[derive(Debug)]
pub(crate) enum Route {
    Open(FlowSender),
    /// Someone else is dialing; wait on this.
    Wait(watch::Receiver<DialState>),
    /// Nobody is: the caller must dial and report through this sender.
    Dial(watch::Sender<DialState>),
}

impl Registry {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Registry {
            table: Mutex::new(Table::default()),
            max_total,
            max_per_ip,
            released: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves consistent counts (no multi-step updates).
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an inbound connection from `ip` against both limits.
    pub(crate) fn reserve_inbound(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let ip = ip.to_canonical();
        let mut t = self.lock();
        if t.total >= self.max_total {
            return Err(Refused::Total(self.max_total));
        }
        let n = t.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refused::PerIp(self.max_per_ip));
        }
        *n += 1;
        t.total += 1;
        Ok(Slot {
            registry: self.clone(),
            ip: Some(ip),
            flow: None,
        })
    }

    /// Counts an inbound connection against the total limit only; the per-IP limit is charged
    /// with [`charge_ip`](Self::charge_ip) once the client's address is known (behind a
    /// PROXY-protocol balancer, the socket's peer is the balancer).
    pub(crate) fn reserve_inbound_total(self: &Arc<Self>) -> Result<Slot, Refused> {
        self.reserve_outbound()
    }

    /// Counts `slot` against the per-IP limit of `ip` (released with the slot), or says no;
    /// the slot keeps its total count either way. A slot is charged at most once.
    pub(crate) fn charge_ip(&self, slot: &mut Slot, ip: IpAddr) -> Result<(), Refused> {
        debug_assert!(slot.ip.is_none(), "per-IP count charged twice");
        if slot.ip.is_some() {
            return Ok(());
        }
        let ip = ip.to_canonical();
        let mut t = self.lock();
        let n = t.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            if *n == 0 {
                t.per_ip.remove(&ip);
            }
            return Err(Refused::PerIp(self.max_per_ip));
        }
        *n += 1;
        slot.ip = Some(ip);
        Ok(())
    }

    /// Counts an outbound connection against the total limit.
    pub(crate) fn reserve_outbound(self: &Arc<Self>) -> Result<Slot, Refused> {
        let mut t = self.lock();
        if t.total >= self.max_total {
            return Err(Refused::Total(self.max_total));
        }
        t.total += 1;
        Ok(Slot {
            registry: self.clone(),
            ip: None,
            flow: None,
        })
    }

    /// Registers an open flow under `slot` (which then unregisters it when dropped).
    pub(crate) fn register(&self, slot: &mut Slot, flow: FlowId, entry: Entry) {
        let mut t = self.lock();
        t.by_addr
            .entry(canonical(entry.peer))
            .or_default()
            .push(flow);
        t.flows.insert(flow, entry);
        slot.flow = Some(flow);
    }

    /// Registers the flow a dial produced and ends the dial, in one step, so a concurrent sender
    /// sees either the dial or the flow.
    pub(crate) fn register_dialed(
        &self,
        slot: &mut Slot,
        key: &DialKey,
        flow: FlowId,
        entry: Entry,
    ) {
        let mut t = self.lock();
        t.pending.remove(key);
        t.by_addr
            .entry(canonical(entry.peer))
            .or_default()
            .push(flow);
        t.flows.insert(flow, entry);
        slot.flow = Some(flow);
    }

    /// Ends a failed dial.
    pub(crate) fn dial_failed(&self, key: &DialKey) {
        self.lock().pending.remove(key);
    }

    /// The write queue of `flow`, if it is open.
    pub(crate) fn sender(&self, flow: FlowId) -> Option<FlowSender> {
        let t = self.lock();
        t.flows.get(&flow).map(|e| FlowSender {
            flow,
            peer: e.peer,
            tx: e.tx.clone(),
        })
    }

    /// The newest open flow that serves `dest`, else the dial in progress, else a new dial.
    pub(crate) fn route(&self, dest: &Destination, scheme: WsScheme) -> Route {
        let mut t = self.lock();
        if let Some(ids) = t.by_addr.get(&canonical(dest.addr)) {
            for id in ids.iter().rev() {
                if let Some(e) = t.flows.get(id).filter(|e| e.serves(dest, scheme)) {
                    return Route::Open(FlowSender {
                        flow: *id,
                        peer: e.peer,
                        tx: e.tx.clone(),
                    });
                }
            }
        }
        let key = DialKey::new(dest, scheme);
        if let Some(rx) = t.pending.get(&key) {
            return Route::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        t.pending.insert(key, rx);
        Route::Dial(tx)
    }

    /// Open flows and direction, for stats and tests.
    pub(crate) fn open_flows(&self) -> Vec<(FlowId, SocketAddr, Direction)> {
        let t = self.lock();
        t.flows
            .iter()
            .map(|(id, e)| (*id, e.peer, e.direction))
            .collect()
    }

    /// Connections counted now (handshaking and open).
    pub(crate) fn total(&self) -> usize {
        self.lock().total
    }

    /// Waits until no connection is counted.
    pub(crate) async fn wait_empty(&self) {
        loop {
            let notified = self.released.notified();
            if self.total() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn unregister_locked(t: &mut Table, flow: FlowId) {
        if let Some(e) = t.flows.remove(&flow)
            && let Some(ids) = t.by_addr.get_mut(&canonical(e.peer))
        {
            ids.retain(|f| *f != flow);
            if ids.is_empty() {
                t.by_addr.remove(&canonical(e.peer));
            }
        }
    }
}

impl Slot {
    /// Removes the flow from the table now (senders see `FlowClosed`); the count stays until
    /// the slot is dropped.
    pub(crate) fn unregister(&mut self) {
        if let Some(flow) = self.flow.take() {
            Registry::unregister_locked(&mut self.registry.lock(), flow);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut t = self.registry.lock();
            if let Some(flow) = self.flow.take() {
                Registry::unregister_locked(&mut t, flow);
            }
            if let Some(ip) = self.ip
                && let Some(n) = t.per_ip.get_mut(&ip)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    t.per_ip.remove(&ip);
                }
            }
            t.total = t.total.saturating_sub(1);
        }
        self.registry.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        peer: SocketAddr,
        scheme: WsScheme,
        name: Option<&str>,
    ) -> (Entry, crate::write_queue::QueueReceiver) {
        let limits = sip_transport_api::Limits::default().with_write_queue_depth(1);
        let (tx, rx) = crate::write_queue::channel(&limits);
        (
            Entry {
                tx,
                peer,
                scheme,
                direction: Direction::Outbound,
                server_name: name.map(Arc::from),
                resource: None,
            },
            rx,
        )
    }

    #[test]
    fn limits_and_release() {
        let r = Registry::new(3, 2);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let a = r.reserve_inbound(ip).expect("1");
        let _b = r.reserve_inbound(ip).expect("2");
        assert_eq!(r.reserve_inbound(ip).err(), Some(Refused::PerIp(2)));
        let _c = r.reserve_outbound().expect("3");
        assert_eq!(r.reserve_outbound().err(), Some(Refused::Total(3)));
        drop(a);
        assert_eq!(r.total(), 2);
        assert!(r.reserve_inbound(ip).is_ok());
    }

    #[test]
    fn per_ip_charged_after_the_total() {
        let r = Registry::new(3, 1);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut a = r.reserve_inbound_total().expect("1");
        let mut b = r.reserve_inbound_total().expect("2");
        r.charge_ip(&mut a, ip).expect("first for ip");
        assert_eq!(r.charge_ip(&mut b, ip), Err(Refused::PerIp(1)));
        assert_eq!(r.total(), 2);
        drop(b);
        assert_eq!(r.total(), 1);
        drop(a);
        assert_eq!(r.total(), 0);
        assert!(r.lock().per_ip.is_empty());
    }

    #[test]
    fn routing_reuses_matching_flows_and_shares_dials() {
        let r = Registry::new(10, 10);
        let peer: SocketAddr = "192.0.2.1:443".parse().expect("addr");
        let dest = Destination::new(peer).with_server_name("A.example");
        let mut slot = r.reserve_outbound().expect("slot");
        let (e, _rx) = entry(peer, WsScheme::Wss, Some("a.example"));
        let flow = FlowId::next();
        r.register(&mut slot, flow, e);
        assert!(matches!(r.route(&dest, WsScheme::Wss), Route::Open(s) if s.flow == flow));
        // Another name, or plain ws, needs its own connection; the second asker waits.
        let other = Destination::new(peer).with_server_name("b.example");
        assert!(matches!(r.route(&other, WsScheme::Wss), Route::Dial(_)));
        assert!(matches!(r.route(&other, WsScheme::Wss), Route::Wait(_)));
        assert!(matches!(r.route(&dest, WsScheme::Ws), Route::Dial(_)));
        drop(slot);
        assert!(r.sender(flow).is_none());
        assert_eq!(r.total(), 0);
    }
}
