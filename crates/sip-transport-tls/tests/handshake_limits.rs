//! Handshake limits with hostile peers on loopback: a peer that connects and says nothing
//! blocks neither the accept loop nor other clients, and is cut at the handshake timeout with
//! `Error::HandshakeTimeout`; connections over `max_concurrent_handshakes` are refused and
//! counted; a peer that speaks something other than TLS is a (recoverable) handshake error.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sip_transport_api::{Destination, Error, Limits, Transport};
use sip_transport_testkit::certs::TestPki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF or error, bounded by `limit`; returns how long the peer kept us open, or
/// `None` if it still had not closed.
async fn time_until_closed(sock: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    tokio::time::timeout(limit, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_blocks_nobody_and_is_cut_at_the_timeout() {
    let pki = TestPki::generate();
    let limits = Limits::default().with_handshake_timeout(Duration::from_secs(2));
    let (srv, srv_rx) = server(&pki, limits).await;
    let mut fwd = spawn_uas(Arc::clone(&srv), srv_rx);

    // Three peers connect and say nothing.
    let mut silent = Vec::new();
    for _ in 0..3 {
        let sock = TcpStream::connect(srv.local_addr()).await.expect("tcp");
        silent.push((Instant::now(), sock));
    }
    // A real client is served at once, well inside the silent peers' handshake timeout.
    let started = Instant::now();
    let (cli, mut cli_rx) = bind(client_config(&pki)).await;
    cli.send_message(
        &options(srv.local_addr(), 1),
        &Destination::new(srv.local_addr()),
    )
    .await
    .expect("send");
    let resp = next_message(&mut cli_rx).await;
    assert_eq!(resp.message.status_code(), Some(200));
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "served in {:?}, behind the silent peers",
        started.elapsed()
    );

    // The silent peers are cut at the handshake timeout, not before, not much after.
    for (connected, sock) in &mut silent {
        time_until_closed(sock, Duration::from_secs(5))
            .await
            .expect("silent peer closed by the server");
        let held = connected.elapsed();
        assert!(held >= Duration::from_millis(1900), "cut early: {held:?}");
    }
    let mut timeouts = 0;
    while timeouts < 3 {
        let e = wait_fwd(&mut fwd, |ev| match ev {
            sip_transport_api::TransportEvent::Error { error, .. } => Some(error),
            _ => None,
        })
        .await;
        match e {
            Error::HandshakeTimeout { after, .. } => {
                assert!(e.is_recoverable());
                assert_eq!(after, Duration::from_secs(2));
                timeouts += 1;
            }
            other => panic!("unexpected error {other:?}"),
        }
    }
    let stats = srv.stats();
    assert_eq!(stats.timeouts, 3);
    assert_eq!(stats.connections_refused, 3);
    assert_eq!(stats.connections_accepted, 1);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_over_the_cap_are_refused_and_counted() {
    let pki = TestPki::generate();
    let limits = Limits::default()
        .with_max_concurrent_handshakes(2)
        .with_handshake_timeout(Duration::from_secs(3));
    let (srv, mut srv_rx) = server(&pki, limits).await;

    // Two silent peers hold both handshake slots.
    let mut a = TcpStream::connect(srv.local_addr()).await.expect("tcp");
    let mut b = TcpStream::connect(srv.local_addr()).await.expect("tcp");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third is refused at once (closed without a handshake), and counted.
    let mut c = TcpStream::connect(srv.local_addr()).await.expect("tcp");
    let held = time_until_closed(&mut c, Duration::from_secs(2))
        .await
        .expect("third connection refused");
    assert!(held < Duration::from_secs(1), "{held:?}");
    assert_eq!(srv.stats().connections_refused, 1);
    // The first two are still waiting for their handshake.
    assert!(
        time_until_closed(&mut a, Duration::from_millis(100))
            .await
            .is_none()
    );

    // A slot frees when a silent peer leaves; a real client then gets through.
    drop(b.shutdown().await);
    drop(b);
    drop(a.shutdown().await);
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (cli, _cli_rx) = bind(client_config(&pki)).await;
    cli.send_message(
        &options(srv.local_addr(), 1),
        &Destination::new(srv.local_addr()),
    )
    .await
    .expect("handshake after slots freed");
    assert_eq!(cli.stats().connections_dialed, 1);
    assert_eq!(
        next_message(&mut srv_rx).await.message.method(),
        Some("OPTIONS")
    );
    assert_eq!(srv.stats().connections_accepted, 1);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_speaking_plain_sip_gets_a_handshake_error() {
    let pki = TestPki::generate();
    let (srv, mut srv_rx) = server(&pki, Limits::default()).await;
    let mut sock = TcpStream::connect(srv.local_addr()).await.expect("tcp");
    let req = options(srv.local_addr(), 1);
    sock.write_all(req.as_bytes()).await.expect("write");
    let e = next_error(&mut srv_rx).await;
    assert!(matches!(e, Error::TlsHandshake { .. }), "{e:?}");
    assert!(e.is_recoverable());
    assert!(
        time_until_closed(&mut sock, Duration::from_secs(2))
            .await
            .is_some()
    );
    assert_eq!(srv.stats().connections_refused, 1);
    assert_eq!(srv.stats().messages_received, 0);
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_handshake_timeout_against_a_silent_server() {
    // A TCP listener that accepts and never answers the ClientHello.
    let listener = tokio::net::TcpListener::bind(loopback())
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let pki = TestPki::generate();
    let limits = Limits::default().with_handshake_timeout(Duration::from_millis(300));
    let (cli, _cli_rx) = bind(client_config(&pki).with_limits(limits)).await;
    let started = Instant::now();
    let e = cli
        .send_message(&options(addr, 1), &Destination::new(addr))
        .await
        .expect_err("times out");
    assert!(matches!(e, Error::HandshakeTimeout { .. }), "{e:?}");
    assert!(e.is_recoverable());
    assert!(started.elapsed() < Duration::from_secs(3));
    cli.close().await;
    hold.abort();
}
