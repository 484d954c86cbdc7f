//! A peer that stops reading once the kernel holds everything we wrote: the connection's own
//! stall timer sees an empty queue, so only `TCP_USER_TIMEOUT` (= `Limits::write_timeout`)
//! ends it. Without it the connection, and the messages it accepted, stayed until the idle
//! timeout (300 s). Linux-specific (the option, and loopback's zero-window behaviour).
#![cfg(target_os = "linux")]

mod support;

use std::time::{Duration, Instant};

use sip_transport_api::{CloseReason, Error, Limits, Transport, TransportEvent};
use sip_transport_ws::WsConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_at_the_write_timeout_with_bytes_in_the_kernel() {
    let write_timeout = Duration::from_millis(500);
    let limits = Limits::default().with_write_timeout(write_timeout);
    let (server, mut events) = bind(WsConfig::default().with_limits(limits));
    // Upgraded, then never read from again.
    let _stuck = raw_client(server.local_addr(), Some("sip")).await;
    let flow = opened_flow(&mut events).await;
    // Few enough to leave our queue at once (the kernel's buffers take them), so the
    // connection's own stall timer has nothing to time.
    let big = sip_transport_testkit::request_with_body("MESSAGE", "WS", "h.invalid", 1, 60_000);
    for _ in 0..4 {
        server.send_on_flow(flow, &big).await.expect("accepted");
    }
    let started = Instant::now();
    let (reason, error) = tokio::time::timeout(WAIT, async {
        let mut error = None;
        loop {
            match events.recv().await {
                Some(TransportEvent::Error { error: e, .. }) => error = Some(e),
                Some(TransportEvent::ConnectionClosed { reason, .. }) => return (reason, error),
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await
    .expect("closed well before the idle timeout");
    let took = started.elapsed();
    assert_eq!(reason, CloseReason::WriteTimeout, "after {took:?}");
    assert!(took < write_timeout + Duration::from_secs(4), "{took:?}");
    if let Some(e) = error {
        assert!(matches!(e, Error::WriteTimeout { .. }), "{e:?}");
    }
    server.close().await;
}
