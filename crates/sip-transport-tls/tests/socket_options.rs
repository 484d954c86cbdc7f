//! DSCP marking and TCP keepalive on a TLS transport's real sockets: the listener, the
//! connection it accepted (after the handshake) and the one a client transport dialed, read
//! back through `ss` (Linux). Server and client get different marks and keepalive idle
//! times, so each socket shows whose settings it carries.

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::*;
use sip_transport_api::{Destination, Dscp, Transport};
use sip_transport_tcp::TcpKeepaliveConfig;
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::ss::{Expected, check_stream_sockets};

fn keepalive(idle_secs: u64) -> Option<TcpKeepaliveConfig> {
    Some(TcpKeepaliveConfig::new().with_idle(Duration::from_secs(idle_secs)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dscp_and_keepalive_on_listener_accepted_and_dialed_sockets() {
    let pki = TestPki::generate();
    let (srv, mut srx) = bind(
        server_config(&pki, &pki.server)
            .with_dscp(Some(Dscp::CS3))
            .with_tcp_keepalive(keepalive(40)),
    )
    .await;
    let (cli, _crx) = bind(
        client_config(&pki)
            .with_dscp(Some(Dscp::EF))
            .with_tcp_keepalive(keepalive(50)),
    )
    .await;
    let dest = Destination::new(srv.local_addr()).with_server_name("localhost");
    cli.send_message(&options(srv.local_addr(), 1), &dest)
        .await
        .expect("send over TLS");
    next_message(&mut srx).await;
    check_stream_sockets(
        srv.local_addr(),
        Expected::keepalive(0x60, 40),
        Expected::keepalive(0x60, 40),
        Expected::keepalive(0xb8, 50),
    );

    srv.close().await;
    cli.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_mark_nothing_and_keepalive_can_be_switched_off() {
    let pki = TestPki::generate();
    let (srv, mut srx) = bind(server_config(&pki, &pki.server)).await;
    let (cli, _crx) = bind(client_config(&pki).with_tcp_keepalive(None)).await;
    let dest = Destination::new(srv.local_addr()).with_server_name("localhost");
    cli.send_message(&options(srv.local_addr(), 1), &dest)
        .await
        .expect("send over TLS");
    next_message(&mut srx).await;
    // The server keeps the default: keepalive on with the OS's timing.
    let os_idle = sip_transport_testkit::ss::os_keepalive_idle_secs();
    let server = Expected {
        tos: 0,
        keepalive_at_most: Some(Duration::from_secs(os_idle)),
    };
    let off = Expected {
        tos: 0,
        keepalive_at_most: None,
    };
    check_stream_sockets(srv.local_addr(), server, server, off);
    srv.close().await;
    cli.close().await;
}
