//! DSCP marking and TCP keepalive on a WebSocket transport's real sockets (ws and wss): the
//! listener, the connection it accepted and upgraded, and the one a client transport dialed,
//! read back through `ss` (Linux). Server and client get different marks and keepalive idle
//! times, so each socket shows whose settings it carries.

#![cfg(target_os = "linux")]

mod support;

use std::time::Duration;

use sip_transport_api::{Destination, Dscp, Error, Transport};
use sip_transport_tcp::TcpKeepaliveConfig;
use sip_transport_testkit::ss::{Expected, check_stream_sockets};
use sip_transport_ws::{ClientTls, WsConfig, WsTransport};
use support::*;

fn keepalive(idle_secs: u64) -> Option<TcpKeepaliveConfig> {
    Some(TcpKeepaliveConfig::new().with_idle(Duration::from_secs(idle_secs)))
}

type Ws = std::sync::Arc<WsTransport>;

/// The client sends one request to the server; returns once the server has it.
async fn exchange(server: WsConfig, client: WsConfig) -> (Ws, Ws) {
    let (srv, mut srx) = bind(server.with_bind("127.0.0.1:0".parse().expect("addr")));
    let (cli, _crx) = bind(client.with_listen(false));
    let dest = Destination::new(srv.local_addr()).with_server_name("localhost");
    cli.send_message(&ws_options(1), &dest).await.expect("send");
    next_message(&mut srx).await;
    (srv, cli)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_dscp_and_keepalive_on_listener_accepted_and_dialed_sockets() {
    let (srv, cli) = exchange(
        WsConfig::default()
            .with_dscp(Some(Dscp::CS3))
            .with_tcp_keepalive(keepalive(40)),
        WsConfig::default()
            .with_dscp(Some(Dscp::EF))
            .with_tcp_keepalive(keepalive(50)),
    )
    .await;
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
async fn wss_dscp_and_keepalive_on_listener_accepted_and_dialed_sockets() {
    let cert = test_cert();
    let (srv, cli) = exchange(
        WsConfig::default()
            .with_server_tls(cert.server.clone())
            .with_dscp(Some(Dscp::CS5))
            .with_tcp_keepalive(keepalive(40)),
        WsConfig::wss_client(ClientTls::CaPem(cert.pem.clone().into_bytes()))
            .with_dscp(Some(Dscp::CS3))
            .with_tcp_keepalive(keepalive(50)),
    )
    .await;
    check_stream_sockets(
        srv.local_addr(),
        Expected::keepalive(0xa0, 40),
        Expected::keepalive(0xa0, 40),
        Expected::keepalive(0x60, 50),
    );
    srv.close().await;
    cli.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_mark_nothing_and_keepalive_can_be_switched_off() {
    let (srv, cli) = exchange(
        WsConfig::default(),
        WsConfig::default().with_tcp_keepalive(None),
    )
    .await;
    let os_idle = sip_transport_testkit::ss::os_keepalive_idle_secs();
    let off = Expected {
        tos: 0,
        keepalive_at_most: None,
    };
    check_stream_sockets(
        srv.local_addr(),
        Expected::keepalive(0, os_idle),
        Expected::keepalive(0, os_idle),
        off,
    );
    srv.close().await;
    cli.close().await;
}

#[tokio::test]
async fn keepalive_timing_out_of_bounds_is_a_config_error() {
    let config = WsConfig::default()
        .with_tcp_keepalive(Some(TcpKeepaliveConfig::new().with_idle(Duration::ZERO)));
    let e = WsTransport::bind(config).expect_err("refused");
    assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
}

/// The listener's backlog is `WsConfig::backlog` (1024 by default, as on TCP), as the kernel
/// shows it (`ss`'s Send-Q of a listening socket); it used to be std's fixed 128.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listen_backlog_is_the_configured_one() {
    for (config, want) in [
        (WsConfig::default(), 1024),
        (WsConfig::default().with_backlog(7), 7),
    ] {
        let (server, _events) = bind(config);
        let port = server.local_addr().port();
        let Some(sockets) = sip_transport_testkit::ss::tcp_sockets_on_port(port) else {
            return;
        };
        let listener = sockets
            .iter()
            .find(|s| s.state == "LISTEN" && s.local_port == port)
            .unwrap_or_else(|| panic!("no listener on {port}: {sockets:?}"));
        assert_eq!(listener.send_q, want);
        server.close().await;
    }
}
