//! Interop with independent WebSocket SIP implementations, on loopback:
//! - Kamailio's websocket module (`kamailio-tls-ws`: ws on 8072, wss on 8073) answers our
//!   OPTIONS with 200 over `ws` and `wss` (its self-signed certificate trusted as the CA);
//! - `shared/peers/ws_options.py`, a standard-library Python client, sends 100 OPTIONS to our
//!   stateless responder over `ws` and `wss` and must exit 0.
//!
//! Missing peers skip loudly, and fail under `CI=true` (the testkit's policy).

mod support;

use std::process::Stdio;
use std::time::Duration;

use sip_transport_api::{Destination, Transport};
use sip_transport_testkit::{Kamailio, options_request, require_program, require_shared};
use sip_transport_ws::{WsConfig, WsScheme};
use support::*;

fn kamailio_options(port: u16, transport: &str, n: u64) -> sip_transport_api::Message {
    options_request(
        &format!("sip:ping@127.0.0.1:{port};transport=ws"),
        transport,
        "k2h7s9qxw1.invalid",
        n,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_answers_options_over_ws_and_wss() {
    let Some(kam) = Kamailio::start("kamailio-tls-ws") else {
        return;
    };
    let ca = kam.run_dir().join("cert.pem");
    let (t, mut events) = bind(WsConfig::default().with_ca_file(&ca));

    let ws = Destination::new("127.0.0.1:8072".parse().expect("addr"));
    let req = kamailio_options(8072, "WS", 1);
    t.send_message_via(&req, &ws, WsScheme::Ws)
        .await
        .expect("send over ws");
    let resp = next_message(&mut events).await;
    assert_eq!(resp.message.status_code(), Some(200), "{:?}", resp.message);
    assert_eq!(resp.message.call_id(), req.call_id());

    for (n, name) in [(2, Some("localhost")), (3, None)] {
        let mut wss = Destination::new("127.0.0.1:8073".parse().expect("addr"));
        if let Some(name) = name {
            wss = wss.with_server_name(name);
        }
        let req = kamailio_options(8073, "WSS", n);
        t.send_message_via(&req, &wss, WsScheme::Wss)
            .await
            .expect("send over wss");
        let resp = next_message(&mut events).await;
        assert_eq!(resp.message.status_code(), Some(200));
        assert_eq!(resp.message.call_id(), req.call_id());
        assert_eq!(resp.kind, sip_transport_api::TransportKind::Wss);
    }
    t.close().await;
    drop(kam);
}

/// Runs `ws_options.py URL --count 100 [extra]` and returns its exit code and output.
async fn ws_options_py(url: &str, extra: &[&str]) -> Option<(Option<i32>, String)> {
    let python = require_program("python3")?;
    let script = require_shared("peers/ws_options.py")?;
    let child = tokio::process::Command::new(python)
        .arg(script)
        .arg(url)
        .args(["--count", "100", "--timeout", "5"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python3");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("ws_options.py finished in time")
        .expect("ws_options.py ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.code(), text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ws_client_gets_100_answers_over_ws() {
    let (t, events) = bind(WsConfig::default());
    let (_seen, _task) = respond(t.clone(), events);
    let url = format!("ws://{}", t.local_addr());
    let Some((code, out)) = ws_options_py(&url, &[]).await else {
        return;
    };
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("count=100 non2xx=0"), "{out}");
    assert_eq!(t.stats().messages_received, 100);
    assert_eq!(t.stats().messages_sent, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ws_client_gets_100_answers_over_wss() {
    let cert = test_cert();
    let (t, events) = bind(WsConfig::default().with_server_tls(cert.server.clone()));
    let (_seen, _task) = respond(t.clone(), events);
    let url = format!("wss://localhost:{}", t.local_addr().port());
    let ca = cert.pki.ca_cert_path.to_string_lossy().into_owned();
    let Some((code, out)) = ws_options_py(&url, &["--cafile", &ca]).await else {
        return;
    };
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("count=100 non2xx=0"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ws_client_without_sip_is_refused() {
    let (t, _events) = bind(WsConfig::default());
    let url = format!("ws://{}", t.local_addr());
    let Some((code, out)) = ws_options_py(&url, &["--subprotocol", ""]).await else {
        return;
    };
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("400"), "{out}");
}
