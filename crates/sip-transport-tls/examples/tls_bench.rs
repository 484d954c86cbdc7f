//! Loopback TLS measurements for `TlsTransport` (client and server in this one process, so
//! the figures include both sides' CPU):
//!
//! 1. full handshakes per second: a plain tokio-rustls client (session resumption disabled)
//!    opens a new TCP connection for each handshake against a `TlsTransport` listener, with a
//!    few handshakes in flight at once;
//! 2. messages per second over one TLS connection: a `TlsTransport` client keeps a window of
//!    OPTIONS in flight to a `TlsTransport` stateless responder that answers each with a 200
//!    (pipelined echo), and the same over `TcpTransport` as the baseline.
//!
//! ```text
//! cargo run --release -p sip-transport-tls --example tls_bench -- \
//!     [--handshakes 2000] [--concurrency 4] [--messages 100000] [--window 256]
//! ```
//! Certificates are generated at start (ECDSA P-256, rcgen). The crypto provider is the
//! crate's default (ring unless built with `--features aws-lc-rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_transport_api::{Destination, Message, Transport, TransportEvent};
use sip_transport_tcp::{TcpConfig, TcpTransport};
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::echo::{self, EchoMode};
use sip_transport_tls::rustls;
use sip_transport_tls::{PemSource, TlsConfig, TlsTransport};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

struct Args {
    handshakes: usize,
    concurrency: usize,
    messages: u64,
    window: u64,
}

fn args() -> Args {
    let mut a = Args {
        handshakes: 2_000,
        concurrency: 4,
        messages: 100_000,
        window: 256,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).and_then(|v| v.parse::<u64>().ok());
        match (pair[0].as_str(), v) {
            ("--handshakes", Some(v)) => a.handshakes = v as usize,
            ("--concurrency", Some(v)) => a.concurrency = (v as usize).max(1),
            ("--messages", Some(v)) => a.messages = v,
            ("--window", Some(v)) => a.window = v.max(1),
            _ => {
                eprintln!(
                    "usage: tls_bench [--handshakes N] [--concurrency N] [--messages N] [--window N]"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// A stateless responder: answers every request with 200 over its flow.
fn spawn_uas<T: Transport>(t: Arc<T>, rx: mpsc::Receiver<TransportEvent>) {
    tokio::spawn(echo::serve_events(t, rx, EchoMode::Respond));
}

async fn handshake_rate(pki: &TestPki, n: usize, concurrency: usize) {
    let (srv, rx) = TlsTransport::bind(
        TlsConfig::default()
            .with_bind(loopback())
            .with_certificate_pem(&pki.server.cert_pem, &pki.server.key_pem),
    )
    .await
    .expect("bind");
    spawn_uas(Arc::clone(&srv), rx);
    let addr = srv.local_addr();
    let mut client = (*TlsConfig::client()
        .with_server_ca(PemSource::memory(&pki.ca_cert_pem))
        .build_client_config()
        .expect("client config"))
    .clone();
    client.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");

    let per_task = n.div_ceil(concurrency);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let connector = connector.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut kinds = (0usize, 0usize);
            for _ in 0..per_task {
                let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
                tcp.set_nodelay(true).expect("nodelay");
                let mut tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .expect("handshake");
                let (_, session) = tls.get_ref();
                match session.handshake_kind() {
                    Some(rustls::HandshakeKind::Full) => kinds.0 += 1,
                    _ => kinds.1 += 1,
                }
                let _ = tls.shutdown().await;
            }
            kinds
        }));
    }
    let (mut full, mut other) = (0, 0);
    for t in tasks {
        let (f, o) = t.await.expect("task");
        full += f;
        other += o;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = full + other;
    println!(
        "handshakes: {total} new TLS connections ({full} full, {other} other) in {secs:.2} s \
         = {:.0} handshakes/s ({concurrency} in flight; client and server in one process)",
        total as f64 / secs
    );
    // Let the server notice the closes before it goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    srv.close().await;
}

fn request(n: u64) -> Message {
    sip_transport_testkit::options_request("sip:bench@localhost", "TLS", "127.0.0.1:9", n)
}

/// Keeps `window` requests in flight over one connection until `total` responses came back.
async fn pipelined<T: Transport>(
    label: &str,
    cli: Arc<T>,
    mut rx: mpsc::Receiver<TransportEvent>,
    dest: Destination,
    total: u64,
    window: u64,
) {
    // Warm up: open the connection.
    cli.send_message(&request(0), &dest).await.expect("warm-up");
    loop {
        if let Some(TransportEvent::Message(_)) = rx.recv().await {
            break;
        }
    }
    let start = Instant::now();
    let mut sent = 0u64;
    let mut got = 0u64;
    while got < total {
        while sent < total && sent - got < window {
            sent += 1;
            cli.send_message(&request(sent), &dest).await.expect("send");
        }
        match rx.recv().await.expect("events") {
            TransportEvent::Message(m) if m.message.status_code() == Some(200) => got += 1,
            TransportEvent::Error { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = cli.stats();
    println!(
        "{label}: {total} OPTIONS/200 transactions over {} connection(s) in {secs:.2} s \
         = {:.0} transactions/s = {:.0} messages/s (window {window})",
        stats.connections_dialed,
        total as f64 / secs,
        2.0 * total as f64 / secs
    );
}

async fn message_rate(pki: &TestPki, total: u64, window: u64) {
    let limits = sip_transport_api::Limits::default()
        .with_write_queue_depth(window as usize * 2)
        .with_event_queue_depth(window as usize * 4);
    let (srv, srx) = TlsTransport::bind(
        TlsConfig::default()
            .with_bind(loopback())
            .with_limits(limits.clone())
            .with_certificate_pem(&pki.server.cert_pem, &pki.server.key_pem),
    )
    .await
    .expect("bind");
    spawn_uas(Arc::clone(&srv), srx);
    let (cli, crx) = TlsTransport::bind(
        TlsConfig::client()
            .with_limits(limits.clone())
            .with_server_ca(PemSource::memory(&pki.ca_cert_pem)),
    )
    .await
    .expect("client");
    let dest = Destination::new(srv.local_addr()).with_server_name("localhost");
    pipelined("tls", Arc::clone(&cli), crx, dest, total, window).await;
    cli.close().await;
    srv.close().await;

    let (srv, srx) = TcpTransport::bind(
        TcpConfig::default()
            .with_bind(loopback())
            .with_limits(limits.clone()),
    )
    .await
    .expect("bind tcp");
    spawn_uas(Arc::clone(&srv), srx);
    let (cli, crx) = TcpTransport::bind(TcpConfig::client().with_limits(limits))
        .await
        .expect("tcp client");
    let dest = Destination::new(srv.local_addr());
    pipelined("tcp (baseline)", Arc::clone(&cli), crx, dest, total, window).await;
    cli.close().await;
    srv.close().await;
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pki = TestPki::generate();
        handshake_rate(&pki, a.handshakes, a.concurrency).await;
        message_rate(&pki, a.messages, a.window).await;
    });
}
