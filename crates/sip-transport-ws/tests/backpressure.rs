//! An application that stops reading events pushes back on its peers (connections stop
//! reading), but does not stop them from writing, nor from closing: responses on a flow still
//! go out while its connection waits for room in the event channel, and `close()` ends such
//! connections within the close grace period, as the stream transports do.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sip_transport_api::{Limits, Transport, TransportEvent};
use sip_transport_testkit::ok_response;
use sip_transport_ws::WsConfig;
use support::*;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Waits until `cond` holds, bounded by [`WAIT`].
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads until the server closes the connection (a Close frame, EOF or a reset) within
/// `within`; panics otherwise.
async fn sees_close(client: &mut WebSocketStream<TcpStream>, within: Duration, who: &str) {
    let ended = tokio::time::timeout(within, async {
        loop {
            match client.next().await {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "{who}: the server did not close the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_connections_that_wait_for_event_room() {
    let grace = Duration::from_millis(500);
    let limits = Limits::default()
        .with_event_queue_depth(2)
        .with_close_grace(grace);
    let (t, events) = bind(WsConfig::default().with_limits(limits));
    let addr = t.local_addr();
    // Nobody reads `events`. A's ConnectionOpened and first request fill the channel; its
    // second request waits for room.
    let mut a = raw_client(addr, Some("sip")).await;
    for n in 0..3 {
        a.send(text_of(&ws_options(n))).await.expect("send");
    }
    wait_until("A's second request is read", || {
        t.stats().messages_received >= 2
    })
    .await;
    // B's ConnectionOpened waits for room.
    let mut b = raw_client(addr, Some("sip")).await;
    wait_until("B is accepted", || t.stats().connections_open >= 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = Instant::now();
    tokio::time::timeout(WAIT, t.close())
        .await
        .expect("close() returns");
    let took = started.elapsed();
    // The grace period for the connections, then for their last events and `Closed`.
    assert!(took < grace * 4, "close() took {took:?}");
    // Both connections were closed by then (the application still holds its receiver).
    sees_close(&mut a, Duration::from_secs(1), "A").await;
    sees_close(&mut b, Duration::from_secs(1), "B").await;
    assert_eq!(t.stats().connections_open, 0);
    drop(events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_written_while_the_event_channel_is_full() {
    let limits = Limits::default().with_event_queue_depth(1);
    let (t, mut events) = bind(WsConfig::default().with_limits(limits));
    let mut client = raw_client(t.local_addr(), Some("sip")).await;
    let flow = match tokio::time::timeout(WAIT, events.recv()).await {
        Ok(Some(TransportEvent::ConnectionOpened { flow, .. })) => flow,
        other => panic!("expected ConnectionOpened, got {other:?}"),
    };
    // The first request fills the channel; the second waits for room (reading stops).
    let requests = [ws_options(1), ws_options(2)];
    for r in &requests {
        client.send(text_of(r)).await.expect("send");
    }
    wait_until("the second request is read", || {
        t.stats().messages_received >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    // The application answers the first request without reading further events.
    let ok = ok_response(&requests[0]);
    t.send_on_flow(flow, &ok).await.expect("queued");
    let got = tokio::time::timeout(Duration::from_secs(3), client.next())
        .await
        .expect("the response is written while the event channel is full")
        .expect("open")
        .expect("a message");
    assert!(
        got.to_text().expect("text").starts_with("SIP/2.0 200"),
        "{got:?}"
    );

    // Nothing was lost: both requests arrive once the application reads again.
    for want in 1..=2u32 {
        let m = loop {
            match tokio::time::timeout(WAIT, events.recv()).await {
                Ok(Some(TransportEvent::Message(m))) => break m,
                Ok(Some(_)) => {}
                other => panic!("expected request {want}, got {other:?}"),
            }
        };
        assert_eq!(m.message.cseq().map(|c| c.seq), Some(want));
    }
    t.close().await;
}
