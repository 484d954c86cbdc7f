//! Interop with real peers over UDP on loopback: SIPp as a UAC against a stateless responder
//! built on `UdpTransport`, and `UdpTransport` as a client of Kamailio.
//!
//! A missing peer skips loudly on a developer machine and fails under CI (testkit policy).

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{bind, bind_v4, bounded};
use sip_transport_api::{Transport, TransportEvent};
use sip_transport_testkit::{
    Kamailio, SippTransport, ok_response, options_request, sipp_options_uac,
};
use sip_transport_udp::UdpConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_10k_options_against_our_responder() {
    const CALLS: u64 = 10_000;
    const RATE: u64 = 2_000;
    let (t, mut rx) = bind(UdpConfig::default().with_recv_buffer_size(4 << 20));
    let addr = t.local_addr();
    let responder = tokio::spawn({
        let t = t.clone();
        async move {
            let mut answered = 0u64;
            while let Some(event) = rx.recv().await {
                match event {
                    TransportEvent::Message(m) if m.message.method() == Some("OPTIONS") => {
                        // No flow on UDP: the response goes to the Via (RFC 3261 §18.2.2).
                        t.send_response(&ok_response(&m.message), m.flow)
                            .await
                            .expect("send_response");
                        answered += 1;
                    }
                    TransportEvent::Closed => break,
                    other => panic!("unexpected event {other:?}"),
                }
            }
            answered
        }
    });

    let run = tokio::task::spawn_blocking(move || {
        sipp_options_uac(
            addr,
            SippTransport::Udp,
            CALLS,
            RATE,
            Duration::from_secs(120),
        )
    });
    let outcome = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("SIPp bounded by its own -timeout")
        .expect("SIPp thread");
    t.close().await;
    let answered = bounded("responder", responder).await.expect("responder");
    let Some(outcome) = outcome else {
        return;
    };
    assert_eq!(
        (outcome.successful, outcome.failed, outcome.exit_code),
        (CALLS, 0, Some(0)),
        "SIPp final screen:\n{}",
        outcome.screen
    );
    let s = t.stats();
    eprintln!("SIPp: {CALLS} transactions at {RATE}/s; responder stats {s:?}");
    assert!(answered >= CALLS);
    assert_eq!(s.malformed, 0);
    assert_eq!(s.send_errors, 0);
    assert_eq!(s.messages_sent, answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_to_kamailio_all_answered() {
    const COUNT: u64 = 40;
    let Some(_kamailio) = Kamailio::start("kamailio-sl") else {
        return;
    };
    let kamailio: SocketAddr = "127.0.0.1:5070".parse().expect("addr");
    let (t, mut rx) = bind_v4();
    let sent_by = t.local_addr().to_string();
    let requests: Vec<_> = (1..=COUNT)
        .map(|n| options_request("sip:ping@127.0.0.1:5070", "UDP", &sent_by, n))
        .collect();
    let mut pending: HashSet<String> = requests
        .iter()
        .filter_map(|r| r.call_id().map(str::to_owned))
        .collect();
    assert_eq!(pending.len(), COUNT as usize);

    // Like a UAC's Timer A (RFC 3261 §17.1.1.2): resend what is unanswered, a bounded
    // number of times, so a datagram lost on a busy machine does not fail the test.
    let mut retransmissions = 0;
    for attempt in 0..4 {
        for req in requests
            .iter()
            .filter(|r| r.call_id().is_some_and(|c| pending.contains(c)))
        {
            t.send_message(req, &kamailio.into()).await.expect("send");
            if attempt > 0 {
                retransmissions += 1;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500 << attempt);
        while !pending.is_empty() {
            let Ok(event) = tokio::time::timeout_at(deadline, rx.recv()).await else {
                break;
            };
            match event.expect("channel open") {
                TransportEvent::Message(m) => {
                    assert_eq!(m.source, kamailio);
                    assert_eq!(m.message.status_code(), Some(200), "{:?}", m.message);
                    if let Some(id) = m.message.call_id() {
                        pending.remove(id);
                    }
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    assert!(pending.is_empty(), "unanswered: {pending:?}");
    eprintln!("Kamailio answered {COUNT} OPTIONS ({retransmissions} retransmissions)");
    let s = t.stats();
    assert_eq!(s.messages_received, COUNT);
    assert_eq!(s.malformed + s.send_errors, 0);
    t.close().await;
}
