//! `Limits::connect_timeout` on WebSocket over real sockets: the TCP connect to an address
//! whose SYNs go unanswered fails with a typed, recoverable `Error::ConnectTimeout` after
//! about the timeout, leaves no pending dial behind, and the transport keeps serving.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_transport_api::{Destination, Limits, Transport};
use sip_transport_testkit::{SilentListener, assert_connect_timeout};
use sip_transport_ws::WsConfig;
use support::*;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_that_hangs_fails_at_the_connect_timeout() {
    let silent = SilentListener::start();
    let limit = Duration::from_millis(600);
    let (cli, mut cli_rx) = bind(
        WsConfig::new(loopback())
            .with_listen(false)
            .with_limits(Limits::default().with_connect_timeout(limit)),
    );
    for attempt in 0..2 {
        // Twice: a failed dial must not leave a pending entry that the next send waits on.
        let t0 = Instant::now();
        let e = cli
            .send_message(&ws_options(attempt), &Destination::new(silent.addr))
            .await
            .expect_err("nobody answers the SYN");
        let took = t0.elapsed();
        assert_connect_timeout(&e, silent.addr, limit, took);
        assert_eq!(cli.stats().connections_open, 0);
    }

    let (srv, srv_rx) = bind(WsConfig::new(loopback()));
    let (_srv_events, _uas) = respond(srv.clone(), srv_rx);
    cli.send_message(&ws_options(3), &Destination::new(srv.local_addr()))
        .await
        .expect("a live peer is reached");
    assert_eq!(
        next_message(&mut cli_rx).await.message.status_code(),
        Some(200)
    );
    cli.close().await;
    srv.close().await;
}
