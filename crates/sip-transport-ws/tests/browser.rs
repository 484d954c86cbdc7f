//! A real browser client: JsSIP in headless Chromium (Debian's `/usr/bin/chromium`, driven by
//! playwright-core from `tests/browser/harness.js`) connects to our `ws` and `wss` listeners,
//! sends OPTIONS and MESSAGE and REGISTERs; every answer must be a 200.
//!
//! Needs `node`, `chromium` and `npm ci` run in `tests/browser/` (its `node_modules`). When
//! any is missing the test skips loudly, and fails under `CI=true` (the testkit's policy).

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sip_transport_api::{Message, Transport, TransportEvent, TransportKind};
use sip_transport_testkit::{in_ci, ok_response, require_program};
use sip_transport_ws::{WsConfig, WsTransport};
use support::*;
use tokio::sync::mpsc;

/// The harness folder with its npm packages installed, or a skip/fail per the policy.
fn harness_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let missing: Vec<_> = ["jssip", "playwright-core", "esbuild"]
        .into_iter()
        .filter(|p| !dir.join("node_modules").join(p).is_dir())
        .collect();
    if missing.is_empty() {
        return Some(dir);
    }
    let what = format!(
        "npm packages {missing:?} in {} (run `npm ci` there)",
        dir.display()
    );
    if in_ci() {
        panic!("required test peer or file missing under CI: {what}; run `cargo xtask deps`");
    }
    eprintln!("\n*** SKIPPED: {what} is not available; run `cargo xtask deps` to install it ***\n");
    None
}

/// What the responder saw: method, transport kind, Via transport token.
type Seen = (String, TransportKind, String);

/// 200 to every request; for REGISTER the Contact is echoed (JsSIP ignores a 200 without the
/// Contact it registered, RFC 3261 §10.3 step 8).
fn answer(req: &Message) -> Message {
    let ok = ok_response(req);
    if req.method() != Some("REGISTER") {
        return ok;
    }
    let contacts: String = req
        .headers_named("Contact")
        .filter_map(|h| h.value().map(str::to_owned))
        .map(|c| format!("Contact: {c}\r\n"))
        .collect();
    let text = String::from_utf8_lossy(ok.as_bytes()).replacen(
        "Content-Length: 0\r\n",
        &format!("{contacts}Content-Length: 0\r\n"),
        1,
    );
    Message::parse(Bytes::from(text)).expect("valid 200 to REGISTER")
}

fn serve(config: WsConfig, seen: mpsc::UnboundedSender<Seen>) -> Arc<WsTransport> {
    let (t, mut events) = bind(config);
    let server = t.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                TransportEvent::Message(m) if m.message.is_request() => {
                    let via = m
                        .message
                        .top_via()
                        .map(|v| v.transport().to_owned())
                        .unwrap_or_default();
                    let method = m.message.method().unwrap_or("").to_owned();
                    let _ = seen.send((method, m.kind, via));
                    if let Err(e) = server.send_response(&answer(&m.message), m.flow).await {
                        eprintln!("responder: {e}");
                    }
                }
                TransportEvent::Closed => break,
                _ => {}
            }
        }
    });
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssip_in_chromium_gets_200s_over_ws_and_wss() {
    let Some(dir) = harness_dir() else { return };
    let Some(node) = require_program("node") else {
        return;
    };
    let Some(chromium) = require_program("chromium") else {
        return;
    };
    let cert = test_cert();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let ws = serve(WsConfig::default(), seen_tx.clone());
    let wss = serve(
        WsConfig::default().with_server_tls(cert.server.clone()),
        seen_tx,
    );
    let child = tokio::process::Command::new(node)
        .arg(dir.join("harness.js"))
        .arg(format!("ws://127.0.0.1:{}", ws.local_addr().port()))
        .arg(format!("wss://localhost:{}", wss.local_addr().port()))
        .env("CHROMIUM", chromium)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the browser harness finished in time")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "harness failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"options\":200"), "{stdout}");
    assert!(stdout.contains("Chrome/"), "{stdout}");

    let mut got = Vec::new();
    while let Ok(s) = seen.try_recv() {
        got.push(s);
    }
    for (kind, token) in [(TransportKind::Ws, "WS"), (TransportKind::Wss, "WSS")] {
        for method in ["OPTIONS", "MESSAGE", "REGISTER"] {
            assert!(
                got.iter()
                    .any(|(m, k, v)| m == method && *k == kind && v == token),
                "no {method} over {kind} with Via {token} in {got:?}"
            );
        }
    }
    ws.close().await;
    wss.close().await;
}
