//! The per-connection driver: one task per open WebSocket that reads messages, writes its
//! bounded queue, answers pings, sends keepalive pings and gives up on a peer that does not
//! answer them, enforces the idle, write and message-read timeouts, and closes with a Close
//! frame.
//!
//! Reading and writing happen in one poll function, so a peer that stops reading cannot stop
//! us from reading (no write/write deadlock) and a connection costs one task. Each WebSocket
//! message is one SIP message (RFC 7118 §5.1), framed by the api crate's
//! [`decode_datagram`]; there is no second framing here.
//!
//! The message-read timeout (`Limits::header_read_timeout`, the stream transports' slowloris
//! bound) runs from the first byte of a message to its last, however it is split into frames
//! or segments. tungstenite only yields whole messages, so the start of one is seen below it,
//! by [`WatchedIo`]; this driver arms its timer from there. A keepalive ping is answered when
//! any byte arrives after it (counted by [`WatchedIo`]; a peer in the middle of a long frame
//! can only pong after it, RFC 6455 §5.4, and is alive meanwhile), or the flow is dead
//! (RFC 5626 §4.4.1).
//!
//! Backpressure: when the application's event channel is full, the connection stops reading
//! (the peer's TCP window closes) until there is room, but goes on writing its queue (the
//! application's responses), keeps its write timeout and keepalive pings, and still closes on
//! shutdown, as the stream transports' driver does. Its last events (one read before the
//! close, the loss report, `ConnectionClosed`) wait for room only until `close()` has passed
//! its grace period (or the transport is dropped); then they are dropped.
//!
//! No accepted message is lost silently. A message counts as sent once tungstenite has flushed
//! it. When a close begins, the flow leaves the table and its queue takes no more messages
//! (later sends fail with `FlowClosed`); what was queued before is still written within the
//! close grace period where the close allows it. Whatever is left when the connection ends
//! (queued, or handed to tungstenite but not flushed) is counted in `send_errors` and reported
//! by one `TransportEvent::Error` for the flow, as the stream transports' driver does.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use sip_transport_tcp::deadline_after as after;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tracing::{debug, trace, warn};

use sip_transport_api::stats::{add, dec, inc};
use sip_transport_api::{
    CloseReason, Datagram, Direction, Error, FlowId, ReceivedMessage, TransportEvent,
    TransportKind, decode_datagram, stamp_received_owned,
};

use crate::registry::Slot;
use crate::shared::Shared;
use crate::stream::WsIo;
use crate::watched_io::WatchedIo;
use crate::write_queue::QueueReceiver;

/// One WebSocket connection as the driver holds it.
pub(crate) type WsStream = WebSocketStream<WatchedIo<WsIo>>;

/// Who and what one connection is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    pub(crate) flow: FlowId,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) kind: TransportKind,
    pub(crate) direction: Direction,
}

/// What one turn of the I/O poll produced.
enum Step {
    Received(WsMessage),
    ReadError(WsError),
    PeerClosed,
    WriteError(WsError),
    Timeout(CloseReason),
}

/// The I/O state polled as one future.
struct Io {
    ws: WsStream,
    rx: QueueReceiver,
    /// The connection's place in the table and the count; the flow leaves the table as soon
    /// as the close begins.
    slot: Slot,
    peer: SocketAddr,
    need_flush: bool,
    /// Messages handed to tungstenite since its last flush. They count as sent only once
    /// flushed, so a connection that ends with them inside reports them as lost.
    unflushed: usize,
    /// Their bytes, released from the queue's byte budget once flushed.
    unflushed_bytes: usize,
    /// Why accepted messages may be left unwritten, for the loss report.
    fatal: Option<Error>,
    /// Last frame received, or data message sent (pings we send do not count).
    last_activity: Instant,
    /// Last frame of any kind sent or received (for keepalive pings).
    last_traffic: Instant,
    write_blocked_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    idle: Duration,
    write_timeout: Duration,
    keepalive: Option<Duration>,
    /// `Limits::header_read_timeout`: from a message's first byte to its last.
    message_timeout: Duration,
    /// The start of the message in progress the timer was last armed for.
    partial_armed: Option<Instant>,
    pong_timeout: Duration,
    /// The keepalive ping awaiting an answer: when it was sent, and the bytes read by then.
    ping_outstanding: Option<(Instant, u64)>,
    /// `false` while an event waits for room in the channel: the read side and its clocks
    /// (idle, message read, pong) are paused.
    reading: bool,
    shared: Arc<Shared>,
}

impl Io {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        // Writes first: move queued messages into tungstenite's bounded buffer.
        loop {
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Step::WriteError(e)),
                Poll::Pending => break,
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(msg)) => {
                    let len = msg.len();
                    // Taken off the queue: written once flushed, lost if refused here.
                    self.unflushed += 1;
                    self.unflushed_bytes += len;
                    if let Err(e) = Pin::new(&mut self.ws).start_send(msg) {
                        return Poll::Ready(Step::WriteError(e));
                    }
                    add(&self.shared.counters.bytes_sent, len);
                    self.need_flush = true;
                    let now = Instant::now();
                    self.last_activity = now;
                    self.last_traffic = now;
                }
                // The queue is closed only once a close has begun; this is not polled after.
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        if self.need_flush {
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.need_flush = false;
                    self.write_blocked_since = None;
                    self.flushed();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Step::WriteError(e)),
                Poll::Pending => {
                    if self.write_blocked_since.is_none() {
                        self.write_blocked_since = Some(Instant::now());
                        self.rearm();
                    }
                }
            }
        }
        match self.poll_read(cx) {
            Poll::Ready(Some(Ok(msg))) => {
                let now = Instant::now();
                self.last_activity = now;
                self.last_traffic = now;
                // Whatever it is (a pong included), the peer is alive.
                self.ping_outstanding = None;
                return Poll::Ready(Step::Received(msg));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Step::ReadError(e)),
            Poll::Ready(None) => return Poll::Ready(Step::PeerClosed),
            Poll::Pending => {
                // Bytes of a new message may have arrived: its deadline may be the next one.
                let partial = self.ws.get_ref().partial_since();
                if partial != self.partial_armed {
                    self.partial_armed = partial;
                    self.rearm();
                }
            }
        }
        // Timers last: a deadline that passed may have moved (the activity checks are lazy).
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if let Some(since) = self.write_blocked_since
                && now >= after(since, self.write_timeout)
            {
                return Poll::Ready(Step::Timeout(CloseReason::WriteTimeout));
            }
            let read = self.ws.get_ref().bytes_read();
            // The read clocks stand still while we do not read.
            if self.reading {
                self.partial_armed = self.ws.get_ref().partial_since();
                if let Some(since) = self.partial_armed
                    && now >= after(since, self.message_timeout)
                {
                    return Poll::Ready(Step::Timeout(CloseReason::HeaderReadTimeout));
                }
                if let Some((sent, seen)) = self.ping_outstanding {
                    if read != seen {
                        // A pong, or any byte: the peer is alive.
                        self.ping_outstanding = None;
                    } else if now >= after(sent, self.pong_timeout) {
                        return Poll::Ready(Step::Timeout(CloseReason::KeepaliveTimeout));
                    }
                }
                if now >= after(self.last_activity, self.idle) {
                    return Poll::Ready(Step::Timeout(CloseReason::IdleTimeout));
                }
            }
            if let Some(every) = self.keepalive
                && now >= after(self.last_traffic, every)
            {
                // Writes still pending are traffic enough; otherwise RFC 6455 §5.5.2: a
                // ping, whose pong (or any frame) counts as activity.
                if !self.need_flush {
                    let ping = WsMessage::Ping(Bytes::new());
                    if let Err(e) = Pin::new(&mut self.ws).start_send(ping) {
                        return Poll::Ready(Step::WriteError(e));
                    }
                    trace!("keepalive ping");
                    // An unanswered earlier ping keeps its deadline.
                    self.ping_outstanding.get_or_insert((now, read));
                    self.need_flush = true;
                    cx.waker().wake_by_ref();
                }
                self.last_traffic = now;
            }
            self.rearm();
        }
        Poll::Pending
    }

    /// The next message from the peer; `Pending` while reading is paused.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<WsMessage, WsError>>> {
        if self.reading {
            Pin::new(&mut self.ws).poll_next(cx)
        } else {
            Poll::Pending
        }
    }

    /// Reading stops until an event finds room in the channel (backpressure).
    fn pause_reading(&mut self) {
        self.reading = false;
        self.rearm();
    }

    /// Reading resumes after a pause, and the read clocks start over: the pause was ours,
    /// not the peer's (as the stream driver does).
    fn resume_reading(&mut self) {
        self.reading = true;
        let now = Instant::now();
        self.last_activity = now;
        self.ws.get_mut().restart_clock(now);
        if let Some((sent, _)) = &mut self.ping_outstanding {
            *sent = now;
        }
        self.rearm();
    }

    /// tungstenite flushed everything it was handed: those messages are sent.
    fn flushed(&mut self) {
        if self.unflushed > 0 {
            add(&self.shared.counters.messages_sent, self.unflushed);
            self.unflushed = 0;
            self.rx.release(std::mem::take(&mut self.unflushed_bytes));
        }
    }

    /// The close begins: the flow leaves the table (new sends to the peer open a new
    /// connection) and the queue takes no more messages (sends on the flow fail with
    /// `FlowClosed`). What it already holds can still be read. Idempotent.
    fn begin_close(&mut self) {
        self.slot.unregister();
        self.rx.close();
    }

    /// Notes why the connection failed, for the report of what it left unwritten.
    fn failed(&mut self, e: WsError) {
        if let WsError::Io(source) = e {
            // `TimedOut` is the kernel giving up on bytes we wrote (`TCP_USER_TIMEOUT` = the
            // write timeout, `sip_transport_tcp::bound_unacked`): our write stall, as on TCP.
            let error = if source.kind() == std::io::ErrorKind::TimedOut {
                Error::WriteTimeout {
                    peer: self.peer,
                    after: self.write_timeout,
                }
            } else {
                Error::Io {
                    peer: self.peer,
                    source,
                }
            };
            self.fatal.get_or_insert(error);
        }
    }

    /// Sets the timer to the next moment something may be due.
    fn rearm(&mut self) {
        let mut next = after(self.last_traffic, Duration::MAX);
        if let Some(since) = self.write_blocked_since {
            next = next.min(after(since, self.write_timeout));
        }
        if let Some(every) = self.keepalive {
            next = next.min(after(self.last_traffic, every));
        }
        if self.reading {
            next = next.min(after(self.last_activity, self.idle));
            if let Some(since) = self.partial_armed {
                next = next.min(after(since, self.message_timeout));
            }
            if let Some((sent, _)) = self.ping_outstanding {
                next = next.min(after(sent, self.pong_timeout));
            }
        }
        self.timer.as_mut().reset(next);
    }
}

/// Runs one open connection until it closes, then reports what it could not write and
/// `ConnectionClosed`. `slot` holds its place in the connection count.
pub(crate) async fn drive(
    ws: WsStream,
    info: ConnInfo,
    rx: QueueReceiver,
    slot: Slot,
    shared: Arc<Shared>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    inc(&shared.counters.connections_open);
    let now = Instant::now();
    let limits = &shared.limits;
    let mut io = Io {
        ws,
        rx,
        slot,
        peer: info.peer,
        need_flush: false,
        unflushed: 0,
        unflushed_bytes: 0,
        fatal: None,
        last_activity: now,
        last_traffic: now,
        write_blocked_since: None,
        timer: Box::pin(tokio::time::sleep_until(after(now, limits.idle_timeout))),
        idle: limits.idle_timeout,
        write_timeout: limits.write_timeout,
        keepalive: shared.keepalive,
        message_timeout: limits.header_read_timeout,
        partial_armed: None,
        pong_timeout: shared.pong_timeout,
        ping_outstanding: None,
        reading: true,
        shared: shared.clone(),
    };
    let opened = TransportEvent::ConnectionOpened {
        flow: info.flow,
        peer: info.peer,
        local: info.local,
        kind: info.kind,
        direction: info.direction,
    };
    let (reason, pending) = match shared.events.try_send(opened) {
        Err(mpsc::error::TrySendError::Closed(_)) => (CloseReason::LocalClose, None),
        sent => {
            // A full channel: the connection runs, but reads nothing until there is room.
            let mut pending = match sent {
                Err(mpsc::error::TrySendError::Full(ev)) => Some(ev),
                _ => None,
            };
            io.rearm();
            let reason = run(&mut io, info, &mut shutdown, &mut pending).await;
            (reason, pending)
        }
    };
    let lost = unwritten(&mut io).await;
    let Io {
        ws, slot, fatal, ..
    } = io;
    drop(ws);
    debug!(?reason, lost, "connection closed");
    dec(&shared.counters.connections_open);
    if matches!(
        reason,
        CloseReason::IdleTimeout
            | CloseReason::WriteTimeout
            | CloseReason::HeaderReadTimeout
            | CloseReason::KeepaliveTimeout
    ) {
        inc(&shared.counters.timeouts);
    }
    if let Some(ev) = pending {
        // Read before the close: still the application's, if it takes it in time.
        deliver_final(&shared, ev).await;
    }
    if lost > 0 {
        // As the stream transports do: one report per connection, every message counted.
        add(&shared.counters.send_errors, lost);
        warn!(lost, ?reason, "queued messages were not written");
        let error = fatal.unwrap_or(Error::FlowClosed { flow: info.flow });
        let error = TransportEvent::Error {
            peer: Some(info.peer),
            flow: Some(info.flow),
            error,
        };
        deliver_final(&shared, error).await;
    }
    let closed = TransportEvent::ConnectionClosed {
        flow: info.flow,
        peer: info.peer,
        kind: info.kind,
        reason,
    };
    deliver_final(&shared, closed).await;
    drop(slot);
}

/// Queues one of a closed connection's last events. The application's backpressure applies
/// while the transport runs; once `close()` has passed its grace period, or the transport
/// was dropped, an event the channel has no room for is dropped (as in the stream
/// transports), so that no task outlives the transport waiting on a reader that is gone.
async fn deliver_final(shared: &Shared, ev: TransportEvent) {
    let ev = match shared.events.try_send(ev) {
        Err(mpsc::error::TrySendError::Full(ev)) => ev,
        _ => return,
    };
    let mut stopped = shared.stopped.subscribe();
    tokio::select! {
        _ = shared.events.send(ev) => {}
        _ = stopped.wait_for(|stopped| *stopped) => {}
    }
}

/// At the end of a connection: how many accepted messages were not written, those still
/// queued and those tungstenite holds unflushed.
async fn unwritten(io: &mut Io) -> usize {
    io.begin_close();
    // tungstenite may have written its buffer while it closed (answering the peer's Close):
    // one flush that does not wait tells.
    if io.unflushed > 0 && matches!(io.ws.flush().now_or_never(), Some(Ok(()))) {
        io.flushed();
    }
    let mut lost = io.unflushed;
    io.unflushed = 0;
    // The queue is closed: this ends once it is empty (a send in progress finishes at once).
    while io.rx.recv().await.is_some() {
        lost += 1;
    }
    lost
}

/// What became of an event that waited for room in the channel.
enum Room {
    /// Delivered: reading goes on.
    Delivered,
    /// Nobody listens for events any more.
    Gone,
    /// The transport is closing; the event is still undelivered.
    Shutdown(TransportEvent),
    /// The connection ended meanwhile (a write failed or timed out); the event is still
    /// undelivered.
    Ended(Step, TransportEvent),
}

/// Backpressure: no reading until the application makes room in the event channel (TCP flow
/// control reaches the peer). Writing (the application's responses), the write timeout and
/// keepalive pings go on, and shutdown ends the wait, as in the stream transports' driver.
async fn wait_for_room(
    io: &mut Io,
    ev: TransportEvent,
    shutdown: &mut watch::Receiver<bool>,
) -> Room {
    io.pause_reading();
    let shared = io.shared.clone();
    let room = tokio::select! {
        biased;
        _ = shutdown.changed() => Room::Shutdown(ev),
        permit = shared.events.reserve() => match permit {
            Ok(permit) => {
                permit.send(ev);
                Room::Delivered
            }
            Err(_) => Room::Gone,
        },
        step = poll_fn(|cx| io.poll_step(cx)) => Room::Ended(step, ev),
    };
    if matches!(room, Room::Delivered) {
        io.resume_reading();
    }
    room
}

/// Runs the connection until it ends. `pending` holds an event the channel had no room for;
/// whatever is left there at the end is delivered with the connection's last events.
async fn run(
    io: &mut Io,
    info: ConnInfo,
    shutdown: &mut watch::Receiver<bool>,
    pending: &mut Option<TransportEvent>,
) -> CloseReason {
    if *shutdown.borrow_and_update() {
        return Box::pin(close_locally(io, CloseCode::Away, "shutting down")).await;
    }
    loop {
        let step = match pending.take() {
            // Rare paths are boxed so their state does not enlarge every idle task.
            Some(ev) => match Box::pin(wait_for_room(io, ev, shutdown)).await {
                Room::Delivered => continue,
                Room::Gone => return Box::pin(close_locally(io, CloseCode::Away, "")).await,
                Room::Shutdown(ev) => {
                    *pending = Some(ev);
                    return Box::pin(close_locally(io, CloseCode::Away, "shutting down")).await;
                }
                // Not reading, so not a message: a write failure or timeout.
                Room::Ended(step, ev) => {
                    *pending = Some(ev);
                    step
                }
            },
            None => tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    return Box::pin(close_locally(io, CloseCode::Away, "shutting down")).await;
                }
                step = poll_fn(|cx| io.poll_step(cx)) => step,
            },
        };
        match step {
            Step::Received(msg) => {
                let Some(event) = event_of(&io.shared, info, msg) else {
                    continue;
                };
                match io.shared.events.try_send(event) {
                    Ok(()) => {}
                    // Reading stops until there is room (the next turn waits for it).
                    Err(mpsc::error::TrySendError::Full(event)) => *pending = Some(event),
                    // The application dropped its event receiver.
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return Box::pin(close_locally(io, CloseCode::Away, "")).await;
                    }
                }
            }
            Step::PeerClosed => return CloseReason::PeerClosed,
            Step::ReadError(e) => {
                let (reason, report) = Box::pin(on_read_error(io, e)).await;
                // Reading happens only with nothing pending, so this takes no one's place.
                *pending = report.map(|error| TransportEvent::Error {
                    peer: Some(info.peer),
                    flow: Some(info.flow),
                    error,
                });
                return reason;
            }
            Step::WriteError(e) => {
                let reason = io_reason(&e);
                io.failed(e);
                return reason;
            }
            Step::Timeout(CloseReason::IdleTimeout) => {
                // A silent peer is likely gone: tell it why, but do not wait for its answer.
                Box::pin(send_close(io, CloseCode::Normal, "idle")).await;
                return CloseReason::IdleTimeout;
            }
            Step::Timeout(CloseReason::HeaderReadTimeout) => {
                // RFC 6455 §7.4.1: 1008, a policy violation (a message far too slow).
                debug!("message read timeout");
                Box::pin(send_close(io, CloseCode::Policy, "message too slow")).await;
                return CloseReason::HeaderReadTimeout;
            }
            Step::Timeout(CloseReason::KeepaliveTimeout) => {
                // The peer is likely gone: a Close frame in passing, no wait for its answer.
                debug!("keepalive ping unanswered");
                Box::pin(send_close(io, CloseCode::Away, "keepalive timeout")).await;
                return CloseReason::KeepaliveTimeout;
            }
            Step::Timeout(reason) => {
                if reason == CloseReason::WriteTimeout {
                    io.fatal = Some(Error::WriteTimeout {
                        peer: io.peer,
                        after: io.write_timeout,
                    });
                }
                return reason;
            }
        }
    }
}

/// The event one WebSocket message makes, if any.
fn event_of(shared: &Shared, info: ConnInfo, msg: WsMessage) -> Option<TransportEvent> {
    let bytes = match msg {
        WsMessage::Text(t) => Bytes::from(t),
        WsMessage::Binary(b) => b,
        WsMessage::Ping(_) => {
            // tungstenite queues the pong and sends it with the next read or write.
            inc(&shared.counters.keepalives_received);
            return None;
        }
        WsMessage::Pong(_) => {
            inc(&shared.counters.keepalives_received);
            return Some(TransportEvent::Pong {
                flow: info.flow,
                peer: info.peer,
            });
        }
        // The peer's Close: tungstenite answers it; the next poll ends the stream.
        WsMessage::Close(_) | WsMessage::Frame(_) => return None,
    };
    add(&shared.counters.bytes_received, bytes.len());
    let event = match decode_datagram(bytes, &shared.limits) {
        Ok(Datagram::Message(m)) => {
            inc(&shared.counters.messages_received);
            // RFC 3261 §18.2.1 / RFC 3581 §4; responses come back unchanged.
            let m = stamp_received_owned(m, info.peer);
            TransportEvent::Message(ReceivedMessage::new(
                m,
                info.peer,
                info.local,
                info.kind,
                Some(info.flow),
            ))
        }
        Ok(Datagram::Keepalive) => {
            inc(&shared.counters.keepalives_received);
            return None;
        }
        Err(error) => {
            // Message boundaries survive in WebSocket: only this message is lost.
            inc(&shared.counters.malformed);
            debug!(%error, "malformed SIP message");
            TransportEvent::Error {
                peer: Some(info.peer),
                flow: Some(info.flow),
                error,
            }
        }
    };
    Some(event)
}

/// A read failed: closes as the error asks. Returns why, and the error to report to the
/// application (with the connection's last events: the channel may have no room for it now).
async fn on_read_error(io: &mut Io, e: WsError) -> (CloseReason, Option<Error>) {
    io.begin_close();
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            // RFC 6455 §7.4.1: 1009, message too big to process.
            inc(&io.shared.counters.malformed);
            send_close(io, CloseCode::Size, "message too big").await;
            let error = Error::MessageTooLarge {
                size,
                limit: max_size,
            };
            (CloseReason::ProtocolError, Some(error))
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            (CloseReason::PeerClosed, None)
        }
        WsError::Io(err) => {
            let reason = io_reason_of(err.kind());
            io.failed(WsError::Io(err));
            (reason, None)
        }
        WsError::ConnectionClosed | WsError::AlreadyClosed => (CloseReason::PeerClosed, None),
        other => {
            inc(&io.shared.counters.malformed);
            debug!(error = %other, "WebSocket protocol error");
            let code = match other {
                WsError::Utf8(_) => CloseCode::Invalid,
                _ => CloseCode::Protocol,
            };
            send_close(io, code, "").await;
            let error = Error::Malformed {
                reason: "WebSocket protocol violation",
            };
            (CloseReason::ProtocolError, Some(error))
        }
    }
}

fn io_reason(e: &WsError) -> CloseReason {
    match e {
        WsError::Io(err) => io_reason_of(err.kind()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => CloseReason::PeerClosed,
        _ => CloseReason::ProtocolError,
    }
}

/// The close reason of a socket error: `TimedOut` is the kernel's write timeout (see
/// [`Io::failed`]).
fn io_reason_of(kind: std::io::ErrorKind) -> CloseReason {
    if kind == std::io::ErrorKind::TimedOut {
        CloseReason::WriteTimeout
    } else {
        CloseReason::Io(kind)
    }
}

/// Writes what was queued before the close began, then a Close frame, and flushes, bounded by
/// the close grace period; the connection is dropped after, whatever the peer does.
async fn send_close(io: &mut Io, code: CloseCode, reason: &'static str) {
    let deadline = after(Instant::now(), io.shared.limits.close_grace);
    close_within(io, code, reason, deadline).await;
}

/// Our side closes: stop taking new messages, write what is queued, send a Close frame and
/// wait for the peer's Close (RFC 6455 §7.1.2), all within the close grace period.
async fn close_locally(io: &mut Io, code: CloseCode, reason: &'static str) -> CloseReason {
    let deadline = after(Instant::now(), io.shared.limits.close_grace);
    if close_within(io, code, reason, deadline).await {
        let ws = &mut io.ws;
        let _ = tokio::time::timeout_at(deadline, async {
            // Anything the peer still sends is dropped; we wait for its Close or EOF.
            while let Some(r) = ws.next().await {
                if r.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    CloseReason::LocalClose
}

/// Closes the queue, writes what it holds, then sends a Close frame and flushes, by
/// `deadline`. `true` when all of it was flushed; otherwise the reason is noted for the
/// report of what was left unwritten.
async fn close_within(
    io: &mut Io,
    code: CloseCode,
    reason: &'static str,
    deadline: Instant,
) -> bool {
    io.begin_close();
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    match tokio::time::timeout_at(deadline, write_queue_then_close(io, frame)).await {
        Ok(Ok(())) => {
            io.flushed();
            true
        }
        Ok(Err(e)) => {
            io.failed(e);
            false
        }
        Err(_) => {
            let after = io.shared.limits.close_grace;
            io.fatal.get_or_insert(Error::WriteTimeout {
                peer: io.peer,
                after,
            });
            false
        }
    }
}

/// Hands every queued message to tungstenite, then sends the Close frame (which flushes them
/// all).
async fn write_queue_then_close(io: &mut Io, frame: CloseFrame) -> Result<(), WsError> {
    while let Some(msg) = io.rx.try_recv() {
        let len = msg.len();
        io.unflushed += 1;
        io.unflushed_bytes += len;
        io.ws.feed(msg).await?;
        add(&io.shared.counters.bytes_sent, len);
    }
    io.ws.send(WsMessage::Close(Some(frame))).await
}
