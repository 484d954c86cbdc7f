//! Request/response between two of our UDP transports over real loopback sockets: both
//! directions, rport routing of responses, received/rport stamping, large datagrams and IPv6.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::{WAIT, bind, bind_v4, next_message, top_via_text};
use sip_transport_api::{
    Destination, Error, FlowId, Limits, Message, Transport, TransportEvent, TransportKind,
};
use sip_transport_testkit::{ok_response, options_request, request_with_body};
use sip_transport_udp::{MAX_DATAGRAM_V4, UdpConfig, UdpTransport};
use tokio::sync::mpsc::Receiver;

/// One OPTIONS transaction from `client` to `server`, answered with `send_response(_, None)`.
async fn round_trip(
    client: &UdpTransport,
    client_rx: &mut Receiver<TransportEvent>,
    server: &UdpTransport,
    server_rx: &mut Receiver<TransportEvent>,
    n: u64,
) {
    // The Via claims port 9 (discard): only rport can bring the response back.
    let target = format!("sip:ping@{}", server.local_addr());
    let req = options_request(&target, "UDP", "127.0.0.1:9", n);
    let dest = Destination::new(server.local_addr());
    assert_eq!(client.send_message(&req, &dest).await.expect("send"), None);

    let got = next_message(server_rx).await;
    assert_eq!(got.source, client.local_addr());
    assert_eq!(got.local, server.local_addr());
    assert_eq!(got.kind, TransportKind::Udp);
    assert_eq!(got.flow, None);
    assert_eq!(got.message.call_id(), req.call_id());
    // RFC 3581 §4: rport filled with the source port, received added.
    let via = got.message.top_via().expect("via");
    assert_eq!(via.rport(), Some(Some(client.local_addr().port())));
    assert_eq!(via.received(), Some(client.local_addr().ip()));

    server
        .send_response(&ok_response(&got.message), got.flow)
        .await
        .expect("send_response");
    let resp = next_message(client_rx).await;
    assert_eq!(resp.message.status_code(), Some(200));
    assert_eq!(resp.message.call_id(), req.call_id());
    assert_eq!(resp.source, server.local_addr());
}

#[tokio::test]
async fn request_response_both_ways_with_rport() {
    let (a, mut a_rx) = bind_v4();
    let (b, mut b_rx) = bind_v4();
    round_trip(&a, &mut a_rx, &b, &mut b_rx, 1).await;
    round_trip(&b, &mut b_rx, &a, &mut a_rx, 2).await;
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.messages_sent, sa.messages_received), (2, 2));
    assert_eq!((sb.messages_sent, sb.messages_received), (2, 2));
    assert!(sa.bytes_sent > 0 && sa.bytes_received > 0);
    assert_eq!(sa.send_errors + sa.malformed + sa.dropped, 0);
}

#[tokio::test]
async fn received_stamped_when_sent_by_is_a_name() {
    let (a, _a_rx) = bind_v4();
    let (b, mut b_rx) = bind_v4();
    let req = options_request("sip:x@example.invalid", "UDP", "client.example.invalid", 1);
    a.send_message(&req, &b.local_addr().into())
        .await
        .expect("send");
    let got = next_message(&mut b_rx).await;
    // RFC 3261 §18.2.1: received added because the sent-by is not the source IP.
    let via = top_via_text(&got.message);
    assert!(
        via.contains("client.example.invalid;branch=z9hG4bK-test-1;rport=")
            && via.ends_with(";received=127.0.0.1"),
        "{via}"
    );
    // And a Via that already matches, without rport, stays byte for byte as sent.
    let plain = Message::parse(Bytes::from(format!(
        "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-p\r\nContent-Length: 0\r\n\r\n",
        a.local_addr()
    )))
    .expect("parses");
    a.send_message(&plain, &b.local_addr().into())
        .await
        .expect("send");
    let got = next_message(&mut b_rx).await;
    assert_eq!(got.message.as_bytes(), plain.as_bytes());
}

#[tokio::test]
async fn send_response_falls_back_from_a_flow_id() {
    // A flow id from elsewhere (UDP has none): send_on_flow says FlowClosed and the default
    // send_response routes by the Via instead.
    let (a, mut a_rx) = bind_v4();
    let (b, mut b_rx) = bind_v4();
    let flow = FlowId::next();
    assert!(matches!(
        b.send_on_flow(flow, &options_request("sip:x@h", "UDP", "h", 0)).await,
        Err(Error::FlowClosed { flow: f }) if f == flow
    ));
    let req = options_request("sip:x@h", "UDP", &a.local_addr().to_string(), 2);
    a.send_message(&req, &b.local_addr().into())
        .await
        .expect("send");
    let got = next_message(&mut b_rx).await;
    b.send_response(&ok_response(&got.message), Some(flow))
        .await
        .expect("fallback to Via");
    assert_eq!(
        next_message(&mut a_rx).await.message.call_id(),
        req.call_id()
    );
}

#[tokio::test]
async fn large_request_needs_raised_threshold() {
    let (b, mut b_rx) = bind_v4();
    let (a, _a_rx) = bind_v4();
    let req = request_with_body("MESSAGE", "UDP", &a.local_addr().to_string(), 1, 60_000);
    assert!(req.len() > 60_000 && req.len() <= MAX_DATAGRAM_V4);
    let dest = Destination::new(b.local_addr());

    // RFC 3261 §18.1.1: the default threshold refuses it, and retrying cannot help.
    let e = a.send_message(&req, &dest).await.expect_err("too large");
    assert!(
        matches!(e, Error::UdpMessageTooLarge { size, limit: 1300 } if size == req.len()),
        "{e:?}"
    );
    assert!(!e.is_recoverable());
    assert_eq!(a.stats().send_errors, 1);
    assert_eq!(a.stats().messages_sent, 0);

    let (big, _big_rx) = bind(UdpConfig::default().with_mtu_threshold(MAX_DATAGRAM_V4));
    big.send_message(&req, &dest)
        .await
        .expect("raised threshold");
    let got = next_message(&mut b_rx).await;
    assert_eq!(got.message.body().len(), 60_000);
    assert_eq!(got.message.body(), req.body());
    assert_eq!(got.message.call_id(), req.call_id());
}

/// A response of exactly `total` bytes (Content-Length adjusted to fit).
fn response_of_size(total: usize, via_host: SocketAddr) -> Message {
    let head = |body: usize| {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK-max\r\n\
             Call-ID: max-{total}\r\nCSeq: 1 OPTIONS\r\nContent-Length: {body}\r\n\r\n"
        )
    };
    let mut body = total - head(0).len();
    while head(body).len() + body != total {
        body = total - head(body).len();
    }
    let limits = Limits::default()
        .with_max_message_size(1 << 17)
        .with_max_body_size(1 << 17);
    let bytes = format!("{}{}", head(body), "b".repeat(body));
    Message::parse_with(Bytes::from(bytes), &limits).expect("parses")
}

#[tokio::test]
async fn largest_datagram_received_intact() {
    let (a, _a_rx) = bind_v4();
    let (b, mut b_rx) = bind_v4();
    // Responses are not subject to the MTU threshold, only to the datagram maximum.
    let max = response_of_size(MAX_DATAGRAM_V4, a.local_addr());
    assert_eq!(max.len(), 65_507);
    a.send_message(&max, &b.local_addr().into())
        .await
        .expect("65,507 bytes");
    let got = next_message(&mut b_rx).await;
    assert_eq!(got.message.as_bytes(), max.as_bytes());

    let over = response_of_size(MAX_DATAGRAM_V4 + 1, a.local_addr());
    let e = a
        .send_message(&over, &b.local_addr().into())
        .await
        .expect_err("over the maximum");
    assert!(
        matches!(
            e,
            Error::DatagramTooLarge {
                size: 65_508,
                limit: 65_507
            }
        ),
        "{e:?}"
    );
    assert!(!e.is_recoverable());
    assert_eq!(b.stats().bytes_received, 65_507);
}

#[tokio::test]
async fn address_family_mismatch_and_bad_destinations() {
    let (a, _rx) = bind_v4();
    let req = options_request("sip:x@h", "UDP", "h", 0);
    let v6: SocketAddr = "[::1]:5060".parse().expect("addr");
    let e = a
        .send_message(&req, &v6.into())
        .await
        .expect_err("v6 from v4");
    assert!(
        matches!(e, Error::AddressFamilyMismatch { transport: TransportKind::Udp, peer, .. } if peer == v6),
        "{e:?}"
    );
    assert!(!e.is_recoverable());
    let any: SocketAddr = "0.0.0.0:5060".parse().expect("addr");
    assert!(matches!(
        a.send_message(&req, &any.into()).await,
        Err(Error::InvalidDestination { .. })
    ));
    assert_eq!(a.stats().send_errors, 2);
}

/// Binds `[::1]`, or returns `None` (with a loud message) when the OS has no IPv6 loopback.
fn bind_v6_loopback() -> Option<(std::sync::Arc<UdpTransport>, Receiver<TransportEvent>)> {
    let addr: SocketAddr = "[::1]:0".parse().expect("addr");
    match UdpTransport::bind(UdpConfig::new(addr)) {
        Ok(t) => Some(t),
        Err(Error::Bind { source, .. }) => {
            eprintln!("\n*** SKIPPED: no IPv6 loopback on this host ({source}) ***\n");
            None
        }
        Err(e) => panic!("bind [::1]: {e}"),
    }
}

#[tokio::test]
async fn ipv6_loopback_request_response() {
    let Some((a, mut a_rx)) = bind_v6_loopback() else {
        return;
    };
    let Some((b, mut b_rx)) = bind_v6_loopback() else {
        return;
    };
    assert!(!a.is_dual_stack());
    let req = options_request("sip:x@[::1]", "UDP", "[::1]:9", 6);
    a.send_message(&req, &b.local_addr().into())
        .await
        .expect("send");
    let got = next_message(&mut b_rx).await;
    assert_eq!(got.source, a.local_addr());
    let via = got.message.top_via().expect("via");
    assert_eq!(via.rport(), Some(Some(a.local_addr().port())));
    assert_eq!(via.received(), Some(a.local_addr().ip()));
    b.send_response(&ok_response(&got.message), None)
        .await
        .expect("respond over v6");
    let resp = next_message(&mut a_rx).await;
    assert_eq!(resp.message.status_code(), Some(200));
    assert_eq!(resp.source, b.local_addr());

    // An IPv6-only socket cannot reach IPv4.
    let v4: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
    assert!(matches!(
        a.send_message(&req, &v4.into()).await,
        Err(Error::AddressFamilyMismatch { .. })
    ));
}

#[tokio::test]
async fn dual_stack_socket_serves_ipv4_with_plain_addresses() {
    let any6: SocketAddr = "[::]:0".parse().expect("addr");
    let (d, mut d_rx) = match UdpTransport::bind(UdpConfig::new(any6)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("\n*** SKIPPED: cannot bind [::] on this host ({e}) ***\n");
            return;
        }
    };
    assert!(d.is_dual_stack());
    let (a, mut a_rx) = bind_v4();
    let to: SocketAddr = SocketAddr::from(([127, 0, 0, 1], d.local_addr().port()));
    let req = options_request("sip:x@127.0.0.1", "UDP", "127.0.0.1:9", 4);
    a.send_message(&req, &to.into()).await.expect("send");
    let got = next_message(&mut d_rx).await;
    // The source is reported as IPv4, not ::ffff:127.0.0.1, and so is the stamp.
    assert_eq!(got.source, a.local_addr());
    assert_eq!(
        got.message.top_via().expect("via").received(),
        Some(a.local_addr().ip())
    );
    d.send_response(&ok_response(&got.message), None)
        .await
        .expect("v4 out of a dual-stack socket");
    let resp = tokio::time::timeout(WAIT, a_rx.recv())
        .await
        .expect("bounded")
        .expect("event");
    assert!(matches!(resp, TransportEvent::Message(m) if m.message.status_code() == Some(200)));
}

/// A received message holds only its own bytes, not a slice of a receive buffer shared with
/// other datagrams: an application that keeps a few messages (or a queue of events waiting for
/// it) must not pin a large buffer each, whatever else arrived in between (big keepalives
/// here). Responses are not stamped, so they come out as read.
#[tokio::test]
async fn a_kept_message_holds_only_its_own_bytes() {
    let (client, _client_rx) = bind_v4();
    let (server, mut server_rx) = bind_v4();
    let dest = Destination::new(server.local_addr());
    let raw = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("raw");
    let mut kept = Vec::new();
    for n in 0..20 {
        let req = options_request("sip:x@127.0.0.1", "UDP", "127.0.0.1:9", n);
        let resp = ok_response(&req);
        client.send_message(&resp, &dest).await.expect("send");
        // A 60,000-byte keepalive (CRLFs only) between messages: no event, but read.
        raw.send_to(&vec![b'\n'; 60_000], server.local_addr())
            .await
            .expect("keepalive");
        let got = next_message(&mut server_rx).await;
        assert_eq!(got.message.status_code(), Some(200));
        kept.push(got);
    }
    // Each message is the only owner of its allocation.
    let only: Vec<bool> = kept
        .into_iter()
        .map(|m| m.message.into_bytes().is_unique())
        .collect();
    assert!(only.iter().all(|u| *u), "{only:?}");
}
