//! Scale-out behind a real HAProxy (Debian's `haproxy` package): two `sipt serve --proxy-protocol`
//! backends behind one `mode tcp` frontend with `send-proxy-v2` and health checks, all on
//! loopback with ephemeral ports, every process killed by its PID at the end.
//!
//! Checks: SIPp completes 5,000 OPTIONS through HAProxy with no failure, ws and TLS behind
//! it answer, both backends take traffic, the 200s carry the client's real address (not HAProxy's) in `received`/`rport`,
//! and with one backend killed the traffic goes on through the other.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_transport::tcp::{TcpConfig, TcpTransport};
use sip_transport::{Destination, Transport, TransportEvent};
use sip_transport_testkit::{SippTransport, require_program, sipp_options_uac};

mod common;

use common::{SIPT, Server, summary_field};
/// HAProxy connects to the backends from this address, so it differs from every client's.
const HAPROXY_SOURCE: &str = "127.0.0.3";

/// A `sipt serve` backend with PROXY protocol on its tcp, tls and ws listeners.
fn backend() -> Server {
    Server::start(
        &["tcp:127.0.0.1:0", "tls:127.0.0.1:0", "ws:127.0.0.1:0"],
        &["--quiet", "--workers", "1", "--proxy-protocol"],
    )
}

/// HAProxy in the foreground (`-db`), killed by its PID when dropped, with its folder.
struct Haproxy {
    child: Child,
    frontend: SocketAddr,
    tls_frontend: SocketAddr,
    ws_frontend: SocketAddr,
    dir: PathBuf,
}

impl Haproxy {
    /// `backends`: (tcp, tls, ws) listeners. TLS is passed through (HAProxy never decrypts);
    /// WebSocket too (`mode tcp`: the PROXY header, then the HTTP upgrade).
    fn start(program: &Path, backends: &[(SocketAddr, SocketAddr, SocketAddr)]) -> Haproxy {
        let frontend = free_port();
        let tls_frontend = free_port();
        let ws_frontend = free_port();
        let dir = std::env::temp_dir().join(format!("sipt-haproxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut cfg = format!(
            "global\n    maxconn 2000\n\n\
             defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    \
             timeout server 60s\n    retries 3\n    option redispatch\n\n\
             frontend sip_tcp\n    bind {frontend}\n    default_backend sipt\n\n\
             frontend sip_tls\n    bind {tls_frontend}\n    default_backend sipt_tls\n\n\
             frontend sip_ws\n    bind {ws_frontend}\n    default_backend sipt_ws\n\n"
        );
        let opts = format!(
            "send-proxy-v2 check check-send-proxy inter 200ms fall 2 rise 1 source {HAPROXY_SOURCE}"
        );
        cfg += "backend sipt\n    balance roundrobin\n";
        for (i, (tcp, _, _)) in backends.iter().enumerate() {
            cfg += &format!("    server s{i} {tcp} {opts}\n");
        }
        cfg += "\nbackend sipt_tls\n    balance roundrobin\n";
        for (i, (_, tls, _)) in backends.iter().enumerate() {
            cfg += &format!("    server t{i} {tls} {opts}\n");
        }
        cfg += "\nbackend sipt_ws\n    balance roundrobin\n";
        for (i, (_, _, ws)) in backends.iter().enumerate() {
            cfg += &format!("    server w{i} {ws} {opts}\n");
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("write haproxy.cfg");
        let check = Command::new(program)
            .args(["-c", "-q", "-f"])
            .arg(&path)
            .output()
            .expect("haproxy -c");
        assert!(
            check.status.success(),
            "haproxy rejects its config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(program)
            .args(["-db", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn haproxy");
        let h = Haproxy {
            child,
            frontend,
            tls_frontend,
            ws_frontend,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&frontend, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {frontend}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        h
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn sipp_5000(target: SocketAddr, what: &str) {
    let Some(o) = sipp_options_uac(
        target,
        SippTransport::Tcp,
        5000,
        2500,
        Duration::from_secs(30),
    ) else {
        return;
    };
    assert_eq!(
        (o.exit_code, o.successful, o.failed),
        (Some(0), 5000, 0),
        "{what}:\n{}",
        o.screen
    );
}

/// Sends OPTIONS from a client bound to 127.0.0.2 with a Via sent-by of another address,
/// through HAProxy, and returns the 200's top Via `received`/`rport` and the client's port.
async fn received_through(frontend: SocketAddr) -> (Option<std::net::IpAddr>, Option<u16>, u16) {
    let cfg = TcpConfig::client().with_bind("127.0.0.2:0".parse().expect("addr"));
    let (client, mut rx) = TcpTransport::bind(cfg).await.expect("client");
    let req = sip_transport_testkit::options_request(
        &format!("sip:{frontend};transport=tcp"),
        "TCP",
        "192.0.2.99:5999",
        1,
    );
    client
        .send_message(&req, &Destination::new(frontend))
        .await
        .expect("send");
    let m = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await.expect("events") {
                TransportEvent::Message(m) if m.message.is_response() => return m,
                _ => {}
            }
        }
    })
    .await
    .expect("200 in time");
    assert_eq!(m.message.status_code(), Some(200));
    let via = m.message.top_via().expect("via");
    let out = (via.received(), via.rport().flatten(), m.local.port());
    client.close().await;
    out
}

/// `sipt ping` of `uri`, 4 times: exit 0 and four 200s.
fn four_pings_answered(uri: &str, extra: &[&str]) {
    let out = Command::new(SIPT)
        .args(["ping", uri, "--count", "4", "--interval", "10"])
        .args(extra)
        .output()
        .expect("sipt ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{uri}: {text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("200 OK")).count(),
        4,
        "{uri}: {text}"
    );
}

#[test]
fn two_backends_behind_haproxy() {
    let Some(haproxy) = require_program("haproxy") else {
        return;
    };
    let a = backend();
    let b = backend();
    let lb = Haproxy::start(
        &haproxy,
        &[
            (a.addr("tcp"), a.addr("tls"), a.addr("ws")),
            (b.addr("tcp"), b.addr("tls"), b.addr("ws")),
        ],
    );

    // WebSocket behind the balancer: the PROXY header, then the upgrade; both backends answer.
    four_pings_answered(&format!("sip:{};transport=ws", lb.ws_frontend), &[]);
    // TLS passthrough: the PROXY header comes before the ClientHello; both backends answer.
    four_pings_answered(
        &format!("sip:{};transport=tls", lb.tls_frontend),
        &["--insecure"],
    );

    // The client's real address, not HAProxy's (127.0.0.3), lands in the Via.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (received, rport, client_port) = rt.block_on(received_through(lb.frontend));
    assert_eq!(received, Some("127.0.0.2".parse().expect("ip")));
    assert_eq!(rport, Some(client_port));

    // SIPp over TCP uses one connection per run; round robin gives each run a backend.
    sipp_5000(lb.frontend, "first SIPp run");
    sipp_5000(lb.frontend, "second SIPp run");
    // And many connections at once through sipt bench.
    let out = Command::new(SIPT)
        .args(["bench", &format!("sip:{};transport=tcp", lb.frontend)])
        .args([
            "--connections",
            "8",
            "--requests",
            "4000",
            "--duration",
            "20",
            "--json",
        ])
        .output()
        .expect("sipt bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).expect("bench json");
    assert_eq!(v["ok"], 4000, "{last}");

    // One backend gone (SIGTERM by PID, which also gives us its counters): traffic goes on
    // through the other.
    let b_took = summary_field(&b.terminate(), "received");
    std::thread::sleep(Duration::from_millis(800)); // a few health-check intervals
    sipp_5000(lb.frontend, "SIPp run with one backend killed");
    let a_took = summary_field(&a.terminate(), "received");
    assert!(b_took > 0, "backend b took no traffic (a: {a_took})");
    assert!(
        a_took > 5000,
        "backend a took no traffic before b was killed ({a_took})"
    );
    // 4 ws pings + 4 TLS pings + 1 (received check) + 3 x 5,000 SIPp + 4,000 bench.
    assert!(a_took + b_took >= 19_009, "a {a_took} + b {b_took}");
    drop(lb);
}
