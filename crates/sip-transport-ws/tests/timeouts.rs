//! Peers that are too slow or gone, over loopback: a message trickled in byte by byte or in
//! fragments is cut at `Limits::header_read_timeout` from its first byte (slowloris), and a
//! peer that never answers our keepalive pings is cut at `WsConfig::pong_timeout`
//! (RFC 5626 §4.4.1). Other clients of the same transport are not disturbed.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sip_transport_api::{CloseReason, Error, FlowId, Limits, Transport, TransportEvent};
use sip_transport_ws::{WsConfig, WsTransport};
use support::*;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;

const MESSAGE_TIMEOUT: Duration = Duration::from_millis(500);
/// Slower than the timeout allows for a handful of bytes.
const TRICKLE: Duration = Duration::from_millis(150);
const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

fn slowloris_limits() -> Limits {
    Limits::default().with_header_read_timeout(MESSAGE_TIMEOUT)
}

/// A masked client frame header (RFC 6455 §5.2) for a payload of `len` < 126 bytes.
fn frame_header(fin: bool, opcode: u8, len: u8) -> Vec<u8> {
    assert!(len < 126);
    let mut h = vec![if fin { 0x80 } else { 0 } | opcode, 0x80 | len];
    h.extend_from_slice(&MASK);
    h
}

fn masked(data: &[u8]) -> Vec<u8> {
    data.iter()
        .enumerate()
        .map(|(i, b)| b ^ MASK[i % 4])
        .collect()
}

/// The flow of the next `ConnectionOpened`.
async fn opened(events: &mut mpsc::UnboundedReceiver<TransportEvent>) -> FlowId {
    match wait_event(events, |e| {
        matches!(e, TransportEvent::ConnectionOpened { .. })
    })
    .await
    {
        TransportEvent::ConnectionOpened { flow, .. } => flow,
        _ => unreachable!("matched above"),
    }
}

/// Waits for `flow` to close and returns why.
async fn closed(events: &mut mpsc::UnboundedReceiver<TransportEvent>, flow: FlowId) -> CloseReason {
    let ev = wait_event(
        events,
        |e| matches!(e, TransportEvent::ConnectionClosed { flow: f, .. } if *f == flow),
    )
    .await;
    match ev {
        TransportEvent::ConnectionClosed { reason, .. } => reason,
        _ => unreachable!("matched above"),
    }
}

/// Writes `chunks` one by one, `TRICKLE` apart, from a task of its own, until the server cuts
/// the connection or the chunks run out. Returns the read half, and when the first chunk
/// went out (about now).
fn trickle(slow: TcpStream, chunks: Vec<Vec<u8>>) -> (OwnedReadHalf, Instant) {
    let (rd, mut wr) = slow.into_split();
    let first_byte = Instant::now();
    tokio::spawn(async move {
        for c in chunks {
            if wr.write_all(&c).await.is_err() {
                break;
            }
            tokio::time::sleep(TRICKLE).await;
        }
    });
    (rd, first_byte)
}

/// A transport with a short message-read timeout, a normal client on it, and a slow raw one.
async fn slow_setup() -> (
    std::sync::Arc<WsTransport>,
    mpsc::UnboundedReceiver<TransportEvent>,
    tokio_tungstenite::WebSocketStream<TcpStream>,
    TcpStream,
    FlowId,
) {
    let (t, events) = bind(WsConfig::default().with_limits(slowloris_limits()));
    let (mut seen, _task) = respond(t.clone(), events);
    let normal = raw_client(t.local_addr(), Some("sip")).await;
    let _normal_flow = opened(&mut seen).await;
    let slow = raw_upgraded(t.local_addr()).await;
    let slow_flow = opened(&mut seen).await;
    (t, seen, normal, slow, slow_flow)
}

/// The slow connection was cut near the timeout with a Close 1008, counted; the normal
/// client still gets answers.
async fn check_cut(
    t: &WsTransport,
    seen: &mut mpsc::UnboundedReceiver<TransportEvent>,
    normal: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    slow: &mut OwnedReadHalf,
    slow_flow: FlowId,
    first_byte: Instant,
) {
    assert_eq!(
        closed(seen, slow_flow).await,
        CloseReason::HeaderReadTimeout
    );
    let took = first_byte.elapsed();
    assert!(
        took >= MESSAGE_TIMEOUT - Duration::from_millis(50) && took < Duration::from_secs(3),
        "cut after {took:?}"
    );
    // RFC 6455 §7.4.1: a Close frame with 1008 (policy violation), then the end. (Were
    // our next trickled byte to reach the closed socket first, a reset could cut the frame
    // short; then the end alone is checked.)
    let rest = read_to_end_by_server(slow).await;
    assert!(
        rest.is_empty()
            || (rest.len() >= 4 && rest[0] == 0x88 && rest[2..4] == 1008u16.to_be_bytes()),
        "{rest:?}"
    );
    assert!(t.stats().timeouts >= 1);
    normal.send(text_of(&ws_options(5))).await.expect("send");
    let answer = tokio::time::timeout(WAIT, normal.next())
        .await
        .expect("answer in time")
        .expect("a message")
        .expect("ok");
    assert!(
        answer.to_text().expect("text").starts_with("SIP/2.0 200"),
        "{answer:?}"
    );
    assert_eq!(t.flows().len(), 1, "only the normal client is left");
}

#[tokio::test]
async fn message_trickled_byte_by_byte_is_cut_at_the_read_timeout() {
    let (t, mut seen, mut normal, slow, slow_flow) = slow_setup().await;
    let body = ws_options(1);
    let payload = masked(&body.as_bytes()[..100]);
    // The frame header at once, then its payload a byte at a time: 20 bytes would take 3 s.
    let mut chunks = vec![frame_header(true, 1, 100)];
    chunks.extend(payload.iter().take(20).map(|b| vec![*b]));
    let (mut slow, first_byte) = trickle(slow, chunks);
    check_cut(&t, &mut seen, &mut normal, &mut slow, slow_flow, first_byte).await;
}

#[tokio::test]
async fn message_trickled_in_fragments_is_cut_at_the_read_timeout() {
    let (t, mut seen, mut normal, slow, slow_flow) = slow_setup().await;
    // Each fragment is a whole frame, but the message (RFC 6455 §5.4) never ends in time.
    let bytes = ws_options(2).as_bytes().to_vec();
    let chunks: Vec<Vec<u8>> = bytes
        .chunks(10)
        .take(20)
        .enumerate()
        .map(|(i, part)| {
            let opcode = if i == 0 { 1 } else { 0 };
            let mut f = frame_header(false, opcode, part.len() as u8);
            f.extend(masked(part));
            f
        })
        .collect();
    let (mut slow, first_byte) = trickle(slow, chunks);
    check_cut(&t, &mut seen, &mut normal, &mut slow, slow_flow, first_byte).await;
}

#[tokio::test]
async fn a_message_sent_in_good_time_is_not_cut() {
    // Fragments and a ping in between, all well inside the timeout: delivered.
    let (t, events) = bind(WsConfig::default().with_limits(slowloris_limits()));
    let (_seen, _task) = respond(t.clone(), events);
    let mut slow = raw_upgraded(t.local_addr()).await;
    let bytes = ws_options(3).as_bytes().to_vec();
    let (a, b) = bytes.split_at(40);
    let mut first = frame_header(false, 1, 40);
    first.extend(masked(a));
    let ping = frame_header(true, 9, 0);
    let mut rest = Vec::new();
    for (i, part) in b.chunks(100).enumerate() {
        let last = (i + 1) * 100 >= b.len();
        rest.extend(frame_header(last, 0, part.len() as u8));
        rest.extend(masked(part));
    }
    for chunk in [first, ping, rest] {
        slow.write_all(&chunk).await.expect("write");
        tokio::time::sleep(MESSAGE_TIMEOUT / 5).await;
    }
    // The responder's 200 (an unmasked text frame) arrives after the pong.
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 1024];
        while !got.windows(11).any(|w| w == b"SIP/2.0 200") {
            let n = slow.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed: {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("answer in time");
    // Quiet between messages is not slow: the idle timeout applies, not this one.
    tokio::time::sleep(MESSAGE_TIMEOUT * 2).await;
    assert_eq!(t.flows().len(), 1);
    assert_eq!(t.stats().timeouts, 0);
}

#[tokio::test]
async fn unanswered_keepalive_pings_close_the_flow() {
    let every = Duration::from_millis(100);
    let pong_timeout = Duration::from_millis(400);
    let (t, events) = bind(
        WsConfig::default()
            .with_keepalive_interval(Some(every))
            .with_pong_timeout(pong_timeout),
    );
    let (mut seen, _task) = respond(t.clone(), events);
    let started = Instant::now();
    // A client that never reads, so never answers a ping.
    let _deaf = raw_client(t.local_addr(), Some("sip")).await;
    let deaf_flow = opened(&mut seen).await;
    // A client that reads (tungstenite answers each ping while reading) stays.
    let mut alive = raw_client(t.local_addr(), Some("sip")).await;
    let alive_flow = opened(&mut seen).await;
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        let _ = tokio::time::timeout(Duration::from_millis(1_200), async {
            while let Some(Ok(m)) = alive.next().await {
                pings += u32::from(m.is_ping());
            }
        })
        .await;
        (alive, pings)
    });
    assert_eq!(
        closed(&mut seen, deaf_flow).await,
        CloseReason::KeepaliveTimeout
    );
    let took = started.elapsed();
    assert!(
        took >= every + pong_timeout - Duration::from_millis(50) && took < Duration::from_secs(3),
        "cut after {took:?}"
    );
    assert!(t.stats().timeouts >= 1);
    let (_alive, pings) = tokio::time::timeout(WAIT, reader)
        .await
        .expect("reader done in time")
        .expect("reader");
    assert!(pings >= 3, "{pings} pings answered");
    let open: Vec<_> = t.flows().into_iter().map(|(f, ..)| f).collect();
    assert_eq!(
        open,
        vec![alive_flow],
        "the answering client is still connected"
    );
}

#[tokio::test]
async fn zero_pong_timeout_is_refused() {
    let err = WsTransport::bind(WsConfig::default().with_pong_timeout(Duration::ZERO))
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
}

/// Timeouts set to "never" (`Duration::MAX`) must not overflow a deadline: the connection
/// works and is counted as open.
#[tokio::test]
async fn timeouts_of_never_do_not_break_a_connection() {
    let never = Limits::default()
        .with_idle_timeout(Duration::MAX)
        .with_header_read_timeout(Duration::MAX)
        .with_write_timeout(Duration::MAX);
    let (t, events) = bind(WsConfig::default().with_limits(never));
    let (mut seen, _task) = respond(t.clone(), events);
    let mut client = raw_client(t.local_addr(), Some("sip")).await;
    let _flow = opened(&mut seen).await;
    client.send(text_of(&ws_options(9))).await.expect("send");
    let answer = tokio::time::timeout(WAIT, client.next())
        .await
        .expect("answer in time")
        .expect("a message")
        .expect("ok");
    assert!(
        answer.to_text().expect("text").starts_with("SIP/2.0 200"),
        "{answer:?}"
    );
    assert_eq!(t.stats().connections_open, 1);
    assert_eq!(t.flows().len(), 1);
}
