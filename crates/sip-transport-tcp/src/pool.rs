//! `ConnectionPool`: the open connections of one transport, by flow and by remote address,
//! the connection limits (total, and inbound per remote IP), and the dials in flight so that
//! concurrent sends to a new destination share one dial.
//!
//! TLS server names (RFC 5922 §7.2, RFC 5923 §6): a connection verified for one name must not
//! carry requests for another name it was never verified for. So an address may have several
//! connections (say, one dialed for each name), and a destination that names a server reuses
//! one only if it was dialed for that name or the connector says its peer serves the name
//! ([`StreamConnector::serves_name`](crate::StreamConnector::serves_name); TCP: always).
//! Dials in flight are keyed by address and name. A destination without a name reuses any
//! connection to the address, as before.
//!
//! One short-held mutex: it is taken to set up and tear down connections and once per send to
//! find the connection, never on the receive path (each driver holds its own handle).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use sip_transport_api::{Error, FlowId, Result};
use tokio::sync::watch;

use crate::connection::{ConnState, Connection};

/// What a dial in flight publishes: `None` until it finishes.
pub(crate) type DialOutcome = Option<std::result::Result<Arc<Connection>, Error>>;

/// A dial in flight: the server name it verifies (`None`: unnamed destination) and where its
/// outcome is published.
type Dial = (Option<Arc<str>>, watch::Receiver<DialOutcome>);

/// The answer to "which connection goes to this address (for this name)?".
pub(crate) enum Route {
    /// An open connection.
    Open(Arc<Connection>),
    /// Another sender is dialing it: wait for the outcome. `true`: the dial is for this
    /// destination (same name, or the destination names none), so its outcome is the
    /// sender's; `false`: it is for another name, and the sender checks that the connection
    /// serves its name (else it dials with `exact`).
    Wait(watch::Receiver<DialOutcome>, bool),
    /// Nobody is: the caller dials, holding the reserved slot, and publishes the outcome.
    Dial(Slot, watch::Sender<DialOutcome>),
}

/// Why an inbound connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total,
    PerIp,
    Closed,
}

#[derive(Debug, Default)]
struct Inner {
    closed: bool,
    by_flow: HashMap<FlowId, Arc<Connection>>,
    /// Oldest first; usually one per address.
    by_addr: HashMap<SocketAddr, Vec<Arc<Connection>>>,
    inbound_per_ip: HashMap<IpAddr, usize>,
    /// Slots held: open connections plus accepts in handshake plus dials in flight.
    slots: usize,
    /// Dials in flight, by address, then by server name (`None`: unnamed destination).
    dialing: HashMap<SocketAddr, Vec<Dial>>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ConnectionPool {
    inner: Mutex<Inner>,
    max_total: usize,
    max_per_ip: usize,
}

/// A reserved connection slot (and, inbound, a per-IP one). Released on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    pool: Arc<ConnectionPool>,
    inbound_ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut p = self.pool.lock();
        p.slots = p.slots.saturating_sub(1);
        if let Some(ip) = self.inbound_ip
            && let Entry::Occupied(mut e) = p.inbound_per_ip.entry(ip)
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

impl ConnectionPool {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnectionPool {
            inner: Mutex::new(Inner::default()),
            max_total,
            max_per_ip,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Plain maps and counters; no panic leaves them inconsistent mid-update.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves a slot for an accepted connection from `ip`, or says why not.
    pub(crate) fn reserve_inbound(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> std::result::Result<Slot, Refusal> {
        let mut slot = self.reserve_inbound_total()?;
        self.charge_ip(&mut slot, ip)?; // on refusal, dropping `slot` releases the total
        Ok(slot)
    }

    /// Reserves a slot for an accepted connection against the total limit only; the per-IP
    /// limit is charged later with [`charge_ip`](Self::charge_ip), once the client's address
    /// is known (behind a PROXY-protocol balancer, the socket's peer is the balancer).
    pub(crate) fn reserve_inbound_total(self: &Arc<Self>) -> std::result::Result<Slot, Refusal> {
        let mut p = self.lock();
        if p.closed {
            return Err(Refusal::Closed);
        }
        if p.slots >= self.max_total {
            return Err(Refusal::Total);
        }
        p.slots += 1;
        Ok(Slot {
            pool: Arc::clone(self),
            inbound_ip: None,
        })
    }

    /// Counts `slot` against the per-IP limit of `ip` (released with the slot), or says no;
    /// the slot keeps its total count either way. A slot is charged at most once.
    pub(crate) fn charge_ip(
        &self,
        slot: &mut Slot,
        ip: IpAddr,
    ) -> std::result::Result<(), Refusal> {
        debug_assert!(slot.inbound_ip.is_none(), "per-IP count charged twice");
        if slot.inbound_ip.is_some() {
            return Ok(());
        }
        let ip = ip.to_canonical();
        let mut p = self.lock();
        let n = p.inbound_per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            if *n == 0 {
                p.inbound_per_ip.remove(&ip);
            }
            return Err(Refusal::PerIp);
        }
        *n += 1;
        slot.inbound_ip = Some(ip);
        Ok(())
    }

    /// Finds the connection for `addr` and server `name`, joins a dial in flight, or reserves
    /// a slot for a new dial (`ConnectionLimit` when none is left).
    ///
    /// With a name, an open connection is reused only if it was dialed for that name or
    /// `serves` accepts it; a dial in flight for another name is joined (to check its
    /// connection afterwards) unless `exact`. Without a name, the newest open connection to
    /// the address, or any dial in flight to it, is used.
    pub(crate) fn route(
        self: &Arc<Self>,
        addr: SocketAddr,
        name: Option<&str>,
        exact: bool,
        serves: &dyn Fn(&Connection) -> bool,
    ) -> Result<Route> {
        let mut p = self.lock();
        if p.closed {
            return Err(Error::TransportClosed);
        }
        let usable = |c: &Connection| match name {
            None => true,
            Some(n) => c.dialed_for_name(n) || serves(c),
        };
        if let Some(c) = p.by_addr.get(&addr).and_then(|cs| {
            cs.iter()
                .rev()
                .find(|c| c.state() == ConnState::Open && usable(c))
        }) {
            return Ok(Route::Open(Arc::clone(c)));
        }
        if let Some(dials) = p.dialing.get(&addr) {
            let same = |key: &Option<Arc<str>>| match (key.as_deref(), name) {
                (_, None) => true,
                (Some(k), Some(n)) => k.eq_ignore_ascii_case(n),
                (None, Some(_)) => false,
            };
            if let Some((_, rx)) = dials.iter().find(|(key, _)| same(key)) {
                return Ok(Route::Wait(rx.clone(), true));
            }
            if !exact && let Some((_, rx)) = dials.first() {
                return Ok(Route::Wait(rx.clone(), false));
            }
        }
        if p.slots >= self.max_total {
            return Err(Error::ConnectionLimit {
                limit: self.max_total,
            });
        }
        p.slots += 1;
        let (tx, rx) = watch::channel(None);
        p.dialing
            .entry(addr)
            .or_default()
            .push((name.map(Arc::from), rx));
        Ok(Route::Dial(
            Slot {
                pool: Arc::clone(self),
                inbound_ip: None,
            },
            tx,
        ))
    }

    /// Ends the dial to `addr` for `name` (success or not) so later senders stop waiting on
    /// it.
    pub(crate) fn end_dial(&self, addr: SocketAddr, name: Option<&str>) {
        let mut p = self.lock();
        if let Entry::Occupied(mut e) = p.dialing.entry(addr) {
            let dials = e.get_mut();
            if let Some(i) = dials.iter().position(|(key, _)| key.as_deref() == name) {
                dials.remove(i);
            }
            if dials.is_empty() {
                e.remove();
            }
        }
    }

    /// Adds an established connection; false once the pool is closed (the caller drops it).
    pub(crate) fn insert(&self, conn: &Arc<Connection>) -> bool {
        let mut p = self.lock();
        if p.closed {
            return false;
        }
        p.by_flow.insert(conn.flow, Arc::clone(conn));
        p.by_addr
            .entry(conn.peer)
            .or_default()
            .push(Arc::clone(conn));
        true
    }

    /// Removes a connection (its slot is released by its `Slot`).
    pub(crate) fn remove(&self, conn: &Connection) {
        let mut p = self.lock();
        p.by_flow.remove(&conn.flow);
        if let Entry::Occupied(mut e) = p.by_addr.entry(conn.peer) {
            e.get_mut().retain(|c| c.flow != conn.flow);
            if e.get().is_empty() {
                e.remove();
            }
        }
    }

    /// The connection of `flow`, if it is still in the pool.
    pub(crate) fn get(&self, flow: FlowId) -> Option<Arc<Connection>> {
        self.lock().by_flow.get(&flow).cloned()
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.lock().by_flow.len()
    }

    /// Refuses everything from now on and returns the connections to drain.
    pub(crate) fn close(&self) -> Vec<Arc<Connection>> {
        let mut p = self.lock();
        p.closed = true;
        p.by_flow.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_transport_api::{Direction, Limits};

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn limits_and_release() {
        let pool = Arc::new(ConnectionPool::new(3, 2));
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let a = pool.reserve_inbound(ip).expect("1");
        let _b = pool.reserve_inbound(ip).expect("2");
        assert_eq!(pool.reserve_inbound(ip).err(), Some(Refusal::PerIp));
        let _c = pool
            .reserve_inbound("10.0.0.2".parse().expect("ip"))
            .expect("other ip");
        assert_eq!(
            pool.reserve_inbound("10.0.0.3".parse().expect("ip")).err(),
            Some(Refusal::Total)
        );
        assert!(matches!(
            pool.route(addr("10.0.0.9:5060"), None, false, &|_| true),
            Err(Error::ConnectionLimit { limit: 3 })
        ));
        drop(a);
        pool.reserve_inbound(ip).expect("released");
    }

    #[test]
    fn per_ip_charged_after_the_total() {
        let pool = Arc::new(ConnectionPool::new(3, 1));
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let mut a = pool.reserve_inbound_total().expect("1");
        let mut b = pool.reserve_inbound_total().expect("2");
        pool.charge_ip(&mut a, ip).expect("first for ip");
        assert_eq!(pool.charge_ip(&mut b, ip), Err(Refusal::PerIp));
        // The refused slot still holds its total count until dropped, then releases it once.
        let _c = pool.reserve_inbound_total().expect("3");
        assert_eq!(pool.reserve_inbound_total().err(), Some(Refusal::Total));
        drop(b);
        let _d = pool.reserve_inbound_total().expect("b released");
        drop(a);
        assert!(pool.lock().inbound_per_ip.is_empty());
        assert_eq!(pool.lock().slots, 2);
    }

    #[test]
    fn dial_dedup_and_routes() {
        let pool = Arc::new(ConnectionPool::new(10, 10));
        let to = addr("127.0.0.1:5060");
        let route = |name| pool.route(to, name, false, &|_| true);
        let Ok(Route::Dial(slot, tx)) = route(None) else {
            panic!("expected to dial")
        };
        assert!(matches!(route(None), Ok(Route::Wait(_, true))));
        let c = Arc::new(Connection::new(
            to,
            to,
            Direction::Outbound,
            &Limits::default(),
        ));
        assert!(pool.insert(&c));
        pool.end_dial(to, None);
        let _ = tx.send(Some(Ok(Arc::clone(&c))));
        assert!(matches!(route(None), Ok(Route::Open(_))));
        assert!(pool.get(c.flow).is_some());
        pool.remove(&c);
        drop(slot);
        assert!(pool.get(c.flow).is_none());
        assert_eq!(pool.close().len(), 0);
        assert!(matches!(route(None), Err(Error::TransportClosed)));
    }

    #[test]
    fn names_keep_connections_apart() {
        let pool = Arc::new(ConnectionPool::new(10, 10));
        let to = addr("127.0.0.1:5061");
        let never = |_: &Connection| false;
        let Ok(Route::Dial(_a_slot, _)) = pool.route(to, Some("a.test"), false, &never) else {
            panic!("expected to dial a.test")
        };
        // Same name (any case) joins; another name joins only to check, and dials if exact.
        assert!(matches!(
            pool.route(to, Some("A.TEST"), false, &never),
            Ok(Route::Wait(_, true))
        ));
        assert!(matches!(
            pool.route(to, Some("b.test"), false, &never),
            Ok(Route::Wait(_, false))
        ));
        let Ok(Route::Dial(_b_slot, _)) = pool.route(to, Some("b.test"), true, &never) else {
            panic!("expected to dial b.test")
        };
        let a = Arc::new(
            Connection::new(to, to, Direction::Outbound, &Limits::default())
                .with_peer(Box::new(()), Some(Arc::from("a.test"))),
        );
        assert!(pool.insert(&a));
        pool.end_dial(to, Some("a.test"));
        // Reused for its own name and for unnamed destinations, not for a name it may not
        // serve.
        assert!(
            matches!(pool.route(to, Some("A.test"), false, &never), Ok(Route::Open(c)) if c.flow == a.flow)
        );
        assert!(matches!(
            pool.route(to, None, false, &never),
            Ok(Route::Open(_))
        ));
        assert!(matches!(
            pool.route(to, Some("c.test"), true, &never),
            Ok(Route::Dial(..))
        ));
        assert!(matches!(
            pool.route(to, Some("c.test"), false, &|_| true),
            Ok(Route::Open(_))
        ));
        pool.end_dial(to, Some("b.test"));
        pool.end_dial(to, Some("c.test"));
        pool.remove(&a);
        assert!(matches!(
            pool.route(to, Some("a.test"), false, &never),
            Ok(Route::Dial(..))
        ));
    }
}
