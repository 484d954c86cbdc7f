//! Limits and failures over real sockets: idle and header-read (slowloris) timeouts,
//! connection limits, resets, framing errors, a full event channel (backpressure), a full
//! write queue and a peer that stops reading. Each test also checks the transport keeps
//! serving other connections.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use sip_transport_api::{CloseReason, Destination, Error, Limits, Transport, TransportEvent};
use sip_transport_tcp::{TcpConfig, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

fn dummy() -> SocketAddr {
    "127.0.0.1:9".parse().expect("addr")
}

/// Reads until EOF or reset: the server closed this connection.
async fn assert_closed_by_server(raw: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let r = timeout(WAIT, raw.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(r, Ok(0) | Err(_)), "expected EOF, got {r:?}");
}

/// A connection from a given loopback source address.
async fn connect_from(src: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(format!("{src}:0").parse().expect("addr"))
        .expect("bind");
    s.connect(to).await.expect("connect")
}

async fn exchange_works(
    srv: SocketAddr,
    rx: &mut tokio::sync::mpsc::Receiver<TransportEvent>,
    n: u64,
) {
    let mut raw = TcpStream::connect(srv).await.expect("connect");
    raw.write_all(options(dummy(), n).as_bytes())
        .await
        .expect("write");
    let m = next_message(rx).await;
    assert_eq!(m.message.cseq().map(|c| u64::from(c.seq)), Some(n));
}

/// Like [`exchange_works`], while the connection from `slow` is being timed out: waits in
/// one loop for both the request's message and `slow`'s close, in whichever order they come
/// (waiting for one first would skip the other if it came first). Returns the new
/// connection, still open, and why `slow` was closed.
async fn exchange_while_timing_out(
    srv: SocketAddr,
    rx: &mut tokio::sync::mpsc::Receiver<TransportEvent>,
    n: u64,
    slow: SocketAddr,
) -> (TcpStream, CloseReason) {
    let mut raw = TcpStream::connect(srv).await.expect("connect");
    let me = raw.local_addr().expect("addr");
    raw.write_all(options(dummy(), n).as_bytes())
        .await
        .expect("write");
    let mut served = false;
    let mut closed = None;
    timeout(WAIT, async {
        while !served || closed.is_none() {
            match rx.recv().await.expect("event channel open") {
                TransportEvent::Message(m) => {
                    assert_eq!(m.source, me);
                    assert_eq!(m.message.cseq().map(|c| u64::from(c.seq)), Some(n));
                    served = true;
                }
                TransportEvent::ConnectionClosed { peer, reason, .. } if peer == slow => {
                    closed = Some(reason);
                }
                TransportEvent::ConnectionClosed { peer, reason, .. } if peer == me => {
                    panic!("the other connection was closed: {reason:?}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("message and close in time");
    (raw, closed.expect("closed"))
}

/// Request `n` on an open connection is delivered.
async fn still_served(
    raw: &mut TcpStream,
    rx: &mut tokio::sync::mpsc::Receiver<TransportEvent>,
    n: u64,
) {
    raw.write_all(options(dummy(), n).as_bytes())
        .await
        .expect("write");
    let m = next_message(rx).await;
    assert_eq!(m.source, raw.local_addr().expect("addr"));
    assert_eq!(m.message.cseq().map(|c| u64::from(c.seq)), Some(n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes() {
    let limits = Limits::default().with_idle_timeout(Duration::from_millis(300));
    let (srv, mut rx) = server(limits).await;
    let mut raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    let started = Instant::now();
    let reason = wait_for(&mut rx, |ev| match ev {
        TransportEvent::ConnectionClosed { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::IdleTimeout);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_closed_by_server(&mut raw).await;
    assert_eq!(srv.stats().timeouts, 1);
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_read_timeout_closes_only_the_slow_connection() {
    let limits = Limits::default().with_header_read_timeout(Duration::from_millis(400));
    let (srv, mut rx) = server(limits).await;
    let mut slow = TcpStream::connect(srv.local_addr()).await.expect("connect");
    let slow_addr = slow.local_addr().expect("addr");
    slow.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1\r\n")
        .await
        .expect("partial header");
    // Trickle bytes, never ending the header block: the timer runs from its first byte.
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"X").await.is_err() {
                break;
            }
        }
        slow
    });
    // Meanwhile another connection is served normally, and stays open.
    let (mut other, reason) =
        exchange_while_timing_out(srv.local_addr(), &mut rx, 1, slow_addr).await;
    assert_eq!(reason, CloseReason::HeaderReadTimeout);
    let mut slow = timeout(WAIT, trickle)
        .await
        .expect("in time")
        .expect("task");
    assert_closed_by_server(&mut slow).await;
    still_served(&mut other, &mut rx, 2).await;
    exchange_works(srv.local_addr(), &mut rx, 3).await;
    srv.close().await;
}

/// A connection that keeps sending whole messages never trips the message-read timer, even
/// when no read ends on a message boundary: the timer starts over with each message.
///
/// Each message (about 264 bytes) spans 2 or 3 writes, so it takes at most two pauses (about
/// 100 ms) to arrive: a tenth of the timeout. The whole stream takes more than twice the
/// timeout, and the connection is mid-message all along (no write ends on a boundary), so a
/// timer that did not start over with each message (one per connection, or one reset only
/// when the buffer empties) would fire mid-stream and close the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_connection_with_split_messages_is_not_timed_out() {
    let timeout_ = Duration::from_secs(1);
    let pause = Duration::from_millis(50);
    let step = 150;
    // The pauses alone outlast twice the timeout, with a margin: 49 pauses of 50 ms.
    let min_writes = 50;
    let limits = Limits::default().with_header_read_timeout(timeout_);
    let (srv, mut rx) = server(limits).await;
    let mut raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    raw.set_nodelay(true).expect("nodelay");
    let me = raw.local_addr().expect("addr");
    let mut count = 0u64;
    let mut stream = Vec::new();
    let mut boundaries = Vec::new();
    while stream.len() < step * min_writes {
        count += 1;
        stream.extend_from_slice(options(dummy(), count).as_bytes());
        boundaries.push(stream.len());
    }
    // Every message is longer than one write and shorter than two: it spans 2 or 3 writes.
    let mut prev = 0;
    for &b in &boundaries {
        let len = b - std::mem::replace(&mut prev, b);
        assert!(step < len && len < 2 * step, "message of {len} bytes");
    }
    // Cuts every `step` bytes, moved off every message boundary: each write leaves the
    // next message incomplete, for `pause`.
    let mut cuts = Vec::new();
    let mut at = step;
    while at < stream.len() {
        if boundaries.contains(&at) {
            at += 1;
        }
        cuts.push(at);
        at += step;
    }
    cuts.push(stream.len());
    assert!(cuts.len() >= min_writes, "{} writes", cuts.len());
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let mut from = 0;
        for cut in cuts {
            raw.write_all(&stream[from..cut]).await.expect("write");
            from = cut;
            tokio::time::sleep(pause).await;
        }
        raw
    });
    let mut n = 0;
    while n < count {
        let ev = timeout(WAIT, rx.recv())
            .await
            .expect("in time")
            .expect("open");
        match ev {
            TransportEvent::Message(m) => {
                n += 1;
                assert_eq!(m.message.cseq().map(|c| u64::from(c.seq)), Some(n));
            }
            TransportEvent::ConnectionClosed { peer, reason, .. } if peer == me => {
                panic!("closed after {:?}: {reason:?}", started.elapsed())
            }
            _ => {}
        }
    }
    // The sending took more than twice the timeout (the last message follows at least
    // `min_writes - 1` pauses), every message read in pieces.
    assert!(started.elapsed() > timeout_ * 2, "{:?}", started.elapsed());
    let _raw = timeout(WAIT, writer).await.expect("in time").expect("task");
    assert_eq!(srv.stats().timeouts, 0);
    srv.close().await;
}

/// A body trickled in after a quick header block is timed like the header block: the whole
/// message must arrive within the timeout of its first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_is_timed_out() {
    let limits = Limits::default().with_header_read_timeout(Duration::from_millis(400));
    let (srv, mut rx) = server(limits).await;
    let mut slow = TcpStream::connect(srv.local_addr()).await.expect("connect");
    let slow_addr = slow.local_addr().expect("addr");
    slow.write_all(
        b"MESSAGE sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1\r\n\
Call-ID: slow\r\nCSeq: 1 MESSAGE\r\nContent-Length: 60\r\n\r\n",
    )
    .await
    .expect("header block");
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"x").await.is_err() {
                break;
            }
        }
        slow
    });
    let (mut other, reason) =
        exchange_while_timing_out(srv.local_addr(), &mut rx, 1, slow_addr).await;
    assert_eq!(reason, CloseReason::HeaderReadTimeout);
    // Well before the 60 body bytes (6 s at this pace) could have arrived.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let mut slow = timeout(WAIT, trickle)
        .await
        .expect("in time")
        .expect("task");
    assert_closed_by_server(&mut slow).await;
    still_served(&mut other, &mut rx, 2).await;
    exchange_works(srv.local_addr(), &mut rx, 3).await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_connection_limit() {
    let limits = Limits::default().with_max_connections(2);
    let (srv, mut rx) = server(limits).await;
    let mut a = TcpStream::connect(srv.local_addr()).await.expect("a");
    let mut b = TcpStream::connect(srv.local_addr()).await.expect("b");
    for _ in 0..2 {
        wait_for(&mut rx, |ev| {
            matches!(ev, TransportEvent::ConnectionOpened { .. }).then_some(())
        })
        .await;
    }
    let mut c = TcpStream::connect(srv.local_addr())
        .await
        .expect("kernel accepts");
    assert_closed_by_server(&mut c).await;
    assert_eq!(srv.stats().connections_refused, 1);
    // The old ones still work.
    a.write_all(options(dummy(), 1).as_bytes())
        .await
        .expect("a");
    b.write_all(options(dummy(), 2).as_bytes())
        .await
        .expect("b");
    next_message(&mut rx).await;
    next_message(&mut rx).await;
    // An outbound connection beyond the total is an error for the sender.
    let (peer, _prx) = server(Limits::default()).await;
    let e = srv
        .send_message(&options(dummy(), 3), &Destination::new(peer.local_addr()))
        .await
        .expect_err("over the limit");
    assert!(matches!(e, Error::ConnectionLimit { limit: 2 }), "{e:?}");
    drop(a);
    wait_for(&mut rx, |ev| {
        matches!(ev, TransportEvent::ConnectionClosed { .. }).then_some(())
    })
    .await;
    srv.send_message(&options(dummy(), 4), &Destination::new(peer.local_addr()))
        .await
        .expect("a slot is free again");
    srv.close().await;
    peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_connection_limit() {
    let limits = Limits::default().with_max_connections_per_ip(2);
    let (srv, mut rx) = server(limits).await;
    let to = srv.local_addr();
    let mut a = connect_from("127.0.0.1", to).await;
    let _b = connect_from("127.0.0.1", to).await;
    for _ in 0..2 {
        wait_for(&mut rx, |ev| {
            matches!(ev, TransportEvent::ConnectionOpened { .. }).then_some(())
        })
        .await;
    }
    let mut c = connect_from("127.0.0.1", to).await;
    assert_closed_by_server(&mut c).await;
    // Another source IP is not affected.
    let mut d = connect_from("127.0.0.2", to).await;
    d.write_all(options(dummy(), 1).as_bytes())
        .await
        .expect("d");
    let m = next_message(&mut rx).await;
    assert_eq!(m.source.ip().to_string(), "127.0.0.2");
    a.write_all(options(dummy(), 2).as_bytes())
        .await
        .expect("a");
    let m = next_message(&mut rx).await;
    assert_eq!(m.source.ip().to_string(), "127.0.0.1");
    assert_eq!(srv.stats().connections_refused, 1);
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_reset_mid_message() {
    let (srv, mut rx) = server(Limits::default()).await;
    let raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    let msg = options(dummy(), 1);
    let mut raw = raw;
    raw.write_all(&msg.as_bytes()[..msg.len() / 2])
        .await
        .expect("half");
    wait_for(&mut rx, |ev| {
        matches!(ev, TransportEvent::ConnectionOpened { .. }).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    socket2::SockRef::from(&raw)
        .set_linger(Some(Duration::ZERO))
        .expect("linger 0");
    drop(raw); // RST
    let reason = wait_for(&mut rx, |ev| match ev {
        TransportEvent::ConnectionClosed { reason, .. } => Some(reason),
        TransportEvent::Message(m) => panic!("half a message was delivered: {m:?}"),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::Io(std::io::ErrorKind::ConnectionReset));
    exchange_works(srv.local_addr(), &mut rx, 2).await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_error_closes_only_that_connection() {
    let (srv, mut rx) = server(Limits::default()).await;
    let mut bad = TcpStream::connect(srv.local_addr()).await.expect("connect");
    // RFC 3261 §18.3: no Content-Length on a stream is a framing error.
    bad.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1\r\n\r\n")
        .await
        .expect("write");
    let error = wait_for(&mut rx, |ev| match ev {
        TransportEvent::Error { error, flow, .. } => Some((error, flow)),
        _ => None,
    })
    .await;
    assert!(matches!(error.0, Error::MissingContentLength), "{error:?}");
    assert!(error.1.is_some());
    let reason = wait_for(&mut rx, |ev| match ev {
        TransportEvent::ConnectionClosed { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::ProtocolError);
    assert_closed_by_server(&mut bad).await;
    assert_eq!(srv.stats().malformed, 1);
    exchange_works(srv.local_addr(), &mut rx, 1).await;
    srv.close().await;
}

/// A valid request and garbage in one write: the request is delivered, the framing error
/// stops reading, but the connection stays open for writing long enough for the answer to go
/// back on the same flow (RFC 3261 §18.2.2) instead of falling back to the Via address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_error_after_a_request_still_carries_its_answer() {
    let (srv, mut rx) = server(Limits::default()).await;
    let mut raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    let mut bytes = options(dummy(), 1).as_bytes().to_vec();
    bytes.extend_from_slice(b"\x00\x01garbage \xff\xfe not SIP\r\n\r\n");
    raw.write_all(&bytes).await.expect("write");
    let m = next_message(&mut rx).await;
    let flow = m.flow.expect("a stream message has a flow");
    let error = wait_for(&mut rx, |ev| match ev {
        TransportEvent::Error { error, flow: f, .. } => Some((error, f)),
        _ => None,
    })
    .await;
    assert_eq!(error.1, Some(flow), "{error:?}");
    let resp = sip_transport_testkit::ok_response(&m.message);
    srv.send_response(&resp, Some(flow))
        .await
        .expect("answered on the flow");
    // The 200 arrives on this socket (Via points at 127.0.0.1:9, where nobody listens), then
    // the server closes the connection.
    let mut got = Vec::new();
    let r = timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "closed in time");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("SIP/2.0 200"), "{text:?}");
    let reason = wait_for(&mut rx, |ev| match ev {
        TransportEvent::ConnectionClosed { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::ProtocolError);
    assert_eq!(srv.stats().malformed, 1);
    assert_eq!(
        srv.stats().connections_dialed,
        0,
        "no fallback to the Via address"
    );
    exchange_works(srv.local_addr(), &mut rx, 2).await;
    srv.close().await;
}

/// A full event channel stops reading (TCP backpressure) and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_event_channel_pushes_back_without_loss() {
    const N: u64 = 2_000;
    let limits = Limits::default().with_event_queue_depth(4);
    let (srv, mut rx) = server(limits).await;
    let (cli, _c_rx) = TcpTransport::bind(TcpConfig::client())
        .await
        .expect("client");
    let to = Destination::new(srv.local_addr());
    let sender = tokio::spawn(async move {
        let deadline = Instant::now() + WAIT;
        for n in 0..N {
            // The write queue may fill while the server does not read: wait for room.
            loop {
                match cli.send_message(&options(dummy(), n), &to).await {
                    Ok(_) => break,
                    Err(Error::WriteQueueFull { .. }) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err(e) => panic!("send {n}: {e}"),
                }
            }
        }
        cli
    });
    // Nobody reads events for a while: the server stops reading instead of dropping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused = srv.stats().messages_received;
    assert!(paused <= 6, "kept reading with a full channel: {paused}");
    let mut next = 0;
    while next < N {
        let ev = timeout(WAIT, rx.recv())
            .await
            .expect("in time")
            .expect("open");
        if let TransportEvent::Message(m) = ev {
            assert_eq!(m.message.cseq().map(|c| u64::from(c.seq)), Some(next));
            next += 1;
        }
    }
    assert_eq!(srv.stats().dropped, 0);
    assert_eq!(srv.stats().messages_received, N);
    let cli = timeout(WAIT, sender)
        .await
        .expect("in time")
        .expect("sender");
    cli.close().await;
    srv.close().await;
}

/// A listener that accepts one connection and never reads from it, with a small receive
/// buffer; the task holds the connection for 20 s (abort it when done).
fn never_reading_peer() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    sock.bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = sock.listen(8).expect("listen");
    let to = listener.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(s);
    });
    (to, hold)
}

/// A peer that never reads: the write queue fills (fast, typed error) and the stuck
/// connection is given up after the write timeout, with the unwritten messages reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_peer_gives_write_queue_full_then_write_timeout() {
    let (to, hold) = never_reading_peer();
    let write_timeout = Duration::from_millis(500);
    let limits = Limits::default()
        .with_write_queue_depth(8)
        .with_write_timeout(write_timeout);
    let (cli, mut c_rx) = TcpTransport::bind(TcpConfig::client().with_limits(limits))
        .await
        .expect("client");
    let big = sip_transport_testkit::request_with_body("MESSAGE", "TCP", "127.0.0.1:9", 1, 60_000);
    let started = Instant::now();
    let mut accepted = 0u64;
    let full = loop {
        assert!(started.elapsed() < WAIT, "the queue never filled");
        match cli.send_message(&big, &Destination::new(to)).await {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        if accepted.is_multiple_of(8) {
            tokio::time::sleep(Duration::from_millis(10)).await; // let the driver write
        }
    };
    assert!(
        matches!(full, Error::WriteQueueFull { depth: 8, .. }),
        "{full:?}"
    );
    assert!(full.is_recoverable());
    let filled = Instant::now();
    let mut saw_timeout_error = false;
    let reason = wait_for(&mut c_rx, |ev| match ev {
        TransportEvent::Error {
            error: Error::WriteTimeout { after, .. },
            ..
        } => {
            assert_eq!(after, write_timeout);
            saw_timeout_error = true;
            None
        }
        TransportEvent::ConnectionClosed { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::WriteTimeout);
    assert!(
        saw_timeout_error,
        "unwritten messages are reported with the typed error"
    );
    assert!(filled.elapsed() < write_timeout + Duration::from_secs(2));
    let stats = cli.stats();
    assert_eq!(stats.timeouts, 1);
    assert!(stats.send_errors >= 2, "{stats:?}"); // the full-queue send, and the unwritten ones
    cli.close().await;
    hold.abort();
}

/// A peer that never reads, sent large messages: the byte budget of the write queue
/// (`Limits::max_write_queue_bytes`) refuses them long before `write_queue_depth` messages
/// pile up, with the recoverable `WriteQueueFull`, and the connection stays open. TLS runs
/// the same connection code (`Connection::enqueue`, the driver).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_queue_is_bounded_in_bytes() {
    const BUDGET: usize = 256 * 1024;
    let (to, hold) = never_reading_peer();
    let limits = Limits::default()
        .with_max_write_queue_bytes(BUDGET)
        .with_write_timeout(Duration::from_secs(30));
    let depth = limits.write_queue_depth;
    let (cli, _c_rx) = TcpTransport::bind(TcpConfig::client().with_limits(limits))
        .await
        .expect("client");
    let big = sip_transport_testkit::request_with_body("MESSAGE", "TCP", "127.0.0.1:9", 1, 60_000);
    let started = Instant::now();
    let mut accepted = 0usize;
    let full = loop {
        assert!(started.elapsed() < WAIT, "the queue never filled");
        assert!(
            accepted < depth,
            "{accepted} messages accepted: no byte budget"
        );
        match cli.send_message(&big, &Destination::new(to)).await {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        if accepted.is_multiple_of(4) {
            tokio::time::sleep(Duration::from_millis(10)).await; // let the driver write
        }
    };
    assert!(matches!(full, Error::WriteQueueFull { .. }), "{full:?}");
    assert!(full.is_recoverable());
    // The kernel's buffers took some; the queue holds at most the budget's worth.
    assert!(accepted < depth / 4, "{accepted} messages accepted");
    assert_eq!(cli.stats().connections_open, 1, "the connection stays open");
    cli.close().await;
    hold.abort();
}

/// Regression (issue 9, vanished peer): messages a listening transport dialed out with, all
/// taken by the kernel's send buffer at once (our outbox empty, so the driver's stall timer
/// has nothing to time), to a peer that never reads. The write timeout must still end the
/// connection within a bounded time (`TCP_USER_TIMEOUT`), not when the peer finally closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_never_reads_times_out_with_bytes_in_the_kernel() {
    let (to, hold) = never_reading_peer();
    let write_timeout = Duration::from_millis(500);
    let limits = Limits::default()
        .with_write_queue_depth(64)
        .with_write_timeout(write_timeout);
    let (srv, mut rx) = server(limits).await;
    let big = sip_transport_testkit::request_with_body("MESSAGE", "TCP", "127.0.0.1:9", 1, 60_000);
    for _ in 0..4 {
        srv.send_message(&big, &Destination::new(to))
            .await
            .expect("accepted");
    }
    let started = Instant::now();
    let reason = wait_for(&mut rx, |ev| match ev {
        TransportEvent::ConnectionClosed { peer, reason, .. } if peer == to => Some(reason),
        _ => None,
    })
    .await;
    let took = started.elapsed();
    eprintln!("closed as {reason:?} after {took:?}; {:?}", srv.stats());
    assert_eq!(reason, CloseReason::WriteTimeout);
    assert!(took < write_timeout + Duration::from_secs(3), "{took:?}");
    assert_eq!(srv.stats().timeouts, 1);
    // The transport keeps serving.
    exchange_works(srv.local_addr(), &mut rx, 7).await;
    srv.close().await;
    hold.abort();
}

/// Messages over the configured size are refused before queueing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_send_is_refused() {
    let (srv, _rx) = server(Limits::default()).await;
    let (cli, _c_rx) = TcpTransport::bind(
        TcpConfig::client().with_limits(Limits::default().with_max_message_size(1000)),
    )
    .await
    .expect("client");
    let big = sip_transport_testkit::request_with_body("MESSAGE", "TCP", "127.0.0.1:9", 1, 2000);
    let e = cli
        .send_message(&big, &Destination::new(srv.local_addr()))
        .await
        .expect_err("too big");
    assert!(
        matches!(e, Error::MessageTooLarge { limit: 1000, .. }),
        "{e:?}"
    );
    cli.close().await;
    srv.close().await;
}

/// A connection closed on our side while the peer is still sending: the peer's bytes are read
/// and dropped until its FIN (lingering close), so the close is a FIN, not a reset that would
/// destroy the answer still in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_close_while_the_peer_sends_delivers_what_was_written() {
    let (srv, mut rx) = server(Limits::default()).await;
    let sock = TcpSocket::new_v4().expect("socket");
    // A small receive window: most of the answer waits in the server's send queue.
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut raw = sock.connect(srv.local_addr()).await.expect("connect");
    raw.write_all(options(dummy(), 1).as_bytes())
        .await
        .expect("request");
    let m = next_message(&mut rx).await;
    let flow = m.flow.expect("flow");
    let big = sip_transport_testkit::request_with_body("MESSAGE", "TCP", "127.0.0.1:9", 2, 50_000);
    srv.send_on_flow(flow, &big).await.expect("queued");
    assert!(srv.close_flow(flow));
    // The peer keeps sending while the server closes, and reads only later.
    for _ in 0..4 {
        raw.write_all(&[b'x'; 1000]).await.expect("more bytes");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got = Vec::new();
    let r = timeout(WAIT, raw.read_to_end(&mut got))
        .await
        .expect("in time");
    assert!(r.is_ok(), "a reset after {} bytes: {r:?}", got.len());
    assert_eq!(got.len(), big.len(), "the whole answer, then the FIN");
    drop(raw);
    srv.close().await;
}

/// A close grace period of "never" (`Duration::MAX`) must not overflow `close()`'s own
/// deadline arithmetic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_a_close_grace_of_never() {
    let (srv, _rx) = server(Limits::default().with_close_grace(Duration::MAX)).await;
    timeout(WAIT, srv.close()).await.expect("closed in time");
    assert!(srv.is_closed());
}

/// Every knob at its extreme: counts at `usize::MAX` (Tokio's channels and semaphores panic
/// above `Semaphore::MAX_PERMITS`, and at 0), timeouts at `Duration::MAX`. Binding, a request
/// one way over a dialed connection, its answer back and close must not panic. TLS runs on
/// the same `StreamTransport` code (`transport.rs`), so this covers it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_limits_do_not_panic() {
    assert_eq!(Limits::MAX_CAPACITY, tokio::sync::Semaphore::MAX_PERMITS);
    for count in [0, usize::MAX] {
        let extreme = sip_transport_testkit::extreme_limits(count);
        let (srv, srv_rx) = server(extreme.clone()).await;
        let _fwd = spawn_uas(srv.clone(), srv_rx);
        let (cli, cli_rx) = server(extreme).await;
        // Drained, so close() does not wait (up to the endless grace) to report Closed.
        let mut cli_fwd = spawn_uas(cli.clone(), cli_rx);
        let dest = Destination::new(srv.local_addr());
        cli.send_message(&options(cli.local_addr(), 1), &dest)
            .await
            .expect("send");
        let answer = wait_fwd(&mut cli_fwd, |ev| match ev {
            TransportEvent::Message(m) => Some(m),
            _ => None,
        })
        .await;
        assert!(answer.message.is_response(), "{:?}", answer.message);
        timeout(WAIT, async { tokio::join!(cli.close(), srv.close()) })
            .await
            .expect("closed in time");
    }
}

/// Line ends that are neither a ping (`CRLFCRLF`) nor a pong (`CRLF`) nor a message — bare
/// LFs around CRLFs, lone CRs — are dropped as they arrive, not buffered: a peer sending far
/// more of them than the header limit is still served (before, they piled up, never started
/// the header-read timer, and ended in `HeadersTooLarge`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_line_ends_are_not_buffered() {
    let limits = Limits::default()
        .with_max_header_size(1024)
        .with_max_line_length(512);
    let (srv, mut rx) = server(limits).await;
    let mut raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    let junk = [
        b"\n\r\n".repeat(5000),
        b"\r".repeat(5000),
        b"\r\r\n".to_vec(),
    ]
    .concat();
    for chunk in junk.chunks(1000) {
        raw.write_all(chunk).await.expect("write");
    }
    raw.write_all(options(dummy(), 7).as_bytes())
        .await
        .expect("write");
    let m = next_message(&mut rx).await;
    assert_eq!(m.message.cseq().map(|c| u64::from(c.seq)), Some(7));
    assert_eq!(srv.stats().connections_open, 1, "still open");
    srv.close().await;
}
