//! Test helpers shared by every sip-transport crate's tests (dev-dependency only).
//!
//! - where `../shared/` is (torture corpora, peer configs);
//! - the peer policy: a missing peer (SIPp, Kamailio, ...) skips a test loudly on a developer
//!   machine and fails it under CI (`CI=true`), so CI can never pass by skipping;
//! - launching SIPp and Kamailio on loopback and reading their results;
//! - building ordinary SIP requests;
//! - test certificates generated at run time ([`certs`]);
//! - a dnsmasq DNS server with given records, for RFC 3263 tests ([`Dnsmasq`]);
//! - a TCP address whose connects hang, for connect-timeout tests ([`SilentListener`]);
//! - the kernel's view of TCP sockets (`ss`): DSCP marks and keepalive timers ([`ss`]);
//! - the load-test examples' command line, CPU and memory clocks and echo/respond server
//!   loop ([`echo`]).
//!
//! Not a mock of anything: every helper drives a real program or builds real bytes.

pub mod certs;
mod dnsmasq;
pub mod echo;
pub mod events;
mod silent;
pub mod ss;

pub use dnsmasq::Dnsmasq;
pub use silent::SilentListener;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use sip_transport_api::Message;

/// True when running under CI (`CI=true`): missing peers are failures, not skips.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared folder (`SIP_SHARED_DIR`, else `<repo>/../shared`).
pub fn shared_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("SIP_SHARED_DIR") {
        return Some(PathBuf::from(d)).filter(|p| p.is_dir());
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = here.join("../../../shared");
    p.is_dir().then(|| p.canonicalize().unwrap_or(p))
}

/// `shared/<sub>`, or a skip/fail per the peer policy when it is missing.
pub fn require_shared(sub: &str) -> Option<PathBuf> {
    match shared_dir().map(|d| d.join(sub)).filter(|p| p.exists()) {
        Some(p) => Some(p),
        None => missing(&format!("shared/{sub} (set SIP_SHARED_DIR)")),
    }
}

fn missing<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("required test peer or file missing under CI: {what}; run `cargo xtask deps`");
    }
    eprintln!("\n*** SKIPPED: {what} is not available; run `cargo xtask deps` to install it ***\n");
    None
}

/// Finds a program on `PATH` (and in the sbin folders, where Debian puts daemons).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A program the test needs, per the peer policy.
pub fn require_program(name: &str) -> Option<PathBuf> {
    find_program(name).or_else(|| missing(&format!("program `{name}`")))
}

/// Serialises tests that use the same fixed-port peer inside one test binary.
pub fn peer_lock(name: &str) -> MutexGuard<'static, ()> {
    static KAM_SL: Mutex<()> = Mutex::new(());
    static KAM_TLS_WS: Mutex<()> = Mutex::new(());
    static OTHER: Mutex<()> = Mutex::new(());
    let m = match name {
        "kamailio-sl" => &KAM_SL,
        "kamailio-tls-ws" => &KAM_TLS_WS,
        _ => &OTHER,
    };
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A Kamailio peer from `shared/peers`, started with `kam.sh` and stopped on drop.
///
/// `kamailio-sl` answers OPTIONS with 200 on udp+tcp 127.0.0.1:5070; `kamailio-tls-ws` on
/// udp+tcp 5072, tls 5073, ws 8072, wss 8073.
pub struct Kamailio {
    script: PathBuf,
    cfg: PathBuf,
    _guard: MutexGuard<'static, ()>,
    /// Held for the peer's lifetime: other test processes wait for it (fixed ports).
    _file_lock: Option<std::fs::File>,
}

/// An exclusive lock shared by every process on this machine, released when the file drops.
fn machine_lock(name: &str) -> Option<std::fs::File> {
    let path = std::env::temp_dir().join(format!("sip-transport-peer-{name}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    f.lock().ok()?;
    Some(f)
}

impl Kamailio {
    /// Starts the named config (`kamailio-sl` or `kamailio-tls-ws`), or skips per the policy.
    pub fn start(name: &str) -> Option<Kamailio> {
        require_program("kamailio")?;
        let peers = require_shared("peers")?;
        let guard = peer_lock(name);
        let file_lock = machine_lock(name);
        let script = peers.join("kam.sh");
        let cfg = peers.join(format!("{name}.cfg"));
        // A previous run that crashed may have left one running; restart cleanly.
        let _ = Command::new("bash")
            .arg(&script)
            .arg("stop")
            .arg(&cfg)
            .output();
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(&cfg)
            .stdin(Stdio::null())
            .output()
            .expect("run kam.sh");
        assert!(
            out.status.success(),
            "kamailio {name} failed to start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Kamailio {
            script,
            cfg,
            _guard: guard,
            _file_lock: file_lock,
        })
    }

    /// The run folder (`/tmp/<name>`), where `kam.sh` keeps the log and TLS material.
    pub fn run_dir(&self) -> PathBuf {
        let name = self.cfg.file_stem().unwrap_or_default();
        Path::new("/tmp").join(name)
    }

    /// The PID of Kamailio's main process.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.run_dir().join("kamailio.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.cfg)
            .stdin(Stdio::null())
            .output();
    }
}

/// SIPp transport mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SippTransport {
    /// `-t u1`: one UDP socket.
    Udp,
    /// `-t t1`: one TCP connection.
    Tcp,
}

/// What a SIPp run reported.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    /// SIPp's exit code (0: every call succeeded).
    pub exit_code: Option<i32>,
    /// "Successful call" total from the final screen.
    pub successful: u64,
    /// "Failed call" total from the final screen.
    pub failed: u64,
    /// The final screen, for assertion messages.
    pub screen: String,
}

/// Runs SIPp's OPTIONS UAC scenario (`shared/peers/options-uac.xml`) against `target`:
/// `calls` transactions at up to `rate` per second, stopping after `timeout` at the latest.
pub fn sipp_options_uac(
    target: SocketAddr,
    transport: SippTransport,
    calls: u64,
    rate: u64,
    timeout: Duration,
) -> Option<SippOutcome> {
    let sipp = require_program("sipp")?;
    let scenario = require_shared("peers/options-uac.xml")?;
    let dir = std::env::temp_dir().join(format!(
        "sipt-sipp-{}-{}",
        std::process::id(),
        target.port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let screen = dir.join("screen.txt");
    let local = if target.is_ipv6() { "::1" } else { "127.0.0.1" };
    let t = match transport {
        SippTransport::Udp => "u1",
        SippTransport::Tcp => "t1",
    };
    let status = Command::new(sipp)
        .arg(target.to_string())
        .args(["-sf"])
        .arg(&scenario)
        .args([
            "-t",
            t,
            "-i",
            local,
            "-p",
            "0",
            "-nostdin",
            "-trace_screen",
            "-screen_file",
        ])
        .arg(&screen)
        .args([
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            "1000",
        ])
        .args([
            "-timeout",
            &format!("{}s", timeout.as_secs().max(1)),
            "-timeout_error",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run sipp");
    let text = std::fs::read_to_string(&screen).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Some(SippOutcome {
        exit_code: status.code(),
        successful: screen_total(&text, "Successful call"),
        failed: screen_total(&text, "Failed call"),
        screen: text,
    })
}

/// Reads the cumulative column of a SIPp statistics row (the last one on the screen).
fn screen_total(screen: &str, row: &str) -> u64 {
    screen
        .lines()
        .filter(|l| l.trim_start().starts_with(row))
        .filter_map(|l| l.rsplit('|').next().and_then(|c| c.trim().parse().ok()))
        .next_back()
        .unwrap_or(0)
}

/// Builds an OPTIONS request as a UAC would, with a fresh branch, Call-ID and tag.
pub fn options_request(
    target_uri: &str,
    via_transport: &str,
    via_sent_by: &str,
    n: u64,
) -> Message {
    let s = format!(
        "OPTIONS {target_uri} SIP/2.0\r\n\
         Via: SIP/2.0/{via_transport} {via_sent_by};branch=z9hG4bK-test-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:test@example.invalid>;tag=t{n}\r\n\
         To: <{target_uri}>\r\n\
         Call-ID: test-{n}@example.invalid\r\n\
         CSeq: {n} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    Message::parse(Bytes::from(s)).expect("valid OPTIONS")
}

/// Builds a request with a body of `body_len` bytes (for large-message tests).
pub fn request_with_body(
    method: &str,
    via_transport: &str,
    via_sent_by: &str,
    n: u64,
    body_len: usize,
) -> Message {
    let body: String = (0..body_len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let s = format!(
        "{method} sip:big@example.invalid SIP/2.0\r\n\
         Via: SIP/2.0/{via_transport} {via_sent_by};branch=z9hG4bK-big-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:test@example.invalid>;tag=b{n}\r\n\
         To: <sip:big@example.invalid>\r\n\
         Call-ID: big-{n}@example.invalid\r\n\
         CSeq: {n} {method}\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {body_len}\r\n\r\n{body}"
    );
    Message::parse_with(
        Bytes::from(s),
        &sip_transport_api::Limits::default()
            .with_max_message_size(1 << 20)
            .with_max_body_size(1 << 20),
    )
    .expect("valid request")
}

/// Builds the 200 OK a stateless UAS sends for `req` (RFC 3261 §8.2.6): Vias, From, To (with
/// a tag), Call-ID and CSeq copied.
pub fn ok_response(req: &Message) -> Message {
    let mut s = String::from("SIP/2.0 200 OK\r\n");
    for h in req.headers() {
        let long = h.long_name();
        if ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(long))
        {
            s.push_str(long);
            s.push_str(": ");
            s.push_str(&String::from_utf8_lossy(h.value_bytes()));
            if long.eq_ignore_ascii_case("To")
                && !h
                    .value_bytes()
                    .windows(4)
                    .any(|w| w.eq_ignore_ascii_case(b"tag="))
            {
                s.push_str(";tag=uas");
            }
            s.push_str("\r\n");
        }
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(Bytes::from(s)).expect("valid response")
}

/// A PROXY protocol v2 header for TCP over IPv4, built from the spec (HAProxy's
/// proxy-protocol.txt §2.2), independently of the parser under test: `cmd` is 0x21 for
/// `PROXY` or 0x20 for `LOCAL` (a balancer's health check).
pub fn proxy_v2_tcp4(src: SocketAddr, dst: SocketAddr, cmd: u8) -> Vec<u8> {
    const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("proxy_v2_tcp4 builds IPv4 headers only");
    };
    let mut b = SIGNATURE.to_vec();
    // Command, then family/protocol (AF_INET, STREAM), then the address block's length.
    b.extend_from_slice(&[cmd, 0x11, 0, 12]);
    b.extend_from_slice(&s.ip().octets());
    b.extend_from_slice(&d.ip().octets());
    b.extend_from_slice(&s.port().to_be_bytes());
    b.extend_from_slice(&d.port().to_be_bytes());
    b
}

/// Asserts that a dial to `peer` failed as `Limits::connect_timeout` says it must: a
/// recoverable `Error::ConnectTimeout` naming `peer` and `limit`, after at least `limit` and
/// well before several times it (`took`: how long the send took).
pub fn assert_connect_timeout(
    e: &sip_transport_api::Error,
    peer: SocketAddr,
    limit: Duration,
    took: Duration,
) {
    match e {
        sip_transport_api::Error::ConnectTimeout { peer: p, after } => {
            assert_eq!(*p, peer);
            assert_eq!(*after, limit);
        }
        other => panic!("expected ConnectTimeout, got {other:?}"),
    }
    assert!(e.is_recoverable());
    assert!(took >= limit && took < limit * 8, "{took:?}");
}

/// `Limits` at their extremes, for "no knob value panics" tests: queue depths and the
/// handshake cap `count` (0 and `usize::MAX` are the interesting ones), connection limits
/// unbounded, every timeout and the close grace `Duration::MAX`.
pub fn extreme_limits(count: usize) -> sip_transport_api::Limits {
    sip_transport_api::Limits::default()
        .with_max_concurrent_handshakes(count)
        .with_write_queue_depth(count)
        .with_event_queue_depth(count)
        .with_max_connections(usize::MAX)
        .with_max_connections_per_ip(usize::MAX)
        .with_idle_timeout(Duration::MAX)
        .with_handshake_timeout(Duration::MAX)
        .with_header_read_timeout(Duration::MAX)
        .with_connect_timeout(Duration::MAX)
        .with_write_timeout(Duration::MAX)
        .with_close_grace(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_parse() {
        let scr = "  Successful call        |        0                  |      200                 \n  Failed call            |        3                  |        4   \n";
        assert_eq!(screen_total(scr, "Successful call"), 200);
        assert_eq!(screen_total(scr, "Failed call"), 4);
    }

    #[test]
    fn builders() {
        let r = options_request("sip:a@127.0.0.1", "UDP", "127.0.0.1:5060", 7);
        assert_eq!(r.cseq().map(|c| c.seq), Some(7));
        let ok = ok_response(&r);
        assert_eq!(ok.status_code(), Some(200));
        assert_eq!(ok.call_id(), r.call_id());
        assert!(ok.to_header().is_some_and(|t| t.ends_with(b";tag=uas")));
        let big = request_with_body("MESSAGE", "TCP", "h", 1, 10_000);
        assert_eq!(big.body().len(), 10_000);
    }
}
