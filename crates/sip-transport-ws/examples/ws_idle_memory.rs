//! Memory held per idle WebSocket connection on the server side: a `WsTransport` listener in
//! this process, N idle `ws` (or `wss`) clients in a child process (raw tungstenite, each
//! upgraded with `sip`), and the server's VmRSS growth divided by N.
//!
//! ```sh
//! cargo run --release -p sip-transport-ws --example ws_idle_memory -- [N] [ws|wss] [exchange]
//! ```
//!
//! With `exchange`, each client first sends one OPTIONS and reads its 200 (so every
//! connection has read and written once) before idling.
//!
//! N defaults to 10,000 (needs `ulimit -n` above N in both processes). The budget the project
//! set is about 25 kB per idle `ws` connection.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::{Limits, Transport};
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::echo::{self, EchoMode, rss_kib};
use sip_transport_ws::{WsConfig, WsTransport};

/// The `wss` listener's rustls configuration, built by the TLS crate (provider `ring`).
fn server_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    sip_transport_tls::TlsConfig::default()
        .with_certificate_pem(&pki.server.cert_pem, &pki.server.key_pem)
        .build_server_config()
        .expect("server config")
        .expect("a server identity is set")
}

fn options(n: usize) -> tokio_tungstenite::tungstenite::Message {
    let m = sip_transport_testkit::options_request(
        "sip:idle@127.0.0.1;transport=ws",
        "WS",
        "idle.invalid",
        n as u64,
    );
    let text = String::from_utf8(m.as_bytes().to_vec()).expect("utf-8");
    tokio_tungstenite::tungstenite::Message::text(text)
}

/// Child: opens `n` idle connections to `port`, says "ready", holds them until stdin closes.
async fn client(port: u16, n: usize, secure: bool, ca_pem: Option<String>, exchange: bool) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let tls = ca_pem.map(|pem| {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(c.expect("cert")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    });
    let mut held = Vec::with_capacity(n);
    let mut held_tls = Vec::new();
    for _ in 0..n {
        let mut req = format!("ws://localhost:{port}/")
            .into_client_request()
            .expect("request");
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse().expect("value"));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        if secure {
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let s = tls
                .as_ref()
                .expect("tls")
                .connect(name, tcp)
                .await
                .expect("tls");
            let (mut ws, _) = tokio_tungstenite::client_async(req, s)
                .await
                .expect("upgrade");
            if exchange {
                ws.send(options(held_tls.len())).await.expect("send");
                ws.next().await.expect("answer").expect("ok");
            }
            held_tls.push(ws);
        } else {
            let (mut ws, _) = tokio_tungstenite::client_async(req, tcp)
                .await
                .expect("upgrade");
            if exchange {
                ws.send(options(held.len())).await.expect("send");
                ws.next().await.expect("answer").expect("ok");
            }
            held.push(ws);
        }
    }
    println!("ready");
    let _ = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
    })
    .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        let port = args[1].parse().expect("port");
        let n = args[2].parse().expect("n");
        let secure = args[3] == "wss";
        let ca = secure.then(|| std::fs::read_to_string(&args[4]).expect("CA file"));
        let exchange = args.get(5).map(String::as_str) == Some("exchange");
        client(port, n, secure, ca, exchange).await;
        return;
    }
    let n: usize = args
        .first()
        .map(|a| a.parse().expect("N"))
        .unwrap_or(10_000);
    let secure = args.get(1).map(String::as_str) == Some("wss");
    let exchange = args.get(2).map(String::as_str) == Some("exchange");
    let pki = TestPki::generate();
    let limits = Limits::default()
        .with_max_connections(n + 100)
        .with_max_connections_per_ip(n + 100);
    let mut config = WsConfig::default().with_limits(limits);
    if secure {
        config = config.with_server_tls(server_config(&pki));
    }
    let (t, events) = WsTransport::bind(config).expect("bind");
    tokio::spawn(echo::serve_events(t.clone(), events, EchoMode::Respond));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib().unwrap_or(0);
    let exe = std::env::current_exe().expect("exe");
    let mut child = Command::new(exe)
        .args(["client", &t.local_addr().port().to_string(), &n.to_string()])
        .arg(if secure { "wss" } else { "ws" })
        .arg(&pki.ca_cert_path)
        .arg(if exchange { "exchange" } else { "idle" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let stdout = child.stdout.take().expect("stdout");
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    })
    .await
    .expect("read");
    assert_eq!(ready.trim(), "ready", "client failed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flows = t.flows().len();
    let after = rss_kib().unwrap_or(0);
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        "{} idle {} connections{}: server VmRSS {} kB -> {} kB, {:.1} kB per connection ({} flows open)",
        n,
        if secure { "wss" } else { "ws" },
        if exchange {
            " (after one OPTIONS/200 each)"
        } else {
            ""
        },
        before,
        after,
        per / 1000.0,
        flows
    );
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"\n");
    }
    let _ = child.wait();
    t.close().await;
}
