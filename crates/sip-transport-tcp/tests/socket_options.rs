//! DSCP marking and TCP keepalive as the kernel sees them on a transport's real sockets: the
//! listener, the connection it accepted and the one a client transport dialed, read back
//! through `ss` (Linux). Server and client get different marks and keepalive idle times, so
//! each socket shows whose settings it carries.

#![cfg(target_os = "linux")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use sip_transport_api::{Destination, Dscp, Error, Transport};
use sip_transport_tcp::{TcpConfig, TcpKeepaliveConfig, TcpTransport};
use sip_transport_testkit::ss::{Expected, check_stream_sockets};

fn keepalive(idle_secs: u64) -> Option<TcpKeepaliveConfig> {
    Some(
        TcpKeepaliveConfig::new()
            .with_idle(Duration::from_secs(idle_secs))
            .with_interval(Duration::from_secs(5))
            .with_retries(3),
    )
}

/// Binds a server with `server`, a client with `client`, sends one request from the client to
/// the server (a dial and an accept) and waits until the server has it.
async fn connect(
    bind: SocketAddr,
    server: TcpConfig,
    client: TcpConfig,
) -> (std::sync::Arc<TcpTransport>, std::sync::Arc<TcpTransport>) {
    let (srv, mut srx) = TcpTransport::bind(server.with_bind(bind))
        .await
        .expect("server");
    let (cli, _crx) = TcpTransport::bind(client).await.expect("client");
    let to: SocketAddr = (std::net::Ipv4Addr::LOCALHOST, srv.local_addr().port()).into();
    cli.send_message(&options(to, 1), &Destination::new(to))
        .await
        .expect("send");
    next_message(&mut srx).await;
    (srv, cli)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dscp_and_keepalive_on_listener_accepted_and_dialed_sockets() {
    let server = TcpConfig::default()
        .with_dscp(Some(Dscp::CS3))
        .with_tcp_keepalive(keepalive(40));
    let client = TcpConfig::client()
        .with_dscp(Some(Dscp::EF))
        .with_tcp_keepalive(keepalive(50));
    let (srv, cli) = connect(loopback(), server, client).await;
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
async fn dual_stack_listener_marks_ipv4_peers() {
    // `[::]`: the listener and its accepted sockets are IPv6 sockets; an IPv4 client's
    // packets are marked by IP_TOS, IPv6 ones by IPV6_TCLASS: both must be set.
    let server = TcpConfig::default()
        .with_dscp(Some(Dscp::CS3))
        .with_tcp_keepalive(keepalive(40));
    let Ok((srv, _rx)) =
        TcpTransport::bind(server.clone().with_bind("[::]:0".parse().expect("addr"))).await
    else {
        eprintln!("*** SKIPPED: no IPv6 here ***");
        return;
    };
    srv.close().await;
    let (srv, cli) = connect(
        "[::]:0".parse().expect("addr"),
        server,
        TcpConfig::client().with_dscp(Some(Dscp::EF)),
    )
    .await;
    // The client keeps the default keepalive: on, with the OS's timing.
    let os_idle = sip_transport_testkit::ss::os_keepalive_idle_secs();
    check_stream_sockets(
        srv.local_addr(),
        Expected::no_keepalive(0x60),
        Expected::keepalive(0x60, 40),
        Expected::keepalive(0xb8, os_idle),
    );
    srv.close().await;
    cli.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_mark_nothing_and_keepalive_can_be_switched_off() {
    let (srv, cli) = connect(
        loopback(),
        TcpConfig::default(),
        TcpConfig::client().with_tcp_keepalive(None),
    )
    .await;
    let os_idle = Duration::from_secs(sip_transport_testkit::ss::os_keepalive_idle_secs());
    let server = Expected {
        tos: 0,
        keepalive_at_most: Some(os_idle),
    };
    let off = Expected {
        tos: 0,
        keepalive_at_most: None,
    };
    check_stream_sockets(srv.local_addr(), server, server, off);
    srv.close().await;
    cli.close().await;
}

#[tokio::test]
async fn keepalive_timing_out_of_bounds_is_a_config_error() {
    let config = TcpConfig::default()
        .with_bind(loopback())
        .with_tcp_keepalive(Some(TcpKeepaliveConfig::new().with_retries(0)));
    let e = TcpTransport::bind(config).await.expect_err("refused");
    assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
}
