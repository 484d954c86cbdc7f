//! Bad datagrams from the network: each is reported and counted, and the transport keeps
//! serving. Keepalives are counted and produce no event.

mod common;

use common::{bind_v4, next_event, next_message, raw_socket_for, wait_stats};
use sip_transport_api::{Error, Transport, TransportEvent};

#[tokio::test]
async fn junk_and_truncated_datagrams_are_reported_and_skipped() {
    let (t, mut rx) = bind_v4();
    let raw = raw_socket_for(t.local_addr()).await;
    let from = raw.local_addr().expect("raw addr");
    let to = t.local_addr();

    raw.send_to(&[0xff, 0x00, 0x13, 0x37], to)
        .await
        .expect("junk");
    match next_event(&mut rx).await {
        TransportEvent::Error { peer, flow, error } => {
            assert_eq!(peer, Some(from));
            assert_eq!(flow, None);
            assert!(matches!(error, Error::Malformed { .. }), "{error:?}");
            assert!(error.is_framing());
        }
        other => panic!("expected an error event, got {other:?}"),
    }

    // RFC 3261 §18.3: fewer body bytes than Content-Length is an error on a datagram.
    let truncated = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-t\r\n\
                      Content-Length: 100\r\n\r\nhello";
    raw.send_to(truncated, to).await.expect("truncated");
    match next_event(&mut rx).await {
        TransportEvent::Error {
            peer,
            error: Error::Truncated { expected, actual },
            ..
        } => {
            assert_eq!(peer, Some(from));
            assert_eq!((expected, actual), (100, 5));
        }
        other => panic!("expected a Truncated error, got {other:?}"),
    }

    // Keepalives (CRLF, or nothing at all) produce no event.
    raw.send_to(b"\r\n\r\n", to).await.expect("keepalive");
    raw.send_to(b"", to).await.expect("empty");
    let valid = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-ok\r\n\
                  Call-ID: after-junk\r\nContent-Length: 0\r\n\r\n";
    raw.send_to(valid, to).await.expect("valid");
    let got = next_message(&mut rx).await;
    assert_eq!(got.message.call_id(), Some("after-junk"));
    assert_eq!(got.source, from);

    let s = wait_stats(&t, "counters", |s| s.keepalives_received == 2).await;
    assert_eq!(s.malformed, 2);
    assert_eq!(s.messages_received, 1);
    assert_eq!(s.dropped, 0);
    let expected_bytes = 4 + truncated.len() + 4 + valid.len();
    assert_eq!(s.bytes_received, expected_bytes as u64);
}

#[tokio::test]
async fn bytes_past_content_length_are_dropped() {
    let (t, mut rx) = bind_v4();
    let raw = raw_socket_for(t.local_addr()).await;
    // RFC 3261 §18.3: bytes past the Content-Length body are discarded.
    let dgram = b"MESSAGE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-x\r\n\
                  Content-Length: 2\r\n\r\nabTRAILING";
    raw.send_to(dgram, t.local_addr()).await.expect("send");
    let got = next_message(&mut rx).await;
    assert_eq!(&got.message.body()[..], b"ab");
    assert_eq!(t.stats().malformed, 0);
}

#[tokio::test]
async fn oversized_for_limits_is_reported() {
    use sip_transport_api::Limits;
    use sip_transport_udp::UdpConfig;
    let (t, mut rx) = common::bind(
        UdpConfig::default().with_limits(Limits::default().with_max_message_size(1000)),
    );
    let raw = raw_socket_for(t.local_addr()).await;
    let mut big = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 2000\r\n\r\n".to_vec();
    big.resize(big.len() + 2000, b'z');
    raw.send_to(&big, t.local_addr()).await.expect("send");
    match next_event(&mut rx).await {
        TransportEvent::Error {
            error: Error::MessageTooLarge { size, limit: 1000 },
            ..
        } => assert_eq!(size, big.len()),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    assert_eq!(t.stats().malformed, 1);
}
