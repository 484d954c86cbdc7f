//! The listener's rules, checked from raw clients over loopback: the `sip` subprotocol
//! (RFC 7118 §4.1), path and `Origin` allow-lists, the message size limit (Close 1009),
//! fragmented messages, a slow handshaker, the per-IP limit, and ping answers.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sip_transport_api::{CloseReason, Error, Limits, Transport, TransportEvent};
use sip_transport_ws::WsConfig;
use support::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

#[tokio::test]
async fn subprotocol_sip_is_required_and_echoed() {
    let (t, _events) = bind(WsConfig::default());
    let addr = t.local_addr();
    let none = raw_upgrade(addr, "").await;
    assert!(none.starts_with("HTTP/1.1 400"), "{none}");
    let sips = raw_upgrade(addr, "Sec-WebSocket-Protocol: sips\r\n").await;
    assert!(sips.starts_with("HTTP/1.1 400"), "{sips}");
    let listed = raw_upgrade(addr, "Sec-WebSocket-Protocol: foo, sip\r\n").await;
    assert!(listed.starts_with("HTTP/1.1 101"), "{listed}");
    assert!(
        listed
            .to_ascii_lowercase()
            .contains("\r\nsec-websocket-protocol: sip\r\n"),
        "{listed}"
    );
    // Two header lines, the second offering sip, are one list (RFC 6455 §4.1).
    let split = raw_upgrade(
        addr,
        "Sec-WebSocket-Protocol: foo\r\nSec-WebSocket-Protocol: sip\r\n",
    )
    .await;
    assert!(split.starts_with("HTTP/1.1 101"), "{split}");
    assert!(t.stats().connections_refused >= 2);
}

#[tokio::test]
async fn origin_and_path_allow_lists() {
    let (t, _events) = bind(
        WsConfig::default()
            .with_allowed_origins(["https://phone.example"])
            .with_allowed_paths(["/sip"]),
    );
    let addr = t.local_addr();
    let up = |path: &'static str, origin: &'static str| async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: sip\r\n{origin}\r\n"
        );
        tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes())
            .await
            .expect("write");
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let good = up("/sip", "Origin: https://phone.example\r\n").await;
    assert!(good.starts_with("HTTP/1.1 101"), "{good}");
    let evil = up("/sip", "Origin: https://evil.example\r\n").await;
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
    let missing = up("/sip", "").await;
    assert!(missing.starts_with("HTTP/1.1 403"), "{missing}");
    let path = up("/other", "Origin: https://phone.example\r\n").await;
    assert!(path.starts_with("HTTP/1.1 404"), "{path}");
}

#[tokio::test]
async fn oversized_message_closes_only_that_connection() {
    let limits = Limits::default()
        .with_max_message_size(2_000)
        .with_max_body_size(2_000);
    let (t, events) = bind(WsConfig::default().with_limits(limits));
    let (mut seen, _task) = respond(t.clone(), events);
    let mut big = raw_client(t.local_addr(), Some("sip")).await;
    let mut small = raw_client(t.local_addr(), Some("sip")).await;

    let huge = sip_transport_testkit::request_with_body("MESSAGE", "WS", "x.invalid", 1, 3_000);
    big.send(text_of(&huge)).await.expect("send");
    // RFC 6455 §7.4.1: 1009, and the connection ends.
    let close = tokio::time::timeout(WAIT, big.next())
        .await
        .expect("close in time");
    match close {
        Some(Ok(WsMessage::Close(Some(f)))) => assert_eq!(f.code, CloseCode::Size),
        other => panic!("expected Close 1009, got {other:?}"),
    }
    let err = wait_event(&mut seen, |e| matches!(e, TransportEvent::Error { .. })).await;
    assert!(matches!(
        err,
        TransportEvent::Error {
            error: Error::MessageTooLarge { limit: 2_000, .. },
            flow: Some(_),
            ..
        }
    ));
    let closed = wait_event(&mut seen, |e| {
        matches!(e, TransportEvent::ConnectionClosed { .. })
    })
    .await;
    assert!(matches!(
        closed,
        TransportEvent::ConnectionClosed {
            reason: CloseReason::ProtocolError,
            ..
        }
    ));

    // The other connection is untouched.
    small.send(text_of(&ws_options(1))).await.expect("send");
    let resp = tokio::time::timeout(WAIT, small.next())
        .await
        .expect("answer in time");
    let text = resp.expect("frame").expect("ok").into_text().expect("text");
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
}

#[tokio::test]
async fn fragmented_message_is_reassembled() {
    let (t, events) = bind(WsConfig::default());
    let (_seen, _task) = respond(t.clone(), events);
    let mut ws = raw_client(t.local_addr(), Some("sip")).await;
    let req = ws_options(7);
    let bytes = req.as_bytes();
    let (a, rest) = bytes.split_at(20);
    let (b, c) = rest.split_at(rest.len() / 2);
    // RFC 6455 §5.4: a text frame without FIN, a continuation, and a final continuation.
    let frame = |data: &[u8], op: Data, fin: bool| {
        let header = FrameHeader {
            is_final: fin,
            opcode: OpCode::Data(op),
            ..FrameHeader::default()
        };
        WsMessage::Frame(Frame::from_payload(header, data.to_vec().into()))
    };
    ws.feed(frame(a, Data::Text, false)).await.expect("first");
    ws.feed(frame(b, Data::Continue, false))
        .await
        .expect("middle");
    // A ping may sit between fragments (RFC 6455 §5.4); it is answered.
    ws.feed(WsMessage::Ping("p".into())).await.expect("ping");
    ws.send(frame(c, Data::Continue, true)).await.expect("last");
    let mut got_pong = false;
    let text = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Pong(p))) => {
                    assert_eq!(&p[..], b"p");
                    got_pong = true;
                }
                Some(Ok(WsMessage::Text(t))) => return t.to_string(),
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("answer in time");
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
    assert!(text.contains("test-7@example.invalid"), "{text}");
    assert!(got_pong, "the ping between fragments was answered");
}

#[tokio::test]
async fn slow_handshaker_is_cut_and_blocks_nobody() {
    let limits = Limits::default().with_handshake_timeout(Duration::from_millis(500));
    let (t, events) = bind(WsConfig::default().with_limits(limits));
    let (mut seen, _task) = respond(t.clone(), events);
    let started = Instant::now();
    let mut slow = TcpStream::connect(t.local_addr()).await.expect("connect");
    // Someone else connects and is served while the slow one says nothing.
    let mut ws = raw_client(t.local_addr(), Some("sip")).await;
    ws.send(text_of(&ws_options(9))).await.expect("send");
    let r = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("answer in time");
    assert!(r.expect("frame").expect("ok").is_text());
    assert!(started.elapsed() < Duration::from_millis(500));
    // The slow one is cut at the handshake timeout: EOF, no response.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("cut in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "no HTTP response to a silent client");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let ev = wait_event(&mut seen, |e| matches!(e, TransportEvent::Error { .. })).await;
    assert!(matches!(
        ev,
        TransportEvent::Error {
            error: Error::HandshakeTimeout { .. },
            ..
        }
    ));
    assert!(t.stats().timeouts >= 1);
}

#[tokio::test]
async fn per_ip_limit_refuses_extra_connections() {
    let limits = Limits::default().with_max_connections_per_ip(2);
    let (t, _events) = bind(WsConfig::default().with_limits(limits));
    let _a = raw_client(t.local_addr(), Some("sip")).await;
    let _b = raw_client(t.local_addr(), Some("sip")).await;
    let mut c = TcpStream::connect(t.local_addr()).await.expect("connect");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, c.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "the third connection is closed at once");
    assert_eq!(t.stats().connections_refused, 1);
    drop(_a);
    // A slot frees when a connection ends.
    tokio::time::timeout(WAIT, async {
        while t.flows().len() > 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("first connection gone");
    let _d = raw_client(t.local_addr(), Some("sip")).await;
}

#[tokio::test]
async fn idle_connection_is_closed_and_keepalive_pings_keep_one_open() {
    let limits = Limits::default().with_idle_timeout(Duration::from_millis(400));
    let (t, events) = bind(WsConfig::default().with_limits(limits.clone()));
    let (mut seen, _task) = respond(t.clone(), events);
    let mut idle = raw_client(t.local_addr(), Some("sip")).await;
    let closed = wait_event(&mut seen, |e| {
        matches!(e, TransportEvent::ConnectionClosed { .. })
    })
    .await;
    assert!(matches!(
        closed,
        TransportEvent::ConnectionClosed {
            reason: CloseReason::IdleTimeout,
            ..
        }
    ));
    let f = tokio::time::timeout(WAIT, idle.next())
        .await
        .expect("close");
    assert!(matches!(f, Some(Ok(WsMessage::Close(_)))), "{f:?}");

    // With keepalive pings every 100 ms, an answering peer stays connected past the timeout.
    let (k, kev) = bind(
        WsConfig::default()
            .with_limits(limits)
            .with_keepalive_interval(Some(Duration::from_millis(100))),
    );
    let (mut kseen, _ktask) = respond(k.clone(), kev);
    let mut ws = raw_client(k.local_addr(), Some("sip")).await;
    let mut pings = 0;
    let _ = tokio::time::timeout(Duration::from_millis(1_000), async {
        // tungstenite answers each ping while we read.
        while let Some(Ok(m)) = ws.next().await {
            if m.is_ping() {
                pings += 1;
            }
        }
    })
    .await;
    assert!(pings >= 5, "{pings} pings in 1 s at 100 ms");
    assert_eq!(
        k.flows().len(),
        1,
        "still open after 1 s with 400 ms idle timeout"
    );
    let pong = wait_event(&mut kseen, |e| matches!(e, TransportEvent::Pong { .. })).await;
    assert!(matches!(pong, TransportEvent::Pong { .. }));
}

#[tokio::test]
async fn an_application_stall_longer_than_the_idle_timeout_does_not_close_the_flow() {
    // An event queue of one and a 400 ms idle timeout: the ConnectionOpened event fills the
    // queue, so delivering the first request waits until the application reads again,
    // 1.2 s later. That wait was ours, not the peer's: the flow must still be open after it.
    let limits = Limits::default()
        .with_idle_timeout(Duration::from_millis(400))
        .with_event_queue_depth(1);
    let (t, mut events) = bind(WsConfig::default().with_limits(limits));
    let mut ws = raw_client(t.local_addr(), Some("sip")).await;
    ws.send(text_of(&ws_options(1))).await.expect("send");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut next = async || {
        tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("event in time")
            .expect("events open")
    };
    assert!(matches!(
        next().await,
        TransportEvent::ConnectionOpened { .. }
    ));
    assert!(matches!(next().await, TransportEvent::Message(_)));
    // Right after the stall the peer sends again, and is heard.
    ws.send(text_of(&ws_options(2))).await.expect("send");
    match next().await {
        TransportEvent::Message(m) => assert_eq!(m.message.cseq().map(|c| c.seq), Some(2)),
        other => panic!("expected the second request, got {other:?}"),
    }
}
