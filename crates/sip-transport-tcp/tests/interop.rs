//! Interop with real SIP peers on loopback: SIPp as a UAC against a stateless responder built
//! on `TcpTransport`, and `TcpTransport` as a client of Kamailio. A missing peer skips the test
//! loudly, and fails it under CI (`CI=true`), per the testkit's policy.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sip_transport_api::{Destination, Limits, Transport, TransportEvent};
use sip_transport_testkit::{Kamailio, SippTransport, options_request, sipp_options_uac};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_10k_options_over_tcp() {
    const CALLS: u64 = 10_000;
    let (srv, rx) = server(Limits::default()).await;
    let _fwd = spawn_uas(Arc::clone(&srv), rx);
    let addr = srv.local_addr();
    let outcome = tokio::task::spawn_blocking(move || {
        sipp_options_uac(
            addr,
            SippTransport::Tcp,
            CALLS,
            5_000,
            Duration::from_secs(60),
        )
    })
    .await
    .expect("sipp thread");
    let Some(outcome) = outcome else { return };
    assert_eq!(
        (outcome.successful, outcome.failed, outcome.exit_code),
        (CALLS, 0, Some(0)),
        "{}",
        outcome.screen
    );
    let stats = srv.stats();
    assert_eq!(stats.messages_received, CALLS);
    assert_eq!(stats.messages_sent, CALLS);
    assert_eq!(
        stats.connections_accepted, 1,
        "SIPp -t t1 uses one connection"
    );
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_to_kamailio_over_tcp() {
    const N: u64 = 200;
    let Some(_kam) = Kamailio::start("kamailio-sl") else {
        return;
    };
    let (ours, mut rx) = server(Limits::default()).await;
    let kam: std::net::SocketAddr = "127.0.0.1:5070".parse().expect("addr");
    let sent_by = ours.local_addr().to_string();
    for n in 1..=N {
        let req = options_request("sip:ping@127.0.0.1:5070", "TCP", &sent_by, n);
        // Kamailio may still be opening its listener just after start: retry the first send.
        let mut tries = 0;
        loop {
            match ours.send_message(&req, &Destination::new(kam)).await {
                Ok(_) => break,
                Err(e) if n == 1 && e.is_recoverable() && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("send {n}: {e}"),
            }
        }
    }
    let mut ok = std::collections::HashSet::new();
    while (ok.len() as u64) < N {
        let m = wait_for(&mut rx, |ev| match ev {
            TransportEvent::Message(m) => Some(m),
            _ => None,
        })
        .await;
        assert_eq!(m.message.status_code(), Some(200), "{:?}", m.message);
        ok.insert(m.message.call_id().map(str::to_owned));
    }
    assert_eq!(
        ours.stats().connections_dialed,
        1,
        "all over one connection"
    );
    ours.close().await;
}
