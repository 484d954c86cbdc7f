//! RFC 5626 §4.4.1 CRLF keepalive over TCP: a server answers CRLFCRLF with CRLF, and a client
//! with a keepalive interval pings its outbound flows and reports each pong.

mod common;

use std::time::Duration;

use common::*;
use sip_transport_api::{Destination, Limits, Transport, TransportEvent};
use sip_transport_tcp::{TcpConfig, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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
