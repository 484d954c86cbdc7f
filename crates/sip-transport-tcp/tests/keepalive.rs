//! RFC 5626 §4.4.1 CRLF keepalive over TCP: a server answers CRLFCRLF with CRLF, and a client
//! with a keepalive interval pings its outbound flows, reports each pong, and closes a flow
//! whose peer stays silent for `pong_timeout` after a ping.

mod common;

use std::time::Duration;

use common::*;
use sip_transport_api::{CloseReason, Destination, Error, Limits, Transport, TransportEvent};
use sip_transport_tcp::{TcpConfig, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_pong() {
    let (srv, mut rx) = server(Limits::default()).await;
    let mut raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    for _ in 0..3 {
        raw.write_all(b"\r\n\r\n").await.expect("ping");
        let mut pong = [0u8; 2];
        timeout(WAIT, raw.read_exact(&mut pong))
            .await
            .expect("pong in time")
            .expect("read");
        assert_eq!(&pong, b"\r\n");
    }
    // The connection still carries SIP after keepalives.
    raw.write_all(options("127.0.0.1:9".parse().expect("addr"), 1).as_bytes())
        .await
        .expect("write");
    next_message(&mut rx).await;
    assert_eq!(srv.stats().keepalives_received, 3);
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pings_produce_pongs() {
    let (srv, _s_rx) = server(Limits::default()).await;
    let config = TcpConfig::client().with_keepalive_interval(Some(Duration::from_millis(100)));
    let (cli, mut c_rx) = TcpTransport::bind(config).await.expect("client");
    let flow = cli
        .connect(&Destination::new(srv.local_addr()))
        .await
        .expect("connect");
    for _ in 0..3 {
        let (f, peer) = wait_for(&mut c_rx, |ev| match ev {
            TransportEvent::Pong { flow, peer } => Some((flow, peer)),
            _ => None,
        })
        .await;
        assert_eq!(f, flow);
        assert_eq!(peer, srv.local_addr());
    }
    assert!(srv.stats().keepalives_received >= 3);
    assert!(cli.stats().keepalives_received >= 3);
    cli.close().await;
    srv.close().await;
}

/// Keepalive traffic keeps a flow alive past the idle timeout of both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_prevents_idle_close() {
    let limits = Limits::default().with_idle_timeout(Duration::from_millis(400));
    let (srv, mut s_rx) = server(limits.clone()).await;
    let config = TcpConfig::client()
        .with_limits(limits)
        .with_keepalive_interval(Some(Duration::from_millis(100)));
    let (cli, _c_rx) = TcpTransport::bind(config).await.expect("client");
    cli.connect(&Destination::new(srv.local_addr()))
        .await
        .expect("connect");
    let closed = timeout(Duration::from_millis(1200), async {
        loop {
            if let Some(TransportEvent::ConnectionClosed { .. }) = s_rx.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_err(), "the flow stayed up");
    assert_eq!(cli.connection_count(), 1);
    cli.close().await;
    srv.close().await;
}

/// A raw peer that accepts connections and reads everything, never answering: it reports each
/// accepted connection's index and every chunk it reads from it.
async fn silent_peer() -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<(usize, Vec<u8>)>,
) {
    let listener = TcpListener::bind(loopback()).await.expect("listen");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(len @ 1..) = sock.read(&mut buf).await {
                    if tx.send((n, buf[..len].to_vec())).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// RFC 5626 §4.4.1: a ping that gets no pong within `pong_timeout` fails the flow; the
/// next send to that peer dials a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_ping_closes_flow_with_keepalive_timeout() {
    let (peer, mut seen) = silent_peer().await;
    let config = TcpConfig::client()
        .with_keepalive_interval(Some(Duration::from_millis(200)))
        .with_pong_timeout(Duration::from_millis(300));
    let (cli, mut c_rx) = TcpTransport::bind(config).await.expect("client");
    let flow = cli.connect(&Destination::new(peer)).await.expect("connect");

    // The ping did go out: the peer read it (and threw it away).
    let ping = timeout(WAIT, async {
        let mut got = Vec::new();
        while got.len() < 4 {
            let (conn, bytes) = seen.recv().await.expect("peer running");
            assert_eq!(conn, 0);
            got.extend_from_slice(&bytes);
        }
        got
    })
    .await
    .expect("ping in time");
    assert_eq!(ping, b"\r\n\r\n");

    // First ping after 160-200 ms, closed 300 ms after it: well inside two seconds.
    let (closed_flow, closed_peer, reason) = timeout(Duration::from_secs(2), async {
        loop {
            match c_rx.recv().await.expect("event channel open") {
                TransportEvent::ConnectionClosed {
                    flow, peer, reason, ..
                } => return (flow, peer, reason),
                TransportEvent::Pong { .. } => panic!("the silent peer cannot pong"),
                _ => {}
            }
        }
    })
    .await
    .expect("the flow closed within the pong timeout");
    assert_eq!(reason, CloseReason::KeepaliveTimeout);
    assert_eq!(closed_flow, flow);
    assert_eq!(closed_peer, peer);
    assert_eq!(cli.connection_count(), 0);
    assert_eq!(cli.flow_peer(flow), None);
    assert_eq!(cli.stats().timeouts, 1);

    // A later send dials afresh, and the message reaches the peer on the new connection.
    let msg = options(loopback(), 1);
    let sent_on = cli
        .send_message(&msg, &Destination::new(peer))
        .await
        .expect("send")
        .expect("a stream send names its flow");
    assert_ne!(sent_on, flow);
    assert_eq!(cli.stats().connections_dialed, 2);
    let got = timeout(WAIT, async {
        let mut got = Vec::new();
        while got.len() < msg.as_bytes().len() {
            let (conn, bytes) = seen.recv().await.expect("peer running");
            if conn == 0 {
                // More pings of the failed flow, sent before it was given up.
                assert!(
                    bytes.iter().all(|b| matches!(b, b'\r' | b'\n')),
                    "{bytes:?}"
                );
                continue;
            }
            assert_eq!(conn, 1);
            got.extend_from_slice(&bytes);
        }
        got
    })
    .await
    .expect("message on the new connection in time");
    assert!(got.starts_with(msg.as_bytes()));
    cli.close().await;
}

/// A peer that answers pings (our own transport) keeps the flow open across many pings,
/// with a pong timeout shorter than the ping interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_pings_keep_flow_open() {
    let (srv, _s_rx) = server(Limits::default()).await;
    let config = TcpConfig::client()
        .with_keepalive_interval(Some(Duration::from_millis(100)))
        .with_pong_timeout(Duration::from_millis(150));
    let (cli, mut c_rx) = TcpTransport::bind(config).await.expect("client");
    let flow = cli
        .connect(&Destination::new(srv.local_addr()))
        .await
        .expect("connect");
    let mut pongs = 0;
    timeout(Duration::from_secs(5), async {
        while pongs < 6 {
            match c_rx.recv().await.expect("event channel open") {
                TransportEvent::Pong { flow: f, .. } => {
                    assert_eq!(f, flow);
                    pongs += 1;
                }
                TransportEvent::ConnectionClosed { reason, .. } => {
                    panic!("flow closed after {pongs} pongs: {reason:?}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("six pongs in time");
    assert_eq!(cli.connection_count(), 1);
    assert_eq!(cli.flow_peer(flow), Some(srv.local_addr()));
    assert_eq!(cli.stats().timeouts, 0);
    cli.close().await;
    srv.close().await;
}

/// Any traffic from the peer ends the wait for a pong, not only the CRLF: a peer that sends
/// SIP but never pongs keeps the flow (see the driver for why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_traffic_counts_as_liveness() {
    let listener = TcpListener::bind(loopback()).await.expect("listen");
    let peer = listener.local_addr().expect("addr");
    let config = TcpConfig::client()
        .with_keepalive_interval(Some(Duration::from_millis(100)))
        .with_pong_timeout(Duration::from_millis(300));
    let (cli, mut c_rx) = TcpTransport::bind(config).await.expect("client");
    let flow = cli.connect(&Destination::new(peer)).await.expect("connect");
    let (sock, _) = timeout(WAIT, listener.accept())
        .await
        .expect("accept in time")
        .expect("accept");
    let (mut rd, mut wr) = sock.into_split();
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(1..) = rd.read(&mut buf).await {}
    });
    // A second of requests, one every 50 ms (about ten ping intervals), and never a pong.
    let talker = tokio::spawn(async move {
        for n in 0..20 {
            let m = options(peer, n);
            wr.write_all(m.as_bytes()).await.expect("peer write");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wr
    });
    let mut messages = 0;
    timeout(Duration::from_secs(5), async {
        while messages < 20 {
            match c_rx.recv().await.expect("event channel open") {
                TransportEvent::Message(m) => {
                    assert_eq!(m.flow, Some(flow));
                    messages += 1;
                }
                TransportEvent::ConnectionClosed { reason, .. } => {
                    panic!("flow closed after {messages} messages: {reason:?}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("twenty messages in time");
    assert_eq!(cli.connection_count(), 1);
    assert_eq!(cli.stats().timeouts, 0);
    // Then silence: the flow fails within the pong timeout of the next ping.
    let _wr = talker.await.expect("talker");
    let reason = timeout(Duration::from_secs(2), async {
        loop {
            if let TransportEvent::ConnectionClosed { reason, .. } =
                c_rx.recv().await.expect("event channel open")
            {
                return reason;
            }
        }
    })
    .await
    .expect("closed once the peer went quiet");
    assert_eq!(reason, CloseReason::KeepaliveTimeout);
    cli.close().await;
}

/// No pong can arrive in zero time: `bind` refuses a zero pong timeout.
#[tokio::test]
async fn zero_pong_timeout_is_refused() {
    let config = TcpConfig::client().with_pong_timeout(Duration::ZERO);
    let err = TcpTransport::bind(config).await.expect_err("refused");
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
}
