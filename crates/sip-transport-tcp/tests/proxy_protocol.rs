//! PROXY protocol on a real `TcpTransport` listener: the header's client address becomes the
//! message source and the Via's `received`/`rport`; the answer goes back over the same
//! connection; untrusted sources, missing, malformed and slow headers are refused; the per-IP
//! limit counts the clients the headers name, not the balancer.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{WAIT, spawn_uas, wait_fwd};
use sip_transport_api::{Limits, Transport, TransportEvent};
use sip_transport_tcp::proxy::header::V2_SIGNATURE;
use sip_transport_tcp::{IpPrefix, ProxyProtocolConfig, TcpConfig, TcpTransport};
use sip_transport_testkit::proxy_v2_tcp4;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

const VIA: &str = "192.0.2.99:5999";

async fn server(proxy: ProxyProtocolConfig) -> (Arc<TcpTransport>, mpsc::Receiver<TransportEvent>) {
    let cfg = TcpConfig::default()
        .with_bind(common::loopback())
        .with_limits(Limits::default())
        .with_proxy_protocol(Some(proxy));
    TcpTransport::bind(cfg).await.expect("bind")
}

fn request(n: u64) -> Vec<u8> {
    sip_transport_testkit::options_request("sip:ping@example.invalid", "TCP", VIA, n)
        .as_bytes()
        .to_vec()
}

/// Connects from `from` (an IP on loopback) to `to`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(format!("{from}:0").parse().expect("addr"))
        .expect("bind source");
    s.connect(to).await.expect("connect")
}

/// Reads one response head (up to the blank line), bounded.
async fn read_head(c: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut b = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = c.read(&mut b).await.expect("read");
            assert!(n > 0, "closed before a response: {buf:?}");
            buf.extend_from_slice(&b[..n]);
        }
    })
    .await
    .expect("response in time");
    String::from_utf8_lossy(&buf).into_owned()
}

/// True when the server closes the connection (EOF or reset) within the wait.
async fn closed_by_server(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 256];
    matches!(
        tokio::time::timeout(WAIT, c.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn v1_client_address_becomes_source_and_received() {
    let (t, rx) = server(ProxyProtocolConfig::default()).await;
    let mut fwd = spawn_uas(Arc::clone(&t), rx);
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    let mut bytes = format!(
        "PROXY TCP4 198.51.100.7 {} 40000 5060\r\n",
        t.local_addr().ip()
    )
    .into_bytes();
    bytes.extend_from_slice(&request(1)); // in the same segment as the header
    c.write_all(&bytes).await.expect("write");
    let m = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    let client: SocketAddr = "198.51.100.7:40000".parse().expect("addr");
    assert_eq!(m.source, client);
    let via = m.message.top_via().expect("via");
    assert_eq!(via.received(), Some("198.51.100.7".parse().expect("ip")));
    assert_eq!(via.rport(), Some(Some(40000)));
    let flow = m.flow.expect("flow");
    assert_eq!(t.flow_peer(flow), Some(client));
    // The 200 goes back over the proxied connection.
    let head = read_head(&mut c).await;
    assert!(head.starts_with("SIP/2.0 200"), "{head}");
    assert!(head.contains("received=198.51.100.7"), "{head}");
    t.close().await;
}

#[tokio::test]
async fn v2_header_split_across_writes() {
    let (t, rx) = server(ProxyProtocolConfig::default()).await;
    let mut fwd = spawn_uas(Arc::clone(&t), rx);
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    let client: SocketAddr = "203.0.113.5:6000".parse().expect("addr");
    let header = proxy_v2_tcp4(client, t.local_addr(), 0x21);
    for chunk in header.chunks(5) {
        c.write_all(chunk).await.expect("write");
        c.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.write_all(&request(2)).await.expect("write");
    let m = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(m.source, client);
    assert!(read_head(&mut c).await.starts_with("SIP/2.0 200"));
    t.close().await;
}

#[tokio::test]
async fn v2_local_keeps_the_real_peer() {
    let (t, rx) = server(ProxyProtocolConfig::default()).await;
    let mut fwd = spawn_uas(Arc::clone(&t), rx);
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    let me = c.local_addr().expect("local");
    let mut bytes = proxy_v2_tcp4("192.0.2.1:1".parse().expect("addr"), t.local_addr(), 0x20);
    bytes.extend_from_slice(&request(3));
    c.write_all(&bytes).await.expect("write");
    let m = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(m.source, me);
    assert!(read_head(&mut c).await.starts_with("SIP/2.0 200"));
    t.close().await;
}

#[tokio::test]
async fn untrusted_source_is_refused_even_with_a_valid_header() {
    // Only 127.0.0.2 is a balancer; a client on 127.0.0.1 naming any address is refused.
    let trusted: IpPrefix = "127.0.0.2/32".parse().expect("prefix");
    let (t, rx) = server(ProxyProtocolConfig::new([trusted])).await;
    let mut fwd = spawn_uas(Arc::clone(&t), rx);
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    let mut bytes = b"PROXY TCP4 10.9.9.9 127.0.0.1 1 5060\r\n".to_vec();
    bytes.extend_from_slice(&request(4));
    let _ = c.write_all(&bytes).await;
    assert!(
        closed_by_server(&mut c).await,
        "spoofing client not refused"
    );
    assert!(t.stats().connections_refused >= 1);
    assert_eq!(t.stats().messages_received, 0);
    // The trusted source is served.
    let mut ok = connect_from("127.0.0.2", t.local_addr()).await;
    let mut bytes = b"PROXY TCP4 10.9.9.9 127.0.0.1 1 5060\r\n".to_vec();
    bytes.extend_from_slice(&request(5));
    ok.write_all(&bytes).await.expect("write");
    assert!(read_head(&mut ok).await.starts_with("SIP/2.0 200"));
    let m = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(m.source, "10.9.9.9:1".parse::<SocketAddr>().expect("addr"));
    t.close().await;
}

#[tokio::test]
async fn missing_malformed_and_slow_headers_are_refused() {
    let proxy = ProxyProtocolConfig::default().with_header_timeout(Duration::from_millis(300));
    let (t, rx) = server(proxy).await;
    let _fwd = spawn_uas(Arc::clone(&t), rx);
    // SIP without a header.
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    let _ = c.write_all(&request(6)).await;
    assert!(closed_by_server(&mut c).await, "no header: not refused");
    // A malformed v1 line.
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    let _ = c.write_all(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n").await;
    assert!(closed_by_server(&mut c).await, "bad v1: not refused");
    // An oversized v1 line (no LF within 107 bytes).
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    let _ = c
        .write_all(&[b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat())
        .await;
    assert!(closed_by_server(&mut c).await, "long v1: not refused");
    // A v2 header announcing more than the maximum.
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    let mut b = V2_SIGNATURE.to_vec();
    b.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    let _ = c.write_all(&b).await;
    assert!(closed_by_server(&mut c).await, "huge v2: not refused");
    // Half a header, then silence: closed after the header timeout.
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    c.write_all(b"PROXY TCP4 1.2.3.4").await.expect("write");
    let started = std::time::Instant::now();
    assert!(closed_by_server(&mut c).await, "slow header: not refused");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(t.stats().connections_refused >= 5, "{:?}", t.stats());
    assert_eq!(t.stats().messages_received, 0);
    assert_eq!(t.connection_count(), 0);
    t.close().await;
}

#[tokio::test]
async fn off_by_default() {
    let cfg = TcpConfig::default().with_bind(common::loopback());
    assert!(cfg.proxy_protocol.is_none());
    let (t, rx) = TcpTransport::bind(cfg).await.expect("bind");
    let _fwd = spawn_uas(Arc::clone(&t), rx);
    // Without the option, plain SIP is served as before.
    let mut c = connect_from("127.0.0.1", t.local_addr()).await;
    c.write_all(&request(7)).await.expect("write");
    assert!(read_head(&mut c).await.starts_with("SIP/2.0 200"));
    t.close().await;
}

/// Connects from loopback with a v1 header naming `client` and sends one request: true if
/// it was answered, false if the server closed the connection instead.
async fn try_proxied(to: SocketAddr, client: SocketAddr, n: u64) -> (TcpStream, bool) {
    let mut c = connect_from("127.0.0.1", to).await;
    let mut bytes = format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        client.ip(),
        to.ip(),
        client.port(),
        to.port()
    )
    .into_bytes();
    bytes.extend_from_slice(&request(n));
    // The server may already have closed: a failed write is part of the refusal.
    let _ = c.write_all(&bytes).await;
    let mut buf = Vec::new();
    let answered = tokio::time::timeout(WAIT, async {
        let mut b = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut b).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&b[..n]),
            }
        }
        true
    })
    .await
    .expect("answer or close in time");
    if answered {
        let head = String::from_utf8_lossy(&buf);
        assert!(head.starts_with("SIP/2.0 200"), "{head}");
    }
    (c, answered)
}

#[tokio::test]
async fn per_ip_limit_counts_the_client_not_the_balancer() {
    let cfg = TcpConfig::default()
        .with_bind(common::loopback())
        .with_limits(Limits::default().with_max_connections_per_ip(2))
        .with_proxy_protocol(Some(ProxyProtocolConfig::default()));
    let (t, rx) = TcpTransport::bind(cfg).await.expect("bind");
    let _fwd = spawn_uas(Arc::clone(&t), rx);
    let to = t.local_addr();
    // Four clients behind one balancer (loopback): each has its own budget.
    let mut open = Vec::new();
    for i in 1..=4u8 {
        let client = SocketAddr::from(([203, 0, 113, i], 6000));
        let (c, answered) = try_proxied(to, client, u64::from(i)).await;
        assert!(answered, "client {client} refused");
        open.push(c);
    }
    assert_eq!(t.stats().connections_refused, 0);
    // One client, three connections: the third is over its limit.
    let same: SocketAddr = "198.51.100.7:7000".parse().expect("addr");
    for n in 1..=2 {
        let (c, answered) = try_proxied(to, same, 10 + n).await;
        assert!(answered, "connection {n} of {same} refused");
        open.push(c);
    }
    let (_c, answered) = try_proxied(to, same, 13).await;
    assert!(!answered, "third connection from {same} accepted");
    assert_eq!(t.stats().connections_refused, 1);
    assert_eq!(t.stats().connections_accepted, 6);
    // Closing one frees that client's count (once).
    drop(open.pop());
    let reopened = tokio::time::timeout(WAIT, async {
        loop {
            if let (c, true) = try_proxied(to, same, 14).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("count released");
    drop((open, reopened));
    t.close().await;
}
