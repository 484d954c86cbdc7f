//! Lifecycle: close() reports Closed and refuses later sends, dropping the last handle ends
//! the receive task and frees the port, and binding fails cleanly where it must.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{WAIT, bind, bind_v4, bounded, next_event, wait_stats};
use sip_transport_api::{Error, FlowId, Limits, Transport, TransportEvent};
use sip_transport_testkit::{ok_response, options_request};
use sip_transport_udp::{UdpConfig, UdpTransport};

#[tokio::test]
async fn close_reports_closed_then_refuses_sends() {
    let (t, mut rx) = bind_v4();
    let (peer, _peer_rx) = bind_v4();
    let req = options_request("sip:x@h", "UDP", "h", 1);
    assert!(!t.is_closed());
    bounded("close", t.close()).await;
    assert!(t.is_closed());
    assert!(matches!(next_event(&mut rx).await, TransportEvent::Closed));
    // Nothing follows Closed: the channel ends.
    assert!(bounded("channel end", rx.recv()).await.is_none());

    let e = t
        .send_message(&req, &peer.local_addr().into())
        .await
        .expect_err("closed");
    assert!(matches!(e, Error::TransportClosed));
    assert!(!e.is_recoverable());
    assert!(matches!(
        t.send_on_flow(FlowId::next(), &req).await,
        Err(Error::TransportClosed)
    ));
    let resp = ok_response(&options_request("sip:x@h", "UDP", "127.0.0.1:9", 1));
    assert!(matches!(
        t.send_response(&resp, None).await,
        Err(Error::TransportClosed)
    ));
    // A second close is a no-op.
    bounded("second close", t.close()).await;
}

#[tokio::test]
async fn close_stops_receiving() {
    let (t, mut rx) = bind_v4();
    let (peer, _peer_rx) = bind_v4();
    bounded("close", t.close()).await;
    assert!(matches!(next_event(&mut rx).await, TransportEvent::Closed));
    let req = options_request("sip:x@h", "UDP", "h", 2);
    peer.send_message(&req, &t.local_addr().into())
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(t.stats().messages_received, 0);
    assert!(bounded("channel end", rx.recv()).await.is_none());
}

#[tokio::test]
async fn close_with_a_full_channel_is_bounded_by_close_grace() {
    let grace = Duration::from_millis(200);
    let (t, mut rx) = bind(
        UdpConfig::default().with_limits(
            Limits::default()
                .with_event_queue_depth(1)
                .with_close_grace(grace),
        ),
    );
    let (peer, _peer_rx) = bind_v4();
    let req = options_request("sip:x@h", "UDP", "h", 3);
    peer.send_message(&req, &t.local_addr().into())
        .await
        .expect("send");
    wait_stats(&t, "the channel to fill", |s| s.messages_received == 1).await;
    let started = Instant::now();
    bounded("close", t.close()).await;
    let took = started.elapsed();
    assert!(took >= grace && took < WAIT, "{took:?}");
    // The queued message is still there; Closed could not be added.
    assert!(matches!(
        next_event(&mut rx).await,
        TransportEvent::Message(_)
    ));
    assert!(bounded("channel end", rx.recv()).await.is_none());
}

#[tokio::test]
async fn close_waits_for_room_within_grace() {
    let (t, mut rx) = bind(
        UdpConfig::default().with_limits(
            Limits::default()
                .with_event_queue_depth(1)
                .with_close_grace(WAIT),
        ),
    );
    let (peer, _peer_rx) = bind_v4();
    let req = options_request("sip:x@h", "UDP", "h", 4);
    peer.send_message(&req, &t.local_addr().into())
        .await
        .expect("send");
    wait_stats(&t, "the channel to fill", |s| s.messages_received == 1).await;
    let closer = tokio::spawn({
        let t = t.clone();
        async move { t.close().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        next_event(&mut rx).await,
        TransportEvent::Message(_)
    ));
    assert!(matches!(next_event(&mut rx).await, TransportEvent::Closed));
    bounded("closer", closer).await.expect("close task");
}

#[tokio::test]
async fn dropping_the_last_handle_ends_the_task_and_frees_the_port() {
    let (t, mut rx) = bind_v4();
    let addr = t.local_addr();
    let second = t.clone();
    drop(t);
    // Another handle still exists: the transport keeps serving.
    assert!(!second.is_closed());
    drop(second);
    // The receive task held the last sender besides the transport: the channel ends.
    assert!(bounded("channel end", rx.recv()).await.is_none());
    // And the socket is gone with it.
    let (again, _rx) = UdpTransport::bind(UdpConfig::new(addr)).expect("port is free again");
    assert_eq!(again.local_addr(), addr);
}

#[tokio::test]
async fn dropped_receiver_ends_receiving_but_not_sending() {
    let (t, rx) = bind_v4();
    let (peer, mut peer_rx) = bind_v4();
    drop(rx);
    let req = options_request("sip:x@h", "UDP", "h", 5);
    peer.send_message(&req, &t.local_addr().into())
        .await
        .expect("send");
    t.send_message(&req, &peer.local_addr().into())
        .await
        .expect("sending still works");
    assert!(matches!(
        next_event(&mut peer_rx).await,
        TransportEvent::Message(_)
    ));
    bounded("close", t.close()).await;
}

#[tokio::test]
async fn reuse_port_lets_several_sockets_share_an_address() {
    let (a, _a_rx) = bind(UdpConfig::default().with_reuse_port(true));
    let addr = a.local_addr();
    let (b, _b_rx) = bind(UdpConfig::new(addr).with_reuse_port(true));
    assert_eq!(b.local_addr(), addr);
    // Without the option the address is taken.
    match UdpTransport::bind(UdpConfig::new(addr)) {
        Err(Error::Bind { addr: a2, source }) => {
            assert_eq!(a2, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("expected AddrInUse, got {other:?}"),
    }
}

#[tokio::test]
async fn buffer_sizes_are_applied() {
    let (t, _rx) = bind(
        UdpConfig::default()
            .with_recv_buffer_size(256 * 1024)
            .with_send_buffer_size(128 * 1024),
    );
    assert!(t.local_addr().port() != 0);
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    // TEST-NET-1 is not assigned to this host.
    let addr: SocketAddr = "192.0.2.1:0".parse().expect("addr");
    match UdpTransport::bind(UdpConfig::new(addr)) {
        Err(Error::Bind { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[test]
fn bind_outside_a_runtime_is_an_error_not_a_panic() {
    match UdpTransport::bind(UdpConfig::default()) {
        Err(Error::Bind { source, .. }) => {
            assert!(source.to_string().contains("runtime"), "{source}")
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_the_multi_thread_runtime() {
    let (t, mut rx) = bind_v4();
    let (peer, _peer_rx) = bind_v4();
    for n in 0..20 {
        let req = options_request("sip:x@h", "UDP", "h", n);
        peer.send_message(&req, &t.local_addr().into())
            .await
            .expect("send");
        assert!(matches!(
            next_event(&mut rx).await,
            TransportEvent::Message(_)
        ));
    }
    bounded("close", t.close()).await;
    assert!(matches!(next_event(&mut rx).await, TransportEvent::Closed));
}

#[tokio::test]
async fn extreme_queue_depths_do_not_panic() {
    for depth in [0, usize::MAX] {
        let (t, mut rx) =
            bind(UdpConfig::default().with_limits(Limits::default().with_event_queue_depth(depth)));
        let (peer, _peer_rx) = bind_v4();
        let req = options_request("sip:x@h", "UDP", "h", 6);
        peer.send_message(&req, &t.local_addr().into())
            .await
            .expect("send");
        assert!(matches!(
            next_event(&mut rx).await,
            TransportEvent::Message(_)
        ));
    }
}
