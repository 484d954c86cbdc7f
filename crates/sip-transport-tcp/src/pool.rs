//! `ConnectionPool`: the open connections of one transport, by flow and by remote address,
//! the connection limits (total, and inbound per remote IP), and the dials in flight so that
//! concurrent sends to a new destination share one dial.
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

/// The answer to "which connection goes to this address?".
pub(crate) enum Route {
    /// An open connection.
    Open(Arc<Connection>),
    /// Another sender is dialing it: wait for the outcome.
    Wait(watch::Receiver<DialOutcome>),
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
    by_addr: HashMap<SocketAddr, Arc<Connection>>,
    inbound_per_ip: HashMap<IpAddr, usize>,
    /// Slots held: open connections plus accepts in handshake plus dials in flight.
    slots: usize,
    dialing: HashMap<SocketAddr, watch::Receiver<DialOutcome>>,
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
        let mut p = self.lock();
        if p.closed {
            return Err(Refusal::Closed);
        }
        if p.slots >= self.max_total {
            return Err(Refusal::Total);
        }
        let n = p.inbound_per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        p.slots += 1;
        Ok(Slot {
            pool: Arc::clone(self),
            inbound_ip: Some(ip),
        })
    }

    /// Finds the connection for `addr`, joins a dial in flight, or reserves a slot for a new
    /// dial (`ConnectionLimit` when none is left).
    pub(crate) fn route(self: &Arc<Self>, addr: SocketAddr) -> Result<Route> {
        let mut p = self.lock();
        if p.closed {
            return Err(Error::TransportClosed);
        }
        if let Some(c) = p.by_addr.get(&addr)
            && c.state() == ConnState::Open
        {
            return Ok(Route::Open(Arc::clone(c)));
        }
        if let Some(rx) = p.dialing.get(&addr) {
            return Ok(Route::Wait(rx.clone()));
        }
        if p.slots >= self.max_total {
            return Err(Error::ConnectionLimit {
                limit: self.max_total,
            });
        }
        p.slots += 1;
        let (tx, rx) = watch::channel(None);
        p.dialing.insert(addr, rx);
        Ok(Route::Dial(
            Slot {
                pool: Arc::clone(self),
                inbound_ip: None,
            },
            tx,
        ))
    }

    /// Ends the dial to `addr` (success or not) so later senders stop waiting on it.
    pub(crate) fn end_dial(&self, addr: SocketAddr) {
        self.lock().dialing.remove(&addr);
    }

    /// Adds an established connection; false once the pool is closed (the caller drops it).
    pub(crate) fn insert(&self, conn: &Arc<Connection>) -> bool {
        let mut p = self.lock();
        if p.closed {
            return false;
        }
        p.by_flow.insert(conn.flow, Arc::clone(conn));
        p.by_addr.insert(conn.peer, Arc::clone(conn));
        true
    }

    /// Removes a connection (its slot is released by its `Slot`).
    pub(crate) fn remove(&self, conn: &Connection) {
        let mut p = self.lock();
        p.by_flow.remove(&conn.flow);
        if let Entry::Occupied(e) = p.by_addr.entry(conn.peer)
            && e.get().flow == conn.flow
        {
            e.remove();
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
    use sip_transport_api::Direction;

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
            pool.route(addr("10.0.0.9:5060")),
            Err(Error::ConnectionLimit { limit: 3 })
        ));
        drop(a);
        pool.reserve_inbound(ip).expect("released");
    }

    #[test]
    fn dial_dedup_and_routes() {
        let pool = Arc::new(ConnectionPool::new(10, 10));
        let to = addr("127.0.0.1:5060");
        let Ok(Route::Dial(slot, tx)) = pool.route(to) else {
            panic!("expected to dial")
        };
        assert!(matches!(pool.route(to), Ok(Route::Wait(_))));
        let c = Arc::new(Connection::new(to, to, Direction::Outbound, 4));
        assert!(pool.insert(&c));
        pool.end_dial(to);
        let _ = tx.send(Some(Ok(Arc::clone(&c))));
        assert!(matches!(pool.route(to), Ok(Route::Open(_))));
        assert!(pool.get(c.flow).is_some());
        pool.remove(&c);
        drop(slot);
        assert!(pool.get(c.flow).is_none());
        assert_eq!(pool.close().len(), 0);
        assert!(matches!(pool.route(to), Err(Error::TransportClosed)));
    }
}
