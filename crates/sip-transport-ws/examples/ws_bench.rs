//! Loopback benchmark of `WsTransport`: OPTIONS transactions per second over one pipelined
//! `ws` and one `wss` connection (client and stateless responder in this process), and the
//! `ws`/`wss` handshake rate (TCP + TLS + WebSocket upgrade, our client to our server).
//!
//! ```sh
//! cargo run --release -p sip-transport-ws --example ws_bench -- [MESSAGES] [WINDOW] [HANDSHAKES]
//! ```
//!
//! Defaults: 200,000 messages with 256 in flight, 2,000 handshakes with 16 at once. CPU is the
//! process's user+system time (client and server together), read from `/proc/self/stat`.
//!
//! `WS_BENCH_PEER=ws://127.0.0.1:8072` (or `wss://localhost:8073` with `WS_BENCH_CA=cert.pem`)
//! runs only the throughput part, with our client against that server (e.g. Kamailio); CPU is
//! then the client's alone.

use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::{Destination, Limits, Transport, TransportEvent};
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::echo::{self, EchoMode, Stopwatch};
use sip_transport_testkit::options_request;
use sip_transport_ws::{ClientTls, WsConfig, WsScheme, WsTransport};
use tokio::sync::Semaphore;

/// The `wss` listener's rustls configuration, built by the TLS crate (provider `ring`).
fn server_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    sip_transport_tls::TlsConfig::default()
        .with_certificate_pem(&pki.server.cert_pem, &pki.server.key_pem)
        .build_server_config()
        .expect("server config")
        .expect("a server identity is set")
}

fn limits() -> Limits {
    Limits::default()
        .with_max_connections(100_000)
        .with_max_connections_per_ip(100_000)
        .with_write_queue_depth(4_096)
}

/// A stateless responder: 200 OK to every request, over its flow.
fn serve(config: WsConfig) -> Arc<WsTransport> {
    let (t, events) = WsTransport::bind(config.with_limits(limits())).expect("bind server");
    tokio::spawn(echo::serve_events(t.clone(), events, EchoMode::Respond));
    t
}

async fn throughput(
    label: &str,
    client_cfg: WsConfig,
    dest: Destination,
    scheme: WsScheme,
    n: u64,
    window: usize,
) {
    let (client, mut events) =
        WsTransport::bind(client_cfg.with_limits(limits())).expect("bind client");
    // Open the connection first so the handshake is not in the figure.
    client.connect(&dest, scheme).await.expect("connect");
    let reqs: Vec<_> = (0..n)
        .map(|i| options_request("sip:bench@127.0.0.1;transport=ws", "WS", "bench.invalid", i))
        .collect();
    let credits = Arc::new(Semaphore::new(window));
    let sender = {
        let client = client.clone();
        let credits = credits.clone();
        let dest = dest.clone();
        tokio::spawn(async move {
            for r in reqs {
                credits.acquire().await.expect("open").forget();
                let mut tries = 0;
                while let Err(e) = client.send_message_via(&r, &dest, scheme).await {
                    tries += 1;
                    assert!(tries < 1_000 && e.is_recoverable(), "send: {e}");
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let clock = Stopwatch::start();
    let mut got = 0u64;
    while got < n {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(TransportEvent::Message(m))) if m.message.is_response() => {
                got += 1;
                credits.add_permits(1);
            }
            Ok(Some(_)) => {}
            other => panic!("{label}: stalled after {got} responses: {other:?}"),
        }
    }
    let secs = clock.elapsed_secs();
    let cpu = clock.cpu_secs().unwrap_or(0.0);
    sender.await.expect("sender");
    println!(
        "{label}: {n} OPTIONS/200 transactions over one connection, window {window}: {:.0} tx/s, {:.2} s, CPU {:.1} µs/tx (this process)",
        n as f64 / secs,
        secs,
        cpu * 1e6 / n as f64
    );
    client.close().await;
}

async fn handshakes(
    label: &str,
    client_cfg: WsConfig,
    addr: std::net::SocketAddr,
    name: Option<&str>,
    scheme: WsScheme,
    n: usize,
) {
    let (client, _events) =
        WsTransport::bind(client_cfg.with_limits(limits())).expect("bind client");
    let concurrency = Arc::new(Semaphore::new(16));
    let clock = Stopwatch::start();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = concurrency.clone().acquire_owned().await.expect("open");
        let client = client.clone();
        // A distinct resource per dial, so none reuses an open flow.
        let mut dest = Destination::new(addr).with_resource(format!("/h{i}"));
        if let Some(name) = name {
            dest = dest.with_server_name(name);
        }
        tasks.push(tokio::spawn(async move {
            let r = client.connect(&dest, scheme).await;
            drop(permit);
            r.expect("handshake");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs = clock.elapsed_secs();
    let cpu = clock.cpu_secs().unwrap_or(0.0);
    println!(
        "{label}: {n} handshakes, 16 at once: {:.0} handshakes/s, CPU {:.0} µs/handshake (this process: client+server)",
        n as f64 / secs,
        cpu * 1e6 / n as f64
    );
    client.close().await;
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("a number"));
    let n = args.next().unwrap_or(200_000);
    let window = args.next().unwrap_or(256) as usize;
    let hs = args.next().unwrap_or(2_000) as usize;

    if let Ok(peer) = std::env::var("WS_BENCH_PEER") {
        let (scheme, rest) = match peer.split_once("://") {
            Some(("wss", rest)) => (WsScheme::Wss, rest),
            Some(("ws", rest)) => (WsScheme::Ws, rest),
            _ => panic!("WS_BENCH_PEER must be ws://HOST:PORT or wss://HOST:PORT"),
        };
        let (host, port) = rest.rsplit_once(':').expect("HOST:PORT");
        let addr = tokio::net::lookup_host((host, port.parse::<u16>().expect("port")))
            .await
            .expect("resolve")
            .next()
            .expect("an address");
        let dest = Destination::new(addr).with_server_name(host);
        let mut cfg = WsConfig::default();
        if let Ok(ca) = std::env::var("WS_BENCH_CA") {
            cfg = cfg.with_ca_file(ca);
        }
        throughput(&peer, cfg, dest, scheme, n, window).await;
        return;
    }
    let pki = TestPki::generate();
    let ws = serve(WsConfig::default());
    let wss = serve(WsConfig::default().with_server_tls(server_config(&pki)));
    let ca = || {
        WsConfig::default().with_client_tls(ClientTls::CaPem(pki.ca_cert_pem.clone().into_bytes()))
    };

    let ws_dest = Destination::new(ws.local_addr());
    let wss_dest = Destination::new(wss.local_addr()).with_server_name("localhost");
    throughput("ws ", WsConfig::default(), ws_dest, WsScheme::Ws, n, window).await;
    throughput("wss", ca(), wss_dest, WsScheme::Wss, n, window).await;
    handshakes(
        "ws ",
        WsConfig::default(),
        ws.local_addr(),
        None,
        WsScheme::Ws,
        hs,
    )
    .await;
    handshakes(
        "wss",
        ca(),
        wss.local_addr(),
        Some("localhost"),
        WsScheme::Wss,
        hs,
    )
    .await;
    ws.close().await;
    wss.close().await;
}
