//! Helpers shared by this crate's integration tests: test certificates (the testkit's,
//! made with rcgen at test time), transports bound on loopback, a stateless responder, event waiting with
//! timeouts, and a raw HTTP upgrade for refusal tests.
//!
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sip_transport_api::{FlowId, Message, Transport, TransportEvent};
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::ok_response;
use sip_transport_tls::TlsConfig;
use sip_transport_ws::{WsConfig, WsTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Everything a test waits for is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// A test PKI (the testkit's, made with rcgen at test time) and what each side needs.
pub struct TestCert {
    /// The CA certificate, PEM (what a client trusts).
    pub pem: String,
    /// The rustls server configuration serving the CA-signed certificate for `localhost`,
    /// `127.0.0.1` and `::1`.
    pub server: Arc<rustls::ServerConfig>,
    /// The whole PKI (its folder lives as long as this).
    pub pki: TestPki,
}

/// A rustls server configuration for a certificate and key in PEM, built by the TLS crate
/// (provider `ring`, no client certificates asked).
pub fn server_config(cert_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    TlsConfig::default()
        .with_certificate_pem(cert_pem, key_pem)
        .build_server_config()
        .expect("server config")
        .expect("a server identity is set")
}

/// Generates a fresh test PKI.
pub fn test_cert() -> TestCert {
    let pki = TestPki::generate();
    TestCert {
        pem: pki.ca_cert_pem.clone(),
        server: server_config(&pki.server.cert_pem, &pki.server.key_pem),
        pki,
    }
}

/// Binds a transport, panicking on failure.
pub fn bind(config: WsConfig) -> (Arc<WsTransport>, mpsc::Receiver<TransportEvent>) {
    WsTransport::bind(config).expect("bind")
}

/// Answers every request but ACK with `200 OK` over the flow it came in on, and forwards every
/// other event to the returned receiver.
pub fn respond(
    t: Arc<WsTransport>,
    mut events: mpsc::Receiver<TransportEvent>,
) -> (mpsc::UnboundedReceiver<TransportEvent>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                TransportEvent::Message(m)
                    if m.message.is_request() && m.message.method() != Some("ACK") =>
                {
                    let ok = ok_response(&m.message);
                    if let Err(e) = t.send_response(&ok, m.flow).await {
                        eprintln!("responder: {e}");
                    }
                }
                TransportEvent::Closed => {
                    let _ = tx.send(TransportEvent::Closed);
                    break;
                }
                other => {
                    let _ = tx.send(other);
                }
            }
        }
    });
    (rx, task)
}

// Not every test binary waits for messages.
#[allow(unused_imports)]
pub use sip_transport_testkit::events::next_message;

/// The flow of the next `ConnectionOpened` event (others are skipped), within [`WAIT`].
pub async fn opened_flow(events: &mut mpsc::Receiver<TransportEvent>) -> FlowId {
    loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("event")
        {
            Some(TransportEvent::ConnectionOpened { flow, .. }) => return flow,
            Some(_) => continue,
            None => panic!("closed"),
        }
    }
}

/// Waits for an event matching `pred` on an unbounded receiver.
pub async fn wait_event<F>(
    events: &mut mpsc::UnboundedReceiver<TransportEvent>,
    mut pred: F,
) -> TransportEvent
where
    F: FnMut(&TransportEvent) -> bool,
{
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(ev) if pred(&ev) => return ev,
                Some(_) => continue,
                None => panic!("event channel closed"),
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// An OPTIONS request as a WebSocket UA sends it (Via host under `.invalid`, RFC 7118 §5.2).
pub fn ws_options(n: u64) -> Message {
    sip_transport_testkit::options_request(
        "sip:ping@127.0.0.1;transport=ws",
        "WS",
        "df7jal23ls0d.invalid",
        n,
    )
}

/// Sends a raw HTTP upgrade request and returns the response head (up to the empty line).
pub async fn raw_upgrade(addr: SocketAddr, extra_headers: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(WAIT, async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("timed out reading the upgrade response");
    String::from_utf8_lossy(&buf).into_owned()
}

/// The flow an event belongs to, if any.
pub fn flow_of(ev: &TransportEvent) -> Option<FlowId> {
    match ev {
        TransportEvent::Message(m) => m.flow,
        TransportEvent::ConnectionOpened { flow, .. }
        | TransportEvent::ConnectionClosed { flow, .. }
        | TransportEvent::Pong { flow, .. } => Some(*flow),
        TransportEvent::Error { flow, .. } => *flow,
        _ => None,
    }
}

/// A client upgrade request for `ws://{addr}/` (`wss` when `secure`), offering `protocol` as
/// its subprotocol list.
pub fn upgrade_request(
    addr: SocketAddr,
    secure: bool,
    protocol: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let scheme = if secure { "wss" } else { "ws" };
    let mut req = format!("{scheme}://{addr}/")
        .into_client_request()
        .expect("request");
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().expect("header value"));
    }
    req
}

/// A raw TCP connection upgraded by hand (offering `sip`), returned right after the `101`
/// head, so a test can write WebSocket frames byte by byte.
pub async fn raw_upgraded(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: sip\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    // Byte by byte: nothing past the head may be consumed (the server sends nothing more
    // before we do, but this does not rely on it).
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    tokio::time::timeout(WAIT, async {
        while !head.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut b).await.expect("read");
            assert_eq!(n, 1, "closed during the upgrade: {head:?}");
            head.push(b[0]);
        }
    })
    .await
    .expect("upgrade in time");
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s
}

/// Reads until the server ends the connection (EOF or a reset), bounded by [`WAIT`], and
/// returns what it sent before.
pub async fn read_to_end_by_server<R: tokio::io::AsyncRead + Unpin>(s: &mut R) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    tokio::time::timeout(WAIT, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server ends the connection in time");
    got
}

/// A raw tungstenite client (not our transport) upgraded on a fresh connection, offering
/// `protocol` as its subprotocol list.
pub async fn raw_client(
    addr: SocketAddr,
    protocol: Option<&str>,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let req = upgrade_request(addr, false, protocol);
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("upgrade in time")
        .expect("upgrade");
    if protocol.is_some() {
        assert_eq!(resp.headers()["sec-websocket-protocol"], "sip");
    }
    ws
}

/// A SIP message as one WebSocket text message.
pub fn text_of(m: &Message) -> tokio_tungstenite::tungstenite::Message {
    let s = String::from_utf8(m.as_bytes().to_vec()).expect("utf-8");
    tokio_tungstenite::tungstenite::Message::text(s)
}
