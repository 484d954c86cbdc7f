//! `Limits::connect_timeout` on TLS over real sockets: the TCP connect to an address whose
//! SYNs go unanswered fails with a typed, recoverable `Error::ConnectTimeout` (not a handshake
//! error) after about the timeout, and the transport keeps serving.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sip_transport_api::{Destination, Limits, Transport};
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::{SilentListener, assert_connect_timeout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_that_hangs_fails_at_the_connect_timeout() {
    let pki = TestPki::generate();
    let silent = SilentListener::start();
    let limit = Duration::from_millis(600);
    let (cli, mut cli_rx) =
        bind(client_config(&pki).with_limits(Limits::default().with_connect_timeout(limit))).await;
    let t0 = Instant::now();
    let e = cli
        .send_message(
            &options(cli.local_addr(), 1),
            &Destination::new(silent.addr).with_server_name("localhost"),
        )
        .await
        .expect_err("nobody answers the SYN");
    let took = t0.elapsed();
    assert_connect_timeout(&e, silent.addr, limit, took);
    assert_eq!(cli.connection_count(), 0);

    let (srv, srv_rx) = server(&pki, Limits::default()).await;
    let _uas = spawn_uas(Arc::clone(&srv), srv_rx);
    cli.send_message(
        &options(cli.local_addr(), 2),
        &Destination::new(srv.local_addr()).with_server_name("localhost"),
    )
    .await
    .expect("a live peer is reached");
    assert_eq!(
        next_message(&mut cli_rx).await.message.status_code(),
        Some(200)
    );
    cli.close().await;
    srv.close().await;
}
