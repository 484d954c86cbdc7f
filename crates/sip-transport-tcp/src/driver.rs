//! The connection driver: one task per connection, generic over the byte stream (TCP, TLS).
//!
//! It owns the stream, the [`StreamDecoder`] and the outbox, and does in a single poll loop:
//! - reads straight into the decoder's buffer (no copy), delivers messages with `received`/
//!   `rport` stamped (RFC 3261 §18.2.1, RFC 3581 §4), answers keepalive pings with a pong and
//!   reports pongs (RFC 5626 §4.4.1), and sends its own pings on outbound flows when asked,
//!   closing the flow (`KeepaliveTimeout`) when the peer stays silent for `pong_timeout` after
//!   a ping;
//! - stops reading while the event channel is full, so TCP pushes back on the peer; a stream
//!   message is never dropped for a full channel;
//! - writes the queue with vectored writes (many messages per syscall);
//! - enforces the idle, message-read (slowloris: a message's header block and body must
//!   arrive within `Limits::header_read_timeout` of its first byte), pong and write-stall
//!   timeouts (bytes already in the kernel's send buffer are the kernel's to time:
//!   `TCP_USER_TIMEOUT`, see `dial.rs`);
//! - on close (local, peer, timeout, framing error) flushes what it can within the close grace
//!   period, reports every accepted message it could not write, and emits `ConnectionClosed`;
//!   after a framing error or the peer's FIN with requests still unanswered, it stops reading
//!   but keeps the write side open until each has its final response written (within the
//!   grace).
//!
//! An idle connection holds no read buffer and an empty outbox: its memory is this task's
//! state and the kernel socket.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sip_transport_api::stats::{add, inc};
use sip_transport_api::{
    CloseReason, Direction, Error, Frame, ReceivedMessage, StreamDecoder, TransportEvent,
    stamp_received_owned,
};
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, Sleep};

use crate::StreamConnector;
use crate::connection::{ConnState, Connection};
use crate::pool::Slot;
use crate::transport::Shared;

/// Spare room below which a read first reserves [`READ_CHUNK`] bytes.
const MIN_READ: usize = 1024;
/// Read buffer granted to a connection that has bytes to read.
const READ_CHUNK: usize = 8 * 1024;
/// Reads per wakeup before yielding to other connections.
const READ_BUDGET: usize = 16;
/// Writes per wakeup before yielding.
const WRITE_BUDGET: usize = 16;
/// Most buffers in one vectored write.
const MAX_IOV: usize = 64;
/// After a framing error or a FIN with requests unanswered: how often the write side checks
/// whether the application has answered them all (bounded by the close grace period).
const ANSWER_LINGER: Duration = Duration::from_millis(200);
/// Most pongs waiting in the outbox; more pings from a peer that does not read are not
/// answered (a ping flood cannot grow memory).
const MAX_QUEUED_PONGS: u8 = 4;

const PING: &[u8] = b"\r\n\r\n";
const PONG: &[u8] = b"\r\n";

/// `t + d`, or about 30 years after `t` when that overflows: a timeout configured as
/// "never" (`Duration::MAX`) must not panic a connection task. For every transport's timers
/// (the WebSocket crate's too).
pub fn deadline_after(t: Instant, d: Duration) -> Instant {
    const NEVER: Duration = Duration::from_secs(30 * 365 * 86_400);
    t.checked_add(d).unwrap_or_else(|| t + NEVER)
}

use deadline_after as after;

/// Where the keepalive cycle of an outbound flow is (RFC 5626 §4.4.1). One ping is in flight
/// at a time: a second ping before the first is answered proves nothing more, would pile up in
/// a stalled outbox, and the two pongs (CRLF, CRLF) could be read back as one ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keepalive {
    /// `keepalive_at` is when the next ping goes out (`None`: no pings on this flow).
    Idle,
    /// A ping waits in the outbox; its clock starts when it has been written and flushed.
    Queued,
    /// A ping was handed to the stream but not flushed yet (TLS holds it in its session
    /// until then): a stalled flush is the write timeout's business, not the peer's silence.
    Written,
    /// A ping was written: unless a byte arrives first, the flow fails at `keepalive_at`.
    Answer,
}

/// One buffer waiting to be written.
#[derive(Debug)]
pub(crate) struct OutItem {
    bytes: Bytes,
    /// A SIP message (counted against the write queue), not a keepalive.
    message: bool,
}

impl OutItem {
    pub(crate) fn message(bytes: Bytes) -> Self {
        OutItem {
            bytes,
            message: true,
        }
    }

    /// A final response (`SIP/2.0 2xx`-`6xx`): the answer to one request read here.
    fn is_final_response(&self) -> bool {
        self.message
            && self.bytes.starts_with(b"SIP/2.0 ")
            && self.bytes.get(8).is_some_and(|d| (b'2'..=b'6').contains(d))
    }

    fn keepalive(bytes: &'static [u8]) -> Self {
        OutItem {
            bytes: Bytes::from_static(bytes),
            message: false,
        }
    }
}

/// What the poll loop hands back to the async part of the task.
enum Step {
    /// An event the channel had no room for: wait for room (reading paused). Boxed: this is
    /// the rare path, and the task keeps it across an await.
    Deliver(Box<TransportEvent>),
    /// The connection is over.
    Close(CloseReason),
}

/// See the module docs.
pub(crate) struct Driver<C: StreamConnector> {
    shared: Arc<Shared<C>>,
    conn: Arc<Connection>,
    stream: C::Stream,
    dec: StreamDecoder,
    out: VecDeque<OutItem>,
    /// Bytes of `out[0]` already written.
    head_written: usize,
    needs_flush: bool,
    /// Messages the stream took but has not flushed yet (a TLS session buffers records).
    /// They count as written only after a flush, so a close that drops the stream with them
    /// still inside reports them as lost instead of losing them silently.
    /// (Both counts are `u32`, to keep the driver small: a flush follows every write, so
    /// they stay near one write's worth.)
    unflushed: u32,
    /// Their bytes.
    unflushed_bytes: u32,
    pongs_queued: u8,
    ping_outstanding: bool,
    last_activity: Instant,
    /// When the message being received started arriving (its first byte, as far as a read
    /// shows it): the message-read (slowloris) timer. `None` between messages.
    message_since: Option<Instant>,
    stall_since: Option<Instant>,
    /// The keepalive timer: the next ping, or the deadline for its answer (see `keepalive`).
    keepalive_at: Option<Instant>,
    keepalive: Keepalive,
    pings_sent: u64,
    /// Set when closing gracefully: the deadline for the flush, and the reason to report.
    drain: Option<(Instant, CloseReason)>,
    /// Requests delivered from this connection (ACK aside, which gets no answer) less the
    /// final responses queued on it since: answers the application may still send here.
    unanswered: u32,
    /// While draining after a framing error or the peer's FIN with requests unanswered: the
    /// next check of whether they have been (the answers still go back on this flow, RFC 3261
    /// §18.2.2). An empty outbox closes the connection only once this is `None`.
    linger: Option<Instant>,
    /// Why accepted messages may be left unwritten, for the error event.
    fatal: Option<Error>,
    _slot: Slot,
}

impl<C: StreamConnector> Driver<C> {
    pub(crate) fn new(
        shared: Arc<Shared<C>>,
        conn: Arc<Connection>,
        stream: C::Stream,
        slot: Slot,
    ) -> Box<Self> {
        let mut dec = StreamDecoder::new(shared.config.limits.clone());
        // No read buffer until there is something to read (idle connections stay small).
        *dec.buffer_mut() = BytesMut::new();
        let now = Instant::now();
        let mut d = Box::new(Driver {
            conn,
            stream,
            dec,
            out: VecDeque::new(),
            head_written: 0,
            needs_flush: false,
            unflushed: 0,
            unflushed_bytes: 0,
            pongs_queued: 0,
            ping_outstanding: false,
            last_activity: now,
            message_since: None,
            stall_since: None,
            keepalive_at: None,
            keepalive: Keepalive::Idle,
            pings_sent: 0,
            drain: None,
            unanswered: 0,
            linger: None,
            fatal: None,
            _slot: slot,
            shared,
        });
        if d.conn.direction == Direction::Outbound {
            d.keepalive_at = d.ping_delay().map(|p| after(now, p));
        }
        d
    }

    /// Runs the connection to its end.
    ///
    /// The driver is boxed and the rare paths below are boxed futures, so the task of an idle
    /// connection is small (async fn arguments are stored twice in the future).
    pub(crate) async fn run(self: Box<Self>) {
        let mut this = self;
        tracing::debug!(local = %this.conn.local, "connection open");
        let sleep = tokio::time::sleep_until(Instant::now() + Duration::from_secs(3600));
        let mut sleep = pin!(sleep);
        let opened = TransportEvent::ConnectionOpened {
            flow: this.conn.flow,
            peer: this.conn.peer,
            local: this.conn.local,
            kind: this.shared.kind,
            direction: this.conn.direction,
        };
        let mut pending = match this.shared.events.try_send(opened) {
            Err(TrySendError::Full(ev)) => Some(Box::new(ev)),
            _ => None,
        };
        let reason = loop {
            if let Some(ev) = pending.take() {
                // No temporaries held across the await below: they would sit in every task.
                let full = match this.shared.events.try_reserve() {
                    Ok(permit) => {
                        permit.send(*ev);
                        None
                    }
                    Err(TrySendError::Full(())) => Some(ev),
                    Err(TrySendError::Closed(())) => None,
                };
                if let Some(ev) = full {
                    let waited = Box::pin(this.wait_for_room(ev, sleep.as_mut())).await;
                    if let Err((reason, ev)) = waited {
                        pending = Some(ev);
                        break reason;
                    }
                    this.resume_reading();
                }
            }
            match poll_fn(|cx| this.poll_io(cx, sleep.as_mut())).await {
                Step::Deliver(ev) => pending = Some(ev),
                Step::Close(reason) => break reason,
            }
        };
        Box::pin(this.finish(reason, pending)).await;
    }

    /// Backpressure: no reading until the application makes room in the event channel (TCP
    /// flow control reaches the peer); writing and timers go on. `Err` if the connection ended
    /// meanwhile, with the event still undelivered.
    async fn wait_for_room(
        &mut self,
        ev: Box<TransportEvent>,
        mut sleep: Pin<&mut Sleep>,
    ) -> Result<(), (CloseReason, Box<TransportEvent>)> {
        let shared = Arc::clone(&self.shared);
        tokio::select! {
            biased;
            permit = shared.events.reserve() => {
                if let Ok(permit) = permit {
                    permit.send(*ev);
                }
                Ok(())
            }
            reason = poll_fn(|cx| self.poll_rest(cx, sleep.as_mut(), false)) => Err((reason, ev)),
        }
    }

    /// After a pause in reading, the read timers start over: the pause was ours (a pong may
    /// be waiting unread in the socket).
    fn resume_reading(&mut self) {
        let now = Instant::now();
        self.last_activity = now;
        if self.message_since.is_some() {
            self.message_since = Some(now);
        }
        if self.keepalive == Keepalive::Answer {
            self.keepalive_at = Some(after(now, self.shared.config.pong_timeout));
        }
    }

    fn poll_io(&mut self, cx: &mut Context<'_>, sleep: Pin<&mut Sleep>) -> Poll<Step> {
        self.sync_queue(cx);
        if self.drain.is_none()
            && let Some(step) = self.poll_read(cx)
        {
            return Poll::Ready(step);
        }
        self.poll_rest(cx, sleep, true).map(Step::Close)
    }

    /// Takes queued messages and notices a close request.
    fn sync_queue(&mut self, cx: &mut Context<'_>) {
        let before = self.out.len();
        let state = self.conn.collect(&mut self.out, cx.waker());
        if self.unanswered > 0 {
            let finals = self.out.range(before..).filter(|i| i.is_final_response());
            let n = u32::try_from(finals.count()).unwrap_or(u32::MAX);
            self.unanswered = self.unanswered.saturating_sub(n);
            if self.unanswered == 0 {
                // Lingering only for answers: all are queued, so flush and close.
                self.linger = None;
            }
        }
        if state == ConnState::Draining {
            self.start_drain(CloseReason::LocalClose);
        }
    }

    /// Everything but reading: writes, the end of a drain, timers.
    fn poll_rest(
        &mut self,
        cx: &mut Context<'_>,
        mut sleep: Pin<&mut Sleep>,
        reading: bool,
    ) -> Poll<CloseReason> {
        if !reading {
            self.sync_queue(cx);
        }
        let flushed = match self.poll_write(cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(reason)) => return Poll::Ready(reason),
            Poll::Pending => false,
        };
        if flushed
            && self.linger.is_none()
            && let Some((_, reason)) = &self.drain
        {
            // RFC 5626 §4.4 aside, a clean close: FIN (TCP) or close_notify (TLS).
            if Pin::new(&mut self.stream).poll_shutdown(cx).is_ready() {
                return Poll::Ready(reason.clone());
            }
        }
        loop {
            let deadline = self.next_deadline(reading);
            if sleep.is_elapsed() || deadline < sleep.deadline() {
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some(reason) = self.on_timer(cx, reading) {
                return Poll::Ready(reason);
            }
        }
    }

    /// Reads and decodes until the stream has nothing more, or an event must wait for room.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Option<Step> {
        for _ in 0..READ_BUDGET {
            if let Some(step) = self.decode_buffered() {
                return Some(step);
            }
            if self.dec.buffered() == 0 {
                match C::poll_read_ready(&self.stream, cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Some(Step::Close(self.io_failed(e))),
                    Poll::Pending => {
                        self.release_buffers();
                        return None;
                    }
                }
            }
            let buf = self.dec.buffer_mut();
            if buf.capacity() - buf.len() < MIN_READ {
                buf.reserve(READ_CHUNK);
            }
            let read = pin!(self.stream.read_buf(self.dec.buffer_mut())).poll(cx);
            match read {
                Poll::Ready(Ok(0)) => {
                    // FIN: finish writing what is queued and the answers to come, then close.
                    if self.dec.is_mid_message() {
                        tracing::debug!(buffered = self.dec.buffered(), "peer closed mid-message");
                    }
                    self.start_drain(CloseReason::PeerClosed);
                    if self.unanswered > 0 {
                        // A half-closed connection still carries the answers to what was
                        // read (RFC 3261 §18.2.2: over the request's connection while it is
                        // open), so the write side waits for them as after a framing error.
                        self.linger = Some(Instant::now() + ANSWER_LINGER);
                    }
                    return None;
                }
                Poll::Ready(Ok(n)) => {
                    add(&self.shared.counters.bytes_received, n);
                    self.last_activity = Instant::now();
                    // RFC 5626 §4.4.1 asks for a pong, but any byte ends the wait: the ping
                    // asks whether the flow still carries traffic from the peer, and bytes
                    // answer that as well as a CRLF does. Holding out for the CRLF alone would
                    // fail a live flow whose pong is queued behind a large message the peer is
                    // still sending, or a peer busy with SIP that pongs late; a dead flow (NAT
                    // binding gone, peer crashed) delivers nothing, so it still fails in time.
                    if matches!(self.keepalive, Keepalive::Written | Keepalive::Answer) {
                        self.keepalive = Keepalive::Idle;
                        self.keepalive_at = self.ping_delay().map(|d| after(self.last_activity, d));
                    }
                }
                Poll::Ready(Err(e)) => return Some(Step::Close(self.io_failed(e))),
                Poll::Pending => {
                    self.release_buffers();
                    return None;
                }
            }
        }
        if let Some(step) = self.decode_buffered() {
            return Some(step);
        }
        cx.waker().wake_by_ref(); // budget spent: let other connections run
        None
    }

    /// Decodes every complete frame in the buffer.
    fn decode_buffered(&mut self) -> Option<Step> {
        loop {
            let frame = match self.dec.decode() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    self.track_message_start();
                    return None;
                }
                Err(error) => {
                    // RFC 3261 §18.3: the next message boundary is unknown; close this
                    // connection only.
                    inc(&self.shared.counters.malformed);
                    tracing::debug!(%error, "framing error");
                    self.start_drain(CloseReason::ProtocolError);
                    if self.unanswered > 0 {
                        // Stop reading, but let the answers to what was read go out.
                        self.linger = Some(Instant::now() + ANSWER_LINGER);
                    }
                    return Some(Step::Deliver(Box::new(TransportEvent::Error {
                        peer: Some(self.conn.peer),
                        flow: Some(self.conn.flow),
                        error,
                    })));
                }
            };
            let event = match frame {
                Frame::Message(m) => {
                    // This message is whole: the bytes after it are the next message's,
                    // and its timer starts when a decode finds it incomplete.
                    self.message_since = None;
                    inc(&self.shared.counters.messages_received);
                    if m.is_request() && m.method() != Some("ACK") {
                        self.unanswered = self.unanswered.saturating_add(1);
                    }
                    let m = stamp_received_owned(m, self.conn.peer);
                    let mut rm = ReceivedMessage::new(
                        m,
                        self.conn.peer,
                        self.conn.local,
                        self.shared.kind,
                        Some(self.conn.flow),
                    );
                    if let Some(info) = self.conn.peer_info::<C::PeerInfo>() {
                        self.shared.connector.annotate(info, &mut rm);
                    }
                    TransportEvent::Message(rm)
                }
                Frame::Ping => {
                    // RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong.
                    inc(&self.shared.counters.keepalives_received);
                    if self.pongs_queued < MAX_QUEUED_PONGS {
                        self.pongs_queued += 1;
                        self.out.push_back(OutItem::keepalive(PONG));
                    }
                    continue;
                }
                Frame::Pong => {
                    // A lone CRLF is a pong only if we pinged; otherwise a stray CRLF
                    // between messages (RFC 3261 §7.5), ignored.
                    if !std::mem::take(&mut self.ping_outstanding) {
                        continue;
                    }
                    inc(&self.shared.counters.keepalives_received);
                    TransportEvent::Pong {
                        flow: self.conn.flow,
                        peer: self.conn.peer,
                    }
                }
            };
            match self.shared.events.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(ev)) => return Some(Step::Deliver(Box::new(ev))),
                Err(TrySendError::Closed(_)) => inc(&self.shared.counters.dropped),
            }
        }
    }

    /// Starts the message-read timer when part of a message (header block or body) is
    /// buffered and the timer is not already running for it; stops it between messages.
    fn track_message_start(&mut self) {
        if self.dec.is_mid_message() {
            self.message_since.get_or_insert_with(Instant::now);
        } else {
            self.message_since = None;
        }
    }

    /// Frees the read buffer and the outbox when empty, so idle connections hold neither.
    fn release_buffers(&mut self) {
        if self.dec.buffered() == 0 && !self.dec.is_mid_message() {
            let buf = self.dec.buffer_mut();
            if buf.capacity() > 0 {
                *buf = BytesMut::new();
            }
        }
        if self.out.is_empty() && self.out.capacity() > 4 {
            self.out = VecDeque::new();
        }
    }

    /// Writes the outbox. `Ready(Ok)` when all is written and flushed, `Pending` when the
    /// stream is full (or the budget is spent).
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CloseReason>> {
        let mut budget = WRITE_BUDGET;
        while !self.out.is_empty() {
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            budget -= 1;
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (i, item) in self.out.iter().take(MAX_IOV).enumerate() {
                let skip = if i == 0 { self.head_written } else { 0 };
                slices[n] = IoSlice::new(&item.bytes[skip..]);
                n += 1;
            }
            match Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(self.io_failed(e)));
                }
                Poll::Ready(Ok(written)) => {
                    self.advance(written);
                    // Push buffered records out now (a no-op for plain TCP), so what the
                    // stream holds is counted only once it really left.
                    if let done @ (Poll::Pending | Poll::Ready(Err(_))) =
                        self.poll_flush_counted(cx)
                    {
                        return done;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.io_failed(e))),
                Poll::Pending => {
                    self.stall_since.get_or_insert_with(Instant::now);
                    return Poll::Pending;
                }
            }
        }
        if self.needs_flush
            && let done @ (Poll::Pending | Poll::Ready(Err(_))) = self.poll_flush_counted(cx)
        {
            return done;
        }
        self.stall_since = None;
        Poll::Ready(Ok(()))
    }

    /// Flushes the stream; on success counts the messages it held as written.
    fn poll_flush_counted(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CloseReason>> {
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.needs_flush = false;
                if self.keepalive == Keepalive::Written {
                    self.keepalive = Keepalive::Answer;
                    self.keepalive_at =
                        Some(after(Instant::now(), self.shared.config.pong_timeout));
                }
                if self.unflushed > 0 {
                    let n = self.unflushed as usize;
                    self.conn.written(n, self.unflushed_bytes as usize);
                    add(&self.shared.counters.messages_sent, n);
                    self.unflushed = 0;
                    self.unflushed_bytes = 0;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.io_failed(e))),
            Poll::Pending => {
                self.stall_since.get_or_insert_with(Instant::now);
                Poll::Pending
            }
        }
    }

    /// Drops what `written` bytes completed from the outbox, and counts it.
    fn advance(&mut self, mut written: usize) {
        let counters = &self.shared.counters;
        add(&counters.bytes_sent, written);
        self.last_activity = Instant::now();
        self.stall_since = None;
        self.needs_flush = true;
        if self.linger.is_some() {
            self.linger = Some(self.last_activity + ANSWER_LINGER);
        }
        let mut messages = 0;
        let mut message_bytes = 0;
        let mut ping_written = false;
        while let Some(front) = self.out.front() {
            let rest = front.bytes.len() - self.head_written;
            if written < rest {
                self.head_written += written;
                break;
            }
            written -= rest;
            self.head_written = 0;
            if front.message {
                messages += 1;
                message_bytes += front.bytes.len();
            } else if front.bytes.len() == PONG.len() {
                self.pongs_queued = self.pongs_queued.saturating_sub(1);
            } else {
                ping_written = true;
            }
            self.out.pop_front();
        }
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.unflushed = self.unflushed.saturating_add(count(messages));
        self.unflushed_bytes = self.unflushed_bytes.saturating_add(count(message_bytes));
        if ping_written && self.keepalive == Keepalive::Queued {
            // The pong clock runs from the ping being flushed, not from queueing it: a
            // backlog of our own is not the peer's silence.
            self.keepalive = Keepalive::Written;
        }
    }

    /// The earliest moment a timer must look again.
    fn next_deadline(&self, reading: bool) -> Instant {
        let limits = &self.shared.config.limits;
        let mut next = Instant::now() + Duration::from_secs(3600);
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t
                && t < next
            {
                next = t;
            }
        };
        if let Some((deadline, _)) = self.drain {
            at(Some(deadline));
            at(self.linger);
        } else {
            if reading {
                at(self.last_activity.checked_add(limits.idle_timeout));
                at(self
                    .message_since
                    .and_then(|t| t.checked_add(limits.header_read_timeout)));
            }
            // Waiting for an answer is a read timer: paused while we do not read.
            if reading || self.keepalive != Keepalive::Answer {
                at(self.keepalive_at);
            }
        }
        if !self.out.is_empty() || self.needs_flush {
            at(self
                .stall_since
                .and_then(|t| t.checked_add(limits.write_timeout)));
        }
        next
    }

    /// The timer fired: act on whatever is due. `Some` ends the connection.
    fn on_timer(&mut self, cx: &mut Context<'_>, reading: bool) -> Option<CloseReason> {
        let now = Instant::now();
        let limits = &self.shared.config.limits;
        let due = |t: Option<Instant>, d: Duration| {
            t.and_then(|t| t.checked_add(d)).is_some_and(|at| at <= now)
        };
        if let Some((deadline, reason)) = &self.drain
            && *deadline <= now
        {
            let reason = reason.clone();
            if !self.out.is_empty() {
                let after = limits.close_grace;
                self.fatal.get_or_insert(Error::WriteTimeout {
                    peer: self.conn.peer,
                    after,
                });
            }
            return Some(reason);
        }
        if (!self.out.is_empty() || self.needs_flush) && due(self.stall_since, limits.write_timeout)
        {
            // The peer stopped reading: give the connection up.
            tracing::debug!("write timeout");
            self.fatal = Some(Error::WriteTimeout {
                peer: self.conn.peer,
                after: limits.write_timeout,
            });
            return Some(CloseReason::WriteTimeout);
        }
        if let Some(until) = self.linger
            && until <= now
        {
            // Every request answered (the answers queued): close once they are written. Else
            // look again later; the drain deadline bounds the wait for answers that never come.
            if self.unanswered == 0 {
                self.linger = None;
                cx.waker().wake_by_ref(); // flush and shut down
            } else {
                self.linger = Some(now + ANSWER_LINGER);
            }
        }
        if self.drain.is_some() {
            return None;
        }
        if reading && due(self.message_since, limits.header_read_timeout) {
            // A message trickled in: header block or body (slowloris).
            tracing::debug!(buffered = self.dec.buffered(), "message read timeout");
            self.start_drain(CloseReason::HeaderReadTimeout);
            cx.waker().wake_by_ref();
            return None;
        }
        if reading && due(Some(self.last_activity), limits.idle_timeout) {
            tracing::debug!("idle timeout");
            self.start_drain(CloseReason::IdleTimeout);
            cx.waker().wake_by_ref();
            return None;
        }
        if self.keepalive_at.is_none_or(|t| t > now) {
            return None;
        }
        match self.keepalive {
            Keepalive::Idle => {
                // RFC 5626 §4.4.1: client keepalive on a flow we opened.
                self.out.push_back(OutItem::keepalive(PING));
                self.dec.ping_sent();
                self.ping_outstanding = true;
                self.pings_sent += 1;
                self.keepalive = Keepalive::Queued;
                self.keepalive_at = None;
                cx.waker().wake_by_ref(); // write it
            }
            Keepalive::Answer if reading => {
                // RFC 5626 §4.4.1: no answer to our ping, the flow has failed. Close at once
                // rather than drain: nothing queued can reach the peer, so every unwritten
                // message is reported lost now (the application can resend; the next send
                // dials afresh) instead of after the close grace period.
                tracing::debug!(
                    pong_timeout = ?self.shared.config.pong_timeout,
                    "keepalive ping unanswered, flow failed"
                );
                return Some(CloseReason::KeepaliveTimeout);
            }
            Keepalive::Answer | Keepalive::Queued | Keepalive::Written => {}
        }
        None
    }

    /// The next ping interval: a random 80–100 % of the configured one (RFC 5626 §4.4.1), so
    /// that many clients do not ping in step.
    fn ping_delay(&self) -> Option<Duration> {
        let interval = self.shared.config.keepalive_interval?;
        // splitmix64 over (flow, count): cheap, no RNG dependency, different per flow.
        let mut z = self
            .conn
            .flow
            .get()
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(self.pings_sent);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let fraction = 0.8 + 0.2 * ((z >> 11) as f64 / (1u64 << 53) as f64);
        Some(interval.mul_f64(fraction))
    }

    /// Starts a graceful close (once): stop reading, flush within the close grace period.
    fn start_drain(&mut self, reason: CloseReason) {
        if self.drain.is_none() {
            let deadline = after(Instant::now(), self.shared.config.limits.close_grace);
            self.drain = Some((deadline, reason));
            // New sends to this peer dial afresh; responses may still use the flow.
            self.conn.begin_drain();
        }
    }

    fn io_failed(&mut self, e: io::Error) -> CloseReason {
        tracing::debug!(error = %e, "connection failed");
        if e.kind() == io::ErrorKind::TimedOut {
            // The kernel gave up on bytes we had written (`TCP_USER_TIMEOUT` = the write
            // timeout, see `dial::bound_unacked`): the same stall as our own outbox timer's.
            self.fatal.get_or_insert(Error::WriteTimeout {
                peer: self.conn.peer,
                after: self.shared.config.limits.write_timeout,
            });
            return CloseReason::WriteTimeout;
        }
        let reason = CloseReason::Io(e.kind());
        let error = self.shared.connector.stream_error(self.conn.peer, e);
        self.fatal.get_or_insert(error);
        reason
    }

    /// Ends the connection: unregister, report unwritten messages, `ConnectionClosed`.
    async fn finish(self: Box<Self>, reason: CloseReason, pending: Option<Box<TransportEvent>>) {
        let Driver {
            shared,
            conn,
            stream,
            fatal,
            _slot,
            drain,
            ..
        } = *self;
        let lost = conn.close();
        shared.pool.remove(&conn);
        // A lingering socket keeps its place in the connection limits until it is closed.
        let linger = matches!(reason, CloseReason::LocalClose | CloseReason::ProtocolError)
            .then_some(drain)
            .flatten()
            .map(|(deadline, _)| deadline);
        let slot = if linger.is_some() {
            Some(_slot)
        } else {
            drop(_slot);
            None
        };
        let counters = &shared.counters;
        sip_transport_api::stats::dec(&counters.connections_open);
        if matches!(
            reason,
            CloseReason::IdleTimeout
                | CloseReason::HeaderReadTimeout
                | CloseReason::WriteTimeout
                | CloseReason::KeepaliveTimeout
        ) {
            inc(&counters.timeouts);
        }
        tracing::debug!(?reason, lost, "connection closed");
        if let Some(ev) = pending {
            // Read before the close: still the application's, if it takes it in time.
            shared.deliver(*ev).await;
        }
        let error = if lost > 0 {
            add(&counters.send_errors, lost);
            tracing::warn!(lost, ?reason, "queued messages were not written");
            Some(fatal.unwrap_or(Error::FlowClosed { flow: conn.flow }))
        } else {
            // A connector's typed error (TLS: the peer rejected our certificate) is worth an
            // event even when nothing was lost; plain socket errors are in the close reason.
            fatal.filter(|e| !matches!(e, Error::Io { .. } | Error::WriteTimeout { .. }))
        };
        if let Some(error) = error {
            shared
                .deliver(TransportEvent::Error {
                    peer: Some(conn.peer),
                    flow: Some(conn.flow),
                    error,
                })
                .await;
        }
        shared
            .deliver(TransportEvent::ConnectionClosed {
                flow: conn.flow,
                peer: conn.peer,
                kind: shared.kind,
                reason,
            })
            .await;
        if let Some(deadline) = linger {
            // A task of its own, not one the transport waits for: closing the transport does
            // not wait on peers that keep their end open.
            tokio::spawn(async move {
                lingering_close(stream, deadline).await;
                drop(slot);
            });
        }
    }
}

/// Closes a stream we stopped reading before the peer's end: reads and discards what the
/// peer still sends until its FIN, an error, or `deadline` (the end of the close grace
/// period, so a close takes no longer than before). Closing a socket with unread bytes
/// makes the kernel send a reset and drop what it has not yet sent, which would cut off the
/// answers written just before (as web servers' "lingering close" avoids). Our FIN has gone
/// out already; the connection is no longer registered, but keeps its slot in the limits.
async fn lingering_close<S: tokio::io::AsyncRead + Unpin>(mut stream: S, deadline: Instant) {
    let mut scratch = [0u8; 2048];
    let _ = tokio::time::timeout_at(deadline, async {
        while let Ok(n) = stream.read(&mut scratch).await
            && n > 0
        {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    /// Every open connection holds one boxed driver: keep it small (50,000 idle connections
    /// must fit in well under 5 kB each, task and socket state included). The decoder holds
    /// a copy of `Limits`, so each field added there counts here.
    #[test]
    fn driver_stays_small() {
        let size = std::mem::size_of::<super::Driver<crate::TcpConnector>>();
        assert!(size <= 648, "Driver<TcpConnector> grew to {size} bytes");
    }
}
