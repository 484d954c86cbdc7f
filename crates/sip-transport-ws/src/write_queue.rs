//! One connection's write queue: a bounded channel of WebSocket messages plus the count of the
//! bytes it holds, so that `Limits::write_queue_depth` (messages) and
//! `Limits::max_write_queue_bytes` both bound what a peer that does not read can make us
//! hold. A message's bytes count from its send until the driver has flushed it (while queued
//! and while tungstenite holds it), as in the stream transports.
//!
//! A message larger than the byte budget is accepted when the queue holds nothing, so that a
//! budget below the largest message cannot make a message impossible to send. No I/O here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use sip_transport_api::Limits;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The message or byte limit is reached.
    Full,
    /// The connection's close has begun.
    Closed,
}

/// The senders' end (one per flow in the connection table, cloned by each sender).
#[derive(Debug, Clone)]
pub(crate) struct QueueSender {
    tx: mpsc::Sender<WsMessage>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The connection driver's end.
#[derive(Debug)]
pub(crate) struct QueueReceiver {
    rx: mpsc::Receiver<WsMessage>,
    bytes: Arc<AtomicUsize>,
}

/// A write queue bounded by `limits`.
pub(crate) fn channel(limits: &Limits) -> (QueueSender, QueueReceiver) {
    let (tx, rx) = mpsc::channel(Limits::capacity(limits.write_queue_depth));
    let bytes = Arc::new(AtomicUsize::new(0));
    let sender = QueueSender {
        tx,
        bytes: bytes.clone(),
        max_bytes: limits.max_write_queue_bytes,
    };
    (sender, QueueReceiver { rx, bytes })
}

impl QueueSender {
    /// Queues `msg`, failing fast when either limit is reached or the close has begun.
    pub(crate) fn try_send(&self, msg: WsMessage) -> Result<(), Refused> {
        if self.tx.is_closed() {
            return Err(Refused::Closed);
        }
        let len = msg.len();
        let max = self.max_bytes;
        // Reserve the bytes first, so concurrent senders cannot overshoot the budget together.
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                let sum = held.saturating_add(len);
                (held == 0 || sum <= max).then_some(sum)
            })
            .map_err(|_| Refused::Full)?;
        self.tx.try_send(msg).map_err(|e| {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => Refused::Full,
                mpsc::error::TrySendError::Closed(_) => Refused::Closed,
            }
        })
    }
}

impl QueueReceiver {
    /// The next queued message, as `mpsc::Receiver::poll_recv`. Its bytes still count until
    /// [`QueueReceiver::release`].
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<WsMessage>> {
        self.rx.poll_recv(cx)
    }

    /// The next queued message if there is one now.
    pub(crate) fn try_recv(&mut self) -> Option<WsMessage> {
        self.rx.try_recv().ok()
    }

    /// The next queued message; `None` once the queue is closed and empty.
    pub(crate) async fn recv(&mut self) -> Option<WsMessage> {
        self.rx.recv().await
    }

    /// Takes no more messages (later sends fail with [`Refused::Closed`]).
    pub(crate) fn close(&mut self) {
        self.rx.close();
    }

    /// `bytes` of messages taken from the queue were flushed: room for as many.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize) -> WsMessage {
        WsMessage::binary(vec![b'x'; n])
    }

    #[test]
    fn bounded_in_messages_and_bytes() {
        let limits = Limits::default()
            .with_write_queue_depth(3)
            .with_max_write_queue_bytes(10);
        let (tx, mut rx) = channel(&limits);
        // Larger than the budget, on an empty queue: accepted (it could never go otherwise).
        tx.try_send(msg(25)).expect("alone");
        assert_eq!(tx.try_send(msg(1)), Err(Refused::Full));
        let taken = rx.try_recv().expect("queued");
        // Taken by the driver but not flushed: still counts.
        assert_eq!(tx.try_send(msg(1)), Err(Refused::Full));
        rx.release(taken.len());
        tx.try_send(msg(6)).expect("6");
        tx.try_send(msg(4)).expect("10");
        assert_eq!(tx.try_send(msg(1)), Err(Refused::Full), "11 > 10");
        let six = rx.try_recv().expect("6");
        rx.release(six.len());
        tx.try_send(msg(1)).expect("5 bytes");
        tx.try_send(msg(0)).expect("3 messages");
        assert_eq!(tx.try_send(msg(0)), Err(Refused::Full), "4 messages > 3");
        rx.close();
        assert_eq!(tx.try_send(msg(1)), Err(Refused::Closed));
    }
}
