//! A stateless SIP responder on `ws` and `wss` (200 OK to every request but ACK, over the
//! request's flow), for trying peers such as `shared/peers/ws_options.py` or a browser by hand.
//!
//! ```sh
//! cargo run --release -p sip-transport-ws --example ws_responder -- [WS_ADDR] [WSS_ADDR]
//! python3 ../shared/peers/ws_options.py ws://127.0.0.1:8082 --count 1000
//! python3 ../shared/peers/ws_options.py wss://localhost:8083 --cafile <printed CA path> --count 1000
//! ```
//!
//! Defaults `127.0.0.1:8082` and `127.0.0.1:8083`. The `wss` certificate comes from a fresh
//! test PKI (the testkit's); the CA file to trust is printed. Stops after 10 minutes or on
//! Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::Transport;
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::echo::{self, EchoMode};
use sip_transport_ws::{WsConfig, WsTransport};

fn serve(config: WsConfig) -> Arc<WsTransport> {
    let (t, events) = WsTransport::bind(config).expect("bind");
    tokio::spawn(echo::serve_events(t.clone(), events, EchoMode::Respond));
    t
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let ws_addr = args.next().unwrap_or_else(|| "127.0.0.1:8082".into());
    let wss_addr = args.next().unwrap_or_else(|| "127.0.0.1:8083".into());
    let pki = TestPki::generate();
    let server_tls = sip_transport_tls::TlsConfig::default()
        .with_certificate_pem(&pki.server.cert_pem, &pki.server.key_pem)
        .build_server_config()
        .expect("server config")
        .expect("a server identity is set");
    let ws = serve(WsConfig::new(ws_addr.parse().expect("ws address")));
    let wss =
        serve(WsConfig::new(wss_addr.parse().expect("wss address")).with_server_tls(server_tls));
    println!("listening ws {}", ws.local_addr());
    println!(
        "listening wss {} (trust {})",
        wss.local_addr(),
        pki.ca_cert_path.display()
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = tokio::time::sleep(Duration::from_secs(600)) => {}
    }
    ws.close().await;
    wss.close().await;
    let s = ws.stats();
    println!(
        "ws: {} received, {} sent; wss: {} received",
        s.messages_received,
        s.messages_sent,
        wss.stats().messages_received
    );
}
