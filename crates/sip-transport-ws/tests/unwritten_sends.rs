//! Messages a send accepted but the connection could not write are never lost silently: when a
//! connection ends, each one is counted in `send_errors` and reported by one
//! `TransportEvent::Error` for the flow (as the TCP driver does), `messages_sent` counts only
//! what was flushed, and once a close begins, sends on the flow fail instead of queueing into
//! a connection that will not write them.
//!
//! A client offers `sip`, sends a REGISTER, then reads nothing (with a small receive buffer),
//! so that our large messages pile up in the kernel, tungstenite's buffer and the write queue.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use sip_transport_api::{CloseReason, Error, FlowId, Limits, Message, Transport, TransportEvent};
use sip_transport_testkit::events::{Events, wait_for};
use sip_transport_ws::{WsConfig, WsTransport};
use support::*;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;

const DEPTH: usize = 4;

/// A client connection upgraded with the `sip` subprotocol, with a small receive buffer so
/// that the server's writes block soon once it stops reading.
async fn slow_reader(addr: SocketAddr) -> WebSocketStream<TcpStream> {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    let tcp = tokio::time::timeout(WAIT, sock.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let req = upgrade_request(addr, false, Some("sip"));
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("upgrade in time")
        .expect("upgrade");
    ws
}

/// The client registers, and the flow its REGISTER arrived on.
async fn registered(t: &WsTransport, events: &mut Events) -> (WebSocketStream<TcpStream>, FlowId) {
    let mut client = slow_reader(t.local_addr()).await;
    let register = sip_transport_testkit::request_with_body("REGISTER", "WS", "r.invalid", 1, 0);
    client.send(text_of(&register)).await.expect("REGISTER");
    let flow = wait_for(events, |ev| match ev {
        TransportEvent::Message(m) => m.flow,
        _ => None,
    })
    .await;
    (client, flow)
}

/// Sends large messages on `flow` until its write queue is full. Returns the sends accepted
/// and the sends refused (one, `WriteQueueFull`).
async fn fill(t: &WsTransport, flow: FlowId) -> (u64, u64) {
    let big = sip_transport_testkit::request_with_body("MESSAGE", "WS", "h.invalid", 1, 60_000);
    let started = Instant::now();
    let mut accepted = 0u64;
    for _ in 0..2_000 {
        assert!(started.elapsed() < WAIT, "the queue never filled");
        match t.send_on_flow(flow, &big).await {
            Ok(()) => accepted += 1,
            Err(Error::WriteQueueFull { depth: DEPTH, .. }) => return (accepted, 1),
            Err(e) => panic!("unexpected send error: {e}"),
        }
        if accepted.is_multiple_of(DEPTH as u64) {
            // Let the driver move the queue into tungstenite and the kernel.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    panic!("the queue never filled");
}

/// Waits for `flow` to close; returns why, and the `Error` events reported for it before.
async fn closed(events: &mut Events, flow: FlowId) -> (CloseReason, Vec<Error>) {
    let mut errors = Vec::new();
    let reason = wait_for(events, |ev| match ev {
        TransportEvent::Error {
            flow: Some(f),
            error,
            ..
        } if f == flow => {
            errors.push(error);
            None
        }
        TransportEvent::ConnectionClosed {
            flow: f, reason, ..
        } if f == flow => Some(reason),
        _ => None,
    })
    .await;
    (reason, errors)
}

fn small() -> Message {
    ws_options(2)
}

/// Every send accepted is either flushed (`messages_sent`) or counted lost (`send_errors`,
/// which also counts the sends that were refused), and at least one was lost.
fn check_accounting(t: &WsTransport, accepted: u64, refused: u64) {
    let s = t.stats();
    assert_eq!(
        s.messages_sent + s.send_errors,
        accepted + refused,
        "accepted {accepted}, refused {refused}: {s:?}"
    );
    assert!(
        s.send_errors > refused,
        "some accepted messages were never written: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritten_messages_are_reported_when_the_peer_resets() {
    let limits = Limits::default()
        .with_write_queue_depth(DEPTH)
        .with_write_timeout(Duration::from_secs(10));
    let (t, mut events) = bind(WsConfig::default().with_limits(limits));
    let (client, flow) = registered(&t, &mut events).await;
    let (accepted, mut refused) = fill(&t, flow).await;
    // The client goes with our messages unread: its kernel resets the connection.
    drop(client);
    let (reason, errors) = closed(&mut events, flow).await;
    assert!(
        matches!(reason, CloseReason::Io(_) | CloseReason::PeerClosed),
        "{reason:?}"
    );
    assert_eq!(errors.len(), 1, "one loss report: {errors:?}");
    assert!(
        matches!(errors[0], Error::Io { .. } | Error::FlowClosed { .. }),
        "{:?}",
        errors[0]
    );
    assert!(matches!(
        t.send_on_flow(flow, &small()).await,
        Err(Error::FlowClosed { .. })
    ));
    refused += 1;
    check_accounting(&t, accepted, refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_fail_once_a_close_begins_and_what_it_could_not_write_is_reported() {
    // Wide margins for a loaded machine: the idle timeout must not fire while `fill` is
    // still queueing, and the close lasts long enough (the grace) that a send loop woken
    // late still sees sends fail well before its end.
    let idle = Duration::from_secs(1);
    let grace = Duration::from_secs(2);
    let limits = Limits::default()
        .with_write_queue_depth(DEPTH)
        .with_write_timeout(Duration::from_secs(10))
        .with_idle_timeout(idle)
        .with_close_grace(grace);
    let (t, mut events) = bind(WsConfig::default().with_limits(limits));
    let (client, flow) = registered(&t, &mut events).await;
    let (mut accepted, mut refused) = fill(&t, flow).await;
    // Nothing moves: the idle timeout starts a close whose Close frame cannot be flushed
    // (the peer reads nothing), so it lasts the whole grace period. Sends in that window
    // must fail, not be accepted into a queue nobody writes.
    let started = Instant::now();
    let failed_at = loop {
        assert!(
            started.elapsed() < idle + grace + WAIT,
            "sends never failed"
        );
        match t.send_on_flow(flow, &small()).await {
            Ok(()) => accepted += 1,
            Err(Error::WriteQueueFull { .. }) => refused += 1,
            Err(Error::FlowClosed { .. }) => {
                refused += 1;
                break Instant::now();
            }
            Err(e) => panic!("unexpected send error: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (reason, errors) = closed(&mut events, flow).await;
    let closed_at = Instant::now();
    assert_eq!(reason, CloseReason::IdleTimeout);
    assert!(
        closed_at - failed_at > grace / 2,
        "sends failed from the start of the close, not only after it ({:?} before the end)",
        closed_at - failed_at
    );
    assert_eq!(errors.len(), 1, "one loss report: {errors:?}");
    assert!(
        matches!(errors[0], Error::WriteTimeout { after, .. } if after == grace),
        "{:?}",
        errors[0]
    );
    check_accounting(&t, accepted, refused);
    drop(client);
}

/// A peer that does not read, sent large messages: the byte budget of the write queue
/// (`Limits::max_write_queue_bytes`) refuses them long before `write_queue_depth` messages
/// pile up, with the recoverable `WriteQueueFull`, and the flow stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_queue_is_bounded_in_bytes() {
    const BUDGET: usize = 256 * 1024;
    let limits = Limits::default()
        .with_max_write_queue_bytes(BUDGET)
        .with_write_timeout(Duration::from_secs(30));
    let depth = limits.write_queue_depth;
    let (t, mut events) = bind(WsConfig::default().with_limits(limits));
    let (client, flow) = registered(&t, &mut events).await;
    let big = sip_transport_testkit::request_with_body("MESSAGE", "WS", "h.invalid", 1, 60_000);
    let started = Instant::now();
    let mut accepted = 0usize;
    let full = loop {
        assert!(started.elapsed() < WAIT, "the queue never filled");
        assert!(
            accepted < depth,
            "{accepted} messages accepted: no byte budget"
        );
        match t.send_on_flow(flow, &big).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        if accepted.is_multiple_of(4) {
            // Let the driver move the queue into tungstenite and the kernel.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    assert!(matches!(full, Error::WriteQueueFull { .. }), "{full:?}");
    assert!(full.is_recoverable());
    // The kernel's buffers took some; the queue holds at most the budget's worth.
    assert!(accepted < depth / 4, "{accepted} messages accepted");
    assert!(
        t.flows().iter().any(|(f, ..)| *f == flow),
        "the flow stays open"
    );
    drop(client);
}
