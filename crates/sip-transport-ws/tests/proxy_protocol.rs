//! PROXY protocol on the `ws` and `wss` listeners, from raw clients over loopback: a header
//! written by hand on the TCP socket (v2 before a `ws` upgrade, v1 before a TLS handshake)
//! names the client, whose address becomes the message source, the Via's `received`/`rport`
//! and the flow's key; answers and new requests go back over the proxied connection. A v2
//! `LOCAL` keeps the real peer; a trusted balancer that sends no header, and a source that
//! is not on the allow-list, are refused. The per-IP limit counts the clients the headers
//! name, not the balancer.

mod support;

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use sip_transport_api::{Destination, Direction, Error, Transport, TransportEvent};
use sip_transport_testkit::events::{spawn_uas, wait_fwd};
use sip_transport_testkit::proxy_v2_tcp4;
use sip_transport_tls::{PemSource, TlsConfig};
use sip_transport_ws::{IpPrefix, ProxyProtocolConfig, WsConfig};
use support::*;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn proxied(config: WsConfig) -> WsConfig {
    config.with_proxy_protocol(Some(ProxyProtocolConfig::default()))
}

/// The WebSocket upgrade (offering `sip`) on a stream that already carried a PROXY header.
async fn upgrade<S>(stream: S, addr: SocketAddr, secure: bool) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let req = upgrade_request(addr, secure, Some("sip"));
    let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, stream))
        .await
        .expect("upgrade in time")
        .expect("upgrade");
    assert_eq!(resp.headers()["sec-websocket-protocol"], "sip");
    ws
}

/// The next text message from the server, bounded.
async fn next_text<S>(ws: &mut WebSocketStream<S>) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => return t.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    })
    .await
    .expect("message in time")
}

/// Sends an OPTIONS on `ws` and checks what the transport saw and what came back: source,
/// `received`/`rport`, the flow's peer, the 200 over the proxied connection, and a request
/// to the client's address over the same flow.
async fn check_proxied_exchange<S>(
    t: &std::sync::Arc<sip_transport_ws::WsTransport>,
    fwd: &mut tokio::sync::mpsc::UnboundedReceiver<TransportEvent>,
    ws: &mut WebSocketStream<S>,
    client: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let opened = wait_fwd(fwd, |ev| match ev {
        TransportEvent::ConnectionOpened { peer, .. } => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(opened, client);
    ws.send(text_of(&ws_options(1))).await.expect("send");
    let m = wait_fwd(fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(m.source, client);
    let via = m.message.top_via().expect("via");
    assert_eq!(via.received(), Some(client.ip()));
    assert_eq!(via.rport(), Some(Some(client.port())));
    let flow = m.flow.expect("flow");
    assert!(
        t.flows().contains(&(flow, client, Direction::Inbound)),
        "{:?}",
        t.flows()
    );
    // The 200 goes back over the proxied connection.
    let answer = next_text(ws).await;
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(
        answer.contains(&format!("received={}", client.ip())),
        "{answer}"
    );
    // The client's address is the flow's key: a request to it reuses the connection.
    let used = t
        .send_message(&ws_options(2), &Destination::new(client))
        .await
        .expect("send to the client");
    assert_eq!(used, Some(flow));
    let request = next_text(ws).await;
    assert!(request.starts_with("OPTIONS "), "{request}");
}

#[tokio::test]
async fn v2_header_names_the_client_on_ws() {
    let (t, rx) = bind(proxied(WsConfig::default()));
    let mut fwd = spawn_uas(t.clone(), rx);
    let client: SocketAddr = "203.0.113.5:6000".parse().expect("addr");
    let mut tcp = TcpStream::connect(t.local_addr()).await.expect("connect");
    tcp.write_all(&proxy_v2_tcp4(client, t.local_addr(), 0x21))
        .await
        .expect("write header");
    let mut ws = upgrade(tcp, t.local_addr(), false).await;
    check_proxied_exchange(&t, &mut fwd, &mut ws, client).await;
    drop(ws);
    t.close().await;
}

#[tokio::test]
async fn v1_header_before_the_tls_handshake_names_the_client_on_wss() {
    let cert = test_cert();
    let (t, rx) = bind(proxied(
        WsConfig::default().with_server_tls(cert.server.clone()),
    ));
    let mut fwd = spawn_uas(t.clone(), rx);
    let addr = t.local_addr();
    let client: SocketAddr = "198.51.100.7:40000".parse().expect("addr");
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let header = format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        client.ip(),
        addr.ip(),
        client.port(),
        addr.port()
    );
    tcp.write_all(header.as_bytes())
        .await
        .expect("write header");
    let tls = TlsConfig::default()
        .with_server_ca(PemSource::memory(&cert.pem))
        .build_client_config()
        .expect("client config");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio::time::timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .expect("TLS in time")
    .expect("TLS handshake");
    let mut ws = upgrade(tls, addr, true).await;
    check_proxied_exchange(&t, &mut fwd, &mut ws, client).await;
    drop(ws);
    t.close().await;
}

#[tokio::test]
async fn v2_local_keeps_the_real_peer() {
    let (t, rx) = bind(proxied(WsConfig::default()));
    let mut fwd = spawn_uas(t.clone(), rx);
    let mut tcp = TcpStream::connect(t.local_addr()).await.expect("connect");
    let me = tcp.local_addr().expect("local");
    let health_check = proxy_v2_tcp4("192.0.2.1:1".parse().expect("addr"), t.local_addr(), 0x20);
    tcp.write_all(&health_check).await.expect("write header");
    let mut ws = upgrade(tcp, t.local_addr(), false).await;
    ws.send(text_of(&ws_options(3))).await.expect("send");
    let m = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(m.source, me);
    assert!(next_text(&mut ws).await.starts_with("SIP/2.0 200"));
    drop(ws);
    t.close().await;
}

#[tokio::test]
async fn trusted_balancer_without_a_header_is_refused_with_an_error_event() {
    let (t, rx) = bind(proxied(WsConfig::default()));
    let mut fwd = spawn_uas(t.clone(), rx);
    let tcp = TcpStream::connect(t.local_addr()).await.expect("connect");
    let me = tcp.local_addr().expect("local");
    // Straight to the upgrade: "GET " is not a PROXY signature.
    let req = upgrade_request(t.local_addr(), false, Some("sip"));
    let refused = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("answer in time");
    assert!(refused.is_err(), "the upgrade must not succeed");
    let (peer, error) = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Error { peer, error, .. } => Some((peer, error)),
        TransportEvent::ConnectionOpened { .. } => panic!("a connection without header opened"),
        _ => None,
    })
    .await;
    assert_eq!(peer, Some(me));
    match error {
        Error::Io { peer, source } => {
            assert_eq!(peer, me);
            assert_eq!(source.kind(), std::io::ErrorKind::InvalidData, "{source}");
        }
        other => panic!("expected Error::Io (InvalidData), got {other:?}"),
    }
    assert_eq!(t.stats().connections_refused, 1);
    assert_eq!(t.stats().connections_accepted, 0);
    t.close().await;
}

#[tokio::test]
async fn header_from_a_source_not_on_the_allow_list_is_refused() {
    // Only 192.0.2.1 may send headers; our loopback client may not.
    let only = ProxyProtocolConfig::new([IpPrefix::host("192.0.2.1".parse().expect("ip"))]);
    let (t, rx) = bind(WsConfig::default().with_proxy_protocol(Some(only)));
    let mut fwd = spawn_uas(t.clone(), rx);
    let mut tcp = TcpStream::connect(t.local_addr()).await.expect("connect");
    let client: SocketAddr = "203.0.113.9:7000".parse().expect("addr");
    let mut bytes = proxy_v2_tcp4(client, t.local_addr(), 0x21);
    bytes.extend_from_slice(
        format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: sip\r\n\r\n",
            t.local_addr()
        )
        .as_bytes(),
    );
    // The server may already have closed: a failed write is part of the refusal.
    let _ = tcp.write_all(&bytes).await;
    let answer = read_to_end_by_server(&mut tcp).await;
    assert!(answer.is_empty(), "no answer at all: {answer:?}");
    assert_eq!(t.stats().connections_refused, 1);
    assert_eq!(t.stats().connections_accepted, 0);
    assert!(t.flows().is_empty());
    // Refused at accept, like the TCP and TLS listeners: counted, no event.
    assert!(fwd.try_recv().is_err(), "no event for an untrusted source");
    t.close().await;
}

/// Opens a connection carrying a v2 header for `client` and tries the upgrade: the stream if
/// the server accepted it, `None` if it refused.
async fn try_proxied(
    t: &sip_transport_ws::WsTransport,
    client: SocketAddr,
) -> Option<WebSocketStream<TcpStream>> {
    let mut tcp = TcpStream::connect(t.local_addr()).await.expect("connect");
    // The server may already have closed: a failed write is part of the refusal.
    let _ = tcp
        .write_all(&proxy_v2_tcp4(client, t.local_addr(), 0x21))
        .await;
    let req = upgrade_request(t.local_addr(), false, Some("sip"));
    tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("answer in time")
        .ok()
        .map(|(ws, _)| ws)
}

#[tokio::test]
async fn per_ip_limit_counts_the_client_not_the_balancer() {
    let limits = sip_transport_api::Limits::default().with_max_connections_per_ip(2);
    let (t, rx) = bind(proxied(WsConfig::default().with_limits(limits)));
    let _fwd = spawn_uas(t.clone(), rx);
    // Four clients behind one balancer (loopback): each has its own budget.
    let mut open = Vec::new();
    for i in 1..=4u8 {
        let client = SocketAddr::from(([203, 0, 113, i], 6000));
        let ws = try_proxied(&t, client).await;
        open.push(ws.unwrap_or_else(|| panic!("client {client} refused")));
    }
    assert_eq!(t.stats().connections_refused, 0);
    // One client, three connections: the third is over its limit.
    let same = SocketAddr::from(([198, 51, 100, 7], 7000));
    for n in 1..=2 {
        let ws = try_proxied(&t, same).await;
        open.push(ws.unwrap_or_else(|| panic!("connection {n} of {same} refused")));
    }
    assert!(try_proxied(&t, same).await.is_none(), "third from {same}");
    assert_eq!(t.stats().connections_refused, 1);
    assert_eq!(t.stats().connections_accepted, 6);
    // Closing one frees that client's count (once).
    let last = open.pop().expect("open");
    drop(last);
    let reopened = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(ws) = try_proxied(&t, same).await {
                return ws;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("count released");
    open.push(reopened);
    drop(open);
    t.close().await;
}
