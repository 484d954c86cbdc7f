//! A slow application: when the event channel is full, datagrams are dropped and counted,
//! the receive loop never blocks, and delivery resumes once the consumer reads again.

mod common;

use common::{bind, next_message, raw_socket_for, wait_stats};
use sip_transport_api::{Limits, Transport};
use sip_transport_testkit::options_request;
use sip_transport_udp::UdpConfig;

#[tokio::test]
async fn full_channel_drops_and_recovers() {
    const DEPTH: usize = 4;
    const BURST: u64 = 50;
    let (t, mut rx) = bind(
        UdpConfig::default()
            .with_limits(Limits::default().with_event_queue_depth(DEPTH))
            .with_recv_buffer_size(1 << 20),
    );
    let (client, _client_rx) = common::bind_v4();
    let sent_by = client.local_addr().to_string();
    for n in 0..BURST {
        let req = options_request("sip:x@h", "UDP", &sent_by, n);
        client
            .send_message(&req, &t.local_addr().into())
            .await
            .expect("send");
    }
    let s = wait_stats(&t, "the burst to be read", |s| {
        s.messages_received + s.dropped == BURST
    })
    .await;
    assert_eq!(s.messages_received, DEPTH as u64);
    assert_eq!(s.dropped, BURST - DEPTH as u64);

    // Junk while full: counted as malformed, its error event dropped, nothing blocks.
    let raw = raw_socket_for(t.local_addr()).await;
    raw.send_to(b"junk", t.local_addr()).await.expect("junk");
    wait_stats(&t, "junk to be counted", |s| s.malformed == 1).await;

    // The first DEPTH messages are the ones kept, in order.
    for n in 0..DEPTH as u64 {
        let got = next_message(&mut rx).await;
        assert_eq!(
            got.message.call_id(),
            Some(format!("test-{n}@example.invalid").as_str())
        );
    }
    // Consumer is back: new messages flow again.
    for n in 100..103 {
        let req = options_request("sip:x@h", "UDP", &sent_by, n);
        client
            .send_message(&req, &t.local_addr().into())
            .await
            .expect("send");
        let got = next_message(&mut rx).await;
        assert_eq!(got.message.cseq().map(|c| c.seq), Some(n as u32));
    }
    let s = t.stats();
    assert_eq!(s.messages_received, DEPTH as u64 + 3);
    assert_eq!(s.dropped, BURST - DEPTH as u64);
    // Nothing else is queued.
    assert!(rx.try_recv().is_err());
}
