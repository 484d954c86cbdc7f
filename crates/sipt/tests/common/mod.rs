//! Helpers shared by sipt's integration tests: a `sipt serve` child process, blocking SIP
//! clients over TCP, TLS and WebSocket (a minimal RFC 6455 client, so tests can also send
//! frames a library would refuse to build), and RSS / open-descriptor readings from /proc.
//!
//! Not a mock: every helper talks to the real `sipt` binary or a real transport over loopback.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use sip_transport_testkit::certs::TestPki;

pub const SIPT: &str = env!("CARGO_BIN_EXE_sipt");

/// A `sipt serve` child, killed (by its PID) when dropped.
pub struct Server {
    pub child: Child,
    pub listening: Vec<(String, SocketAddr)>,
    pub lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `sipt serve` with these listeners and extra arguments, waiting for its
    /// `listening PROTO IP:PORT` lines.
    pub fn start(listen: &[&str], extra: &[&str]) -> Server {
        let mut cmd = Command::new(SIPT);
        cmd.arg("serve").args(extra);
        for l in listen {
            cmd.args(["--listen", l]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sipt serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listening = Vec::new();
        while listening.len() < listen.len() {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("sipt serve prints its listeners");
            if line.starts_with("certificate ") {
                continue;
            }
            let mut parts = line.split_whitespace();
            assert_eq!(parts.next(), Some("listening"), "unexpected line {line:?}");
            let proto = parts.next().expect("proto").to_owned();
            let addr: SocketAddr = parts.next().expect("addr").parse().expect("addr parses");
            listening.push((proto, addr));
        }
        Server {
            child,
            listening,
            lines: rx,
        }
    }

    pub fn addr(&self, proto: &str) -> SocketAddr {
        self.listening
            .iter()
            .find(|(p, _)| p == proto)
            .map(|(_, a)| *a)
            .expect("listener")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the `summary:` line.
    pub fn terminate(self) -> String {
        self.terminate_with_status().0
    }

    /// SIGTERM, then the `summary:` line and the exit code.
    pub fn terminate_with_status(mut self) -> (String, Option<i32>) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.starts_with("summary:") {
                let code = self.child.wait().ok().and_then(|s| s.code());
                return (line, code);
            }
        }
        panic!("no summary line after SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field `name=N` of `sipt serve`'s summary line.
pub fn summary_field(summary: &str, name: &str) -> u64 {
    summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {summary}"))
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// An OPTIONS request whose Via points back at `via` (with rport, so UDP answers come back).
pub fn options(proto: &str, via: &str, call_id: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{proto} {via};rport;branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:hardening@127.0.0.1>;tag=h1\r\n\
         To: <sip:probe@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A byte stream a SIP client can talk over: plain TCP, TLS or WebSocket (one SIP message
/// per WebSocket message).
pub enum Client {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Ws(TcpStream, Vec<u8>),
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read1 {
    /// Status codes of the responses that arrived.
    Responses(Vec<u16>),
    /// The server closed the connection (after these responses).
    Closed(Vec<u16>),
}

/// TLS client configuration trusting the test PKI's CA (provider chosen explicitly).
pub fn tls_client_config(pki: &TestPki) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    let ca = rustls_pki_types::CertificateDer::from_pem_slice(pki.ca_cert_pem.as_bytes())
        .expect("CA PEM");
    roots.add(ca).expect("add CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl Client {
    pub fn tcp(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).ok();
        Client::Tcp(s)
    }

    pub fn tls(addr: SocketAddr, cfg: &Arc<rustls::ClientConfig>) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).ok();
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(cfg.clone(), name).expect("client");
        let mut st = rustls::StreamOwned::new(conn, s);
        while st.conn.is_handshaking() {
            st.conn.complete_io(&mut st.sock).expect("TLS handshake");
        }
        Client::Tls(Box::new(st))
    }

    /// WebSocket upgrade with the `sip` subprotocol (RFC 7118 §4).
    pub fn ws(addr: SocketAddr) -> Client {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).ok();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: sip\r\n\r\n"
        )
        .expect("upgrade request");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                s.read(&mut b).expect("upgrade answer"),
                1,
                "closed in upgrade"
            );
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Client::Ws(s, Vec::new())
    }

    /// The client's own address.
    pub fn local_addr(&self) -> SocketAddr {
        self.sock().local_addr().expect("local address")
    }

    fn sock(&self) -> &TcpStream {
        match self {
            Client::Tcp(s) | Client::Ws(s, _) => s,
            Client::Tls(t) => &t.sock,
        }
    }

    /// Sends one SIP message (for WebSocket: one binary message).
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Client::Tcp(s) => s.write_all(bytes),
            Client::Tls(t) => {
                t.write_all(bytes)?;
                t.flush()
            }
            Client::Ws(s, _) => s.write_all(&ws_frame(0x2, bytes, true)),
        }
    }

    /// Sends raw bytes (for WebSocket: raw frame bytes, for tests that build their own frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Client::Tcp(s) | Client::Ws(s, _) => s.write_all(bytes),
            Client::Tls(t) => {
                t.write_all(bytes)?;
                t.flush()
            }
        }
    }

    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Client::Tcp(s) | Client::Ws(s, _) => s.read(buf),
            Client::Tls(t) => t.read(buf),
        }
    }

    /// Reads until `want` responses arrived, the server closed, or `wait` passed.
    pub fn read_responses(&mut self, want: usize, wait: Duration) -> Read1 {
        let deadline = Instant::now() + wait;
        let mut codes = Vec::new();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            // Complete messages first.
            loop {
                let msg = match self {
                    Client::Ws(_, pending) => {
                        pending.extend_from_slice(&buf);
                        buf.clear();
                        match ws_take_frame(pending) {
                            Some(WsFrame::Data(d)) => Some(d),
                            Some(WsFrame::Close) => return Read1::Closed(codes),
                            Some(WsFrame::Other) => continue,
                            None => None,
                        }
                    }
                    // sipt's responses carry Content-Length: 0.
                    _ => find(&buf, b"\r\n\r\n").map(|end| buf.drain(..end + 4).collect()),
                };
                let Some(m) = msg else { break };
                codes.push(status_of(&m));
            }
            if codes.len() >= want {
                return Read1::Responses(codes);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read1::Responses(codes);
            }
            self.sock().set_read_timeout(Some(left)).ok();
            match self.read_some(&mut chunk) {
                Ok(0) => return Read1::Closed(codes),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Read1::Closed(codes),
            }
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// The status code of a response (0 if it is not one).
pub fn status_of(m: &[u8]) -> u16 {
    m.strip_prefix(b"SIP/2.0 ")
        .and_then(|r| std::str::from_utf8(r.get(..3)?).ok())
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A client-to-server WebSocket frame (masked, as RFC 6455 §5.3 requires).
pub fn ws_frame(opcode: u8, payload: &[u8], fin: bool) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

enum WsFrame {
    Data(Vec<u8>),
    Close,
    Other,
}

/// Takes one server frame (unmasked) off the front of `buf`.
fn ws_take_frame(buf: &mut Vec<u8>) -> Option<WsFrame> {
    if buf.len() < 2 {
        return None;
    }
    let op = buf[0] & 0x0f;
    let (len, hdr) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < hdr + len {
        return None;
    }
    let payload: Vec<u8> = buf[hdr..hdr + len].to_vec();
    buf.drain(..hdr + len);
    Some(match op {
        0x1 | 0x2 => WsFrame::Data(payload),
        0x8 => WsFrame::Close,
        _ => WsFrame::Other,
    })
}
