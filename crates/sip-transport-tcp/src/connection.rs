//! `Connection`: the shared handle of one open connection — its identity (flow, peer,
//! direction) and its bounded write queue. Senders and the pool hold it; the connection's
//! driver task owns the socket and is woken through it. No I/O happens here.
//!
//! The queue counts every message accepted and not yet written (queued here or taken by the
//! driver), and their bytes, so `Limits::write_queue_depth` (messages) and
//! `Limits::max_write_queue_bytes` bound exactly what a slow peer can make us hold.

use std::any::Any;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use sip_transport_api::{Direction, Error, FlowId, Limits, Result};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Carrying traffic.
    Open,
    /// Asked to close: the driver stops reading, flushes the queue, then closes.
    Draining,
    /// Gone: sends fail with `FlowClosed`.
    Closed,
}

#[derive(Debug)]
struct Queue {
    items: VecDeque<Bytes>,
    /// Messages accepted and not yet fully written (here or in the driver's outbox).
    unwritten: usize,
    /// Their bytes.
    unwritten_bytes: usize,
    waker: Option<Waker>,
    state: ConnState,
}

/// One connection, as seen from outside its driver task.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) flow: FlowId,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) direction: Direction,
    /// Outbound: the TLS server name it was dialed and verified for (trailing dot removed),
    /// if the destination named one.
    pub(crate) dialed_for: Option<Arc<str>>,
    /// The connector's `PeerInfo`, type-erased so that the (non-generic) pool can ask the
    /// connector whether this connection serves a name; the driver reads it for `annotate`.
    info: Box<dyn Any + Send + Sync>,
    depth: usize,
    max_bytes: usize,
    queue: Mutex<Queue>,
}

impl Connection {
    /// A connection whose write queue is bounded by `limits` (`write_queue_depth`,
    /// `max_write_queue_bytes`).
    pub(crate) fn new(
        peer: SocketAddr,
        local: SocketAddr,
        direction: Direction,
        limits: &Limits,
    ) -> Self {
        Connection {
            flow: FlowId::next(),
            peer,
            local,
            direction,
            dialed_for: None,
            info: Box::new(()),
            depth: limits.write_queue_depth.max(1),
            max_bytes: limits.max_write_queue_bytes,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                unwritten: 0,
                unwritten_bytes: 0,
                waker: None,
                state: ConnState::Open,
            }),
        }
    }

    /// Sets the connector's peer information and, outbound, the server name dialed for.
    pub(crate) fn with_peer(
        mut self,
        info: Box<dyn Any + Send + Sync>,
        dialed_for: Option<Arc<str>>,
    ) -> Self {
        self.info = info;
        self.dialed_for = dialed_for;
        self
    }

    /// The connector's peer information (`None` only if `T` is not its `PeerInfo` type).
    pub(crate) fn peer_info<T: 'static>(&self) -> Option<&T> {
        self.info.downcast_ref()
    }

    /// Whether this connection was dialed for the server name `name` (ASCII case-insensitive).
    pub(crate) fn dialed_for_name(&self, name: &str) -> bool {
        self.dialed_for
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(name))
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The lock guards plain data that no panic leaves inconsistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current state.
    pub(crate) fn state(&self) -> ConnState {
        self.lock().state
    }

    /// Queues a message for writing. Fails fast: `WriteQueueFull` when `depth` messages are
    /// unwritten or the message would take the unwritten bytes past `max_bytes` (a message
    /// larger than that is accepted when nothing is unwritten: it could never be sent
    /// otherwise), `FlowClosed` when the connection is closed (or draining and
    /// `allow_draining` is false).
    pub(crate) fn enqueue(&self, bytes: Bytes, allow_draining: bool) -> Result<()> {
        let waker = {
            let mut q = self.lock();
            match q.state {
                ConnState::Open => {}
                ConnState::Draining if allow_draining => {}
                _ => return Err(Error::FlowClosed { flow: self.flow }),
            }
            let len = bytes.len();
            let over_budget =
                q.unwritten > 0 && q.unwritten_bytes.saturating_add(len) > self.max_bytes;
            if q.unwritten >= self.depth || over_budget {
                return Err(Error::WriteQueueFull {
                    peer: self.peer,
                    depth: self.depth,
                });
            }
            q.items.push_back(bytes);
            q.unwritten += 1;
            q.unwritten_bytes += len;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Driver side: moves queued messages into `out`, registers the driver's waker and returns
    /// the state.
    pub(crate) fn collect(
        &self,
        out: &mut VecDeque<crate::driver::OutItem>,
        waker: &Waker,
    ) -> ConnState {
        let mut q = self.lock();
        out.extend(q.items.drain(..).map(crate::driver::OutItem::message));
        if q.items.capacity() > 16 {
            q.items = VecDeque::new(); // keep idle connections small
        }
        match &q.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => q.waker = Some(waker.clone()),
        }
        q.state
    }

    /// Driver side: `n` messages of `bytes` bytes in all were fully written.
    pub(crate) fn written(&self, n: usize, bytes: usize) {
        let mut q = self.lock();
        q.unwritten = q.unwritten.saturating_sub(n);
        q.unwritten_bytes = q.unwritten_bytes.saturating_sub(bytes);
    }

    /// Asks the driver to flush and close. No effect unless open.
    pub(crate) fn begin_drain(&self) {
        let waker = {
            let mut q = self.lock();
            if q.state != ConnState::Open {
                return;
            }
            q.state = ConnState::Draining;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Driver side, at exit: closes the queue and returns how many accepted messages were
    /// never written (the caller reports them).
    pub(crate) fn close(&self) -> usize {
        let mut q = self.lock();
        q.state = ConnState::Closed;
        q.items = VecDeque::new();
        q.waker = None;
        q.unwritten_bytes = 0;
        std::mem::take(&mut q.unwritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn conn(depth: usize) -> Connection {
        let a: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        let limits = Limits::default().with_write_queue_depth(depth);
        Connection::new(a, a, Direction::Inbound, &limits)
    }

    #[test]
    fn bounded_in_bytes() {
        let a: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        let limits = Limits::default().with_max_write_queue_bytes(10);
        let c = Connection::new(a, a, Direction::Inbound, &limits);
        let msg = |n: usize| Bytes::from(vec![b'x'; n]);
        // Larger than the budget, on an empty queue: accepted (it could never go otherwise).
        c.enqueue(msg(25), false).expect("alone");
        assert!(matches!(
            c.enqueue(msg(1), false),
            Err(Error::WriteQueueFull { .. })
        ));
        c.written(1, 25);
        c.enqueue(msg(6), false).expect("6");
        c.enqueue(msg(4), false).expect("10");
        assert!(c.enqueue(msg(1), false).is_err(), "11 > 10");
        c.written(1, 6);
        c.enqueue(msg(6), false).expect("room again");
    }

    #[test]
    fn bounded_and_counts_unwritten() {
        let c = conn(2);
        c.enqueue(Bytes::from_static(b"a"), false).expect("1");
        c.enqueue(Bytes::from_static(b"b"), false).expect("2");
        assert!(matches!(
            c.enqueue(Bytes::from_static(b"c"), false),
            Err(Error::WriteQueueFull { depth: 2, .. })
        ));
        let mut out = VecDeque::new();
        assert_eq!(c.collect(&mut out, Waker::noop()), ConnState::Open);
        assert_eq!(out.len(), 2);
        // Taken by the driver but not written: still counts.
        assert!(c.enqueue(Bytes::from_static(b"c"), false).is_err());
        c.written(1, 1);
        c.enqueue(Bytes::from_static(b"c"), false)
            .expect("room again");
        c.begin_drain();
        assert!(matches!(
            c.enqueue(Bytes::from_static(b"d"), false),
            Err(Error::FlowClosed { .. })
        ));
        c.written(1, 1);
        c.enqueue(Bytes::from_static(b"d"), true)
            .expect("responses may still go");
        assert_eq!(c.close(), 2);
        assert!(c.enqueue(Bytes::from_static(b"e"), true).is_err());
    }
}
