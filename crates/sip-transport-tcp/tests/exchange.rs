//! Message exchange over real loopback sockets: request/response both ways, framing of big,
//! batched and fragmented messages, connection reuse, response routing (RFC 3261 §18.2.2),
//! IPv6, and close().

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sip_transport_api::{
    CloseReason, Destination, Direction, Error, Limits, Transport, TransportEvent,
};
use sip_transport_tcp::{TcpConfig, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_both_ways() {
    let (a, a_rx) = server(Limits::default()).await;
    let (b, b_rx) = server(Limits::default()).await;
    let mut a_fwd = spawn_uas(Arc::clone(&a), a_rx);
    let mut b_fwd = spawn_uas(Arc::clone(&b), b_rx);

    // A -> B: B answers over the same flow.
    let req = options(a.local_addr(), 1);
    let flow = a
        .send_message(&req, &Destination::new(b.local_addr()))
        .await
        .expect("send")
        .expect("a flow");
    let got = wait_fwd(&mut b_fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got.message.call_id(), req.call_id());
    assert_eq!(got.kind, sip_transport_api::TransportKind::Tcp);
    assert!(got.flow.is_some());
    // RFC 3581 §4: rport filled and received added on receipt.
    let via = got.message.top_via().expect("via");
    assert_eq!(via.rport(), Some(Some(got.source.port())));
    let resp = wait_fwd(&mut a_fwd, |ev| match ev {
        TransportEvent::Message(m) if m.message.is_response() => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(resp.flow, Some(flow), "response came back on our flow");
    assert_eq!(resp.message.status_code(), Some(200));

    // B -> A: a separate dial to A's listener, answered too.
    let req = options(b.local_addr(), 2);
    b.send_message(&req, &Destination::new(a.local_addr()))
        .await
        .expect("send back");
    let resp = wait_fwd(&mut b_fwd, |ev| match ev {
        TransportEvent::Message(m) if m.message.is_response() => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(resp.message.call_id(), req.call_id());
    a.close().await;
    b.close().await;
    assert_eq!(a.task_count(), 0);
    assert_eq!(b.task_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_kilobyte_message() {
    let (srv, mut rx) = server(Limits::default()).await;
    let (cli, _crx) = TcpTransport::bind(TcpConfig::client())
        .await
        .expect("client");
    let big = sip_transport_testkit::request_with_body("MESSAGE", "TCP", "127.0.0.1:9", 1, 10_000);
    cli.send_message(&big, &Destination::new(srv.local_addr()))
        .await
        .expect("send");
    let m = next_message(&mut rx).await;
    assert_eq!(m.message.body().len(), 10_000);
    assert_eq!(&m.message.body()[..], &big.body()[..]);
    cli.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_in_one_segment() {
    let (srv, mut rx) = server(Limits::default()).await;
    let mut raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    let mut batch = Vec::new();
    for n in 0..50 {
        batch.extend_from_slice(options("127.0.0.1:9".parse().expect("addr"), n).as_bytes());
    }
    raw.write_all(&batch).await.expect("write");
    for n in 0..50 {
        let m = next_message(&mut rx).await;
        assert_eq!(
            m.message.cseq().map(|c| u64::from(c.seq)),
            Some(n),
            "in order"
        );
    }
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_split_over_many_writes() {
    let (srv, mut rx) = server(Limits::default()).await;
    let mut raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    raw.set_nodelay(true).expect("nodelay");
    let msg = sip_transport_testkit::request_with_body("MESSAGE", "TCP", "127.0.0.1:9", 7, 300);
    for chunk in msg.as_bytes().chunks(7) {
        raw.write_all(chunk).await.expect("write");
        raw.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let m = next_message(&mut rx).await;
    assert_eq!(m.message.as_bytes().len(), msg.len());
    assert_eq!(m.message.body(), msg.body());
    srv.close().await;
}

/// 1,000 transactions each way over one connection: the inbound connection is reused for
/// requests to that peer, and responses go back over the flow they came on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_reuse_both_directions() {
    const N: u64 = 1_000;
    let (a, a_rx) = server(Limits::default()).await;
    let (b, b_rx) = server(Limits::default()).await;
    let mut a_fwd = spawn_uas(Arc::clone(&a), a_rx);
    let mut b_fwd = spawn_uas(Arc::clone(&b), b_rx);
    let to_b = Destination::new(b.local_addr());
    let mut flows = std::collections::HashSet::new();
    for n in 0..N {
        let f = a
            .send_message(&options(a.local_addr(), n), &to_b)
            .await
            .expect("send");
        flows.insert(f);
    }
    assert_eq!(flows.len(), 1, "one connection for all requests");
    let (mut b_reqs, mut a_resps, mut a_source) = (0, 0, None);
    let (mut a_opened, mut b_opened) = (vec![], vec![]);
    let mut b_flow = None;
    while b_reqs < N || a_resps < N {
        tokio::select! {
            ev = b_fwd.recv() => match ev {
                Some(TransportEvent::Message(m)) => {
                    b_reqs += 1;
                    a_source = Some(m.source);
                    b_flow = m.flow;
                }
                Some(TransportEvent::ConnectionOpened { direction, .. }) => b_opened.push(direction),
                _ => {}
            },
            ev = a_fwd.recv() => match ev {
                Some(TransportEvent::Message(m)) => {
                    assert!(m.message.is_response());
                    assert_eq!(Some(m.flow), flows.iter().next().copied(), "on the request's flow");
                    a_resps += 1;
                }
                Some(TransportEvent::ConnectionOpened { direction, .. }) => a_opened.push(direction),
                _ => {}
            },
            _ = tokio::time::sleep(WAIT) => panic!("stalled at {b_reqs} requests, {a_resps} responses"),
        }
    }
    // Now B sends to A's source address: the inbound connection is reused (RFC 5923 spirit).
    let a_src = Destination::new(a_source.expect("source"));
    for n in 0..N {
        let f = b
            .send_message(&options(b.local_addr(), N + n), &a_src)
            .await
            .expect("send back");
        assert_eq!(f, b_flow, "B reuses the inbound flow");
    }
    let (mut a_reqs, mut b_resps) = (0, 0);
    while a_reqs < N || b_resps < N {
        tokio::select! {
            ev = a_fwd.recv() => match ev {
                Some(TransportEvent::Message(_)) => a_reqs += 1,
                Some(TransportEvent::ConnectionOpened { direction, .. }) => a_opened.push(direction),
                _ => {}
            },
            ev = b_fwd.recv() => match ev {
                Some(TransportEvent::Message(m)) => {
                    assert!(m.message.is_response());
                    assert_eq!(m.flow, b_flow, "responses to B come on the same connection");
                    b_resps += 1;
                }
                Some(TransportEvent::ConnectionOpened { direction, .. }) => b_opened.push(direction),
                _ => {}
            },
            _ = tokio::time::sleep(WAIT) => panic!("stalled at {a_reqs} requests, {b_resps} responses"),
        }
    }
    a.close().await;
    b.close().await;
    assert_eq!(
        a_opened,
        vec![Direction::Outbound],
        "exactly one connection on A"
    );
    assert_eq!(
        b_opened,
        vec![Direction::Inbound],
        "exactly one connection on B"
    );
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        (sa.connections_dialed, sa.connections_accepted),
        (1, 0),
        "{sa:?}"
    );
    assert_eq!(
        (sb.connections_dialed, sb.connections_accepted),
        (0, 1),
        "{sb:?}"
    );
    assert_eq!(sa.messages_sent, 2 * N);
    assert_eq!(sb.messages_sent, 2 * N);
}

/// Every connection produces exactly one ConnectionOpened and one ConnectionClosed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opened_and_closed_events_once_per_connection() {
    let (a, mut a_rx) = server(Limits::default()).await;
    let (b, mut b_rx) = server(Limits::default()).await;
    let to_b = Destination::new(b.local_addr());
    for n in 0..20 {
        a.send_message(&options(a.local_addr(), n), &to_b)
            .await
            .expect("send");
    }
    let mut b_events = vec![];
    let mut got = 0;
    while got < 20 {
        let ev = timeout(WAIT, b_rx.recv())
            .await
            .expect("in time")
            .expect("open");
        got += usize::from(matches!(ev, TransportEvent::Message(_)));
        b_events.push(ev);
    }
    a.close().await;
    b.close().await;
    while let Ok(ev) = b_rx.try_recv() {
        b_events.push(ev);
    }
    let mut a_events = vec![];
    while let Ok(ev) = a_rx.try_recv() {
        a_events.push(ev);
    }
    let drain = |events: Vec<TransportEvent>| {
        let (mut opened, mut closed, mut end) = (vec![], vec![], false);
        for ev in events {
            match ev {
                TransportEvent::ConnectionOpened { direction, .. } => opened.push(direction),
                TransportEvent::ConnectionClosed { reason, .. } => closed.push(reason),
                TransportEvent::Closed => end = true,
                _ => {}
            }
        }
        (opened, closed, end)
    };
    let (ao, ac, aend) = drain(a_events);
    let (bo, bc, bend) = drain(b_events);
    assert_eq!(ao, vec![Direction::Outbound]);
    assert_eq!(bo, vec![Direction::Inbound]);
    assert_eq!(ac.len(), 1, "{ac:?}");
    assert_eq!(bc.len(), 1, "{bc:?}");
    assert!(aend && bend, "Closed is the last event");
}

/// RFC 3261 §18.2.2: the request's flow is gone, so the response goes to the Via address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_flow_falls_back_to_via() {
    let (client, mut c_rx) = server(Limits::default()).await;
    let (srv, mut s_rx) = server(Limits::default()).await;
    let req = options(client.local_addr(), 1);
    let c_flow = client
        .send_message(&req, &Destination::new(srv.local_addr()))
        .await
        .expect("send")
        .expect("flow");
    let got = next_message(&mut s_rx).await;
    let s_flow = got.flow.expect("flow");
    assert!(client.close_flow(c_flow));
    wait_for(&mut s_rx, |ev| match ev {
        TransportEvent::ConnectionClosed { flow, reason, .. } if flow == s_flow => Some(reason),
        _ => None,
    })
    .await;
    let resp = sip_transport_testkit::ok_response(&got.message);
    assert!(matches!(
        srv.send_on_flow(s_flow, &resp).await,
        Err(Error::FlowClosed { flow }) if flow == s_flow
    ));
    srv.send_response(&resp, Some(s_flow))
        .await
        .expect("falls back to the Via address");
    let back = next_message(&mut c_rx).await;
    assert_eq!(back.message.status_code(), Some(200));
    assert_eq!(back.message.call_id(), req.call_id());
    assert_ne!(back.flow, Some(c_flow), "a new connection, to our listener");
    assert_eq!(srv.stats().connections_dialed, 1);
    client.close().await;
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback() {
    let v6 = "[::1]:0".parse().expect("addr");
    let Ok((a, a_rx)) = TcpTransport::bind(TcpConfig::default().with_bind(v6)).await else {
        eprintln!("*** SKIPPED: no IPv6 loopback on this machine ***");
        return;
    };
    let (b, b_rx) = bind(v6, Limits::default()).await;
    let mut a_fwd = spawn_uas(Arc::clone(&a), a_rx);
    let _b_fwd = spawn_uas(Arc::clone(&b), b_rx);
    assert!(a.local_addr().is_ipv6());
    let req = options(a.local_addr(), 1);
    a.send_message(&req, &Destination::new(b.local_addr()))
        .await
        .expect("send");
    let resp = wait_fwd(&mut a_fwd, |ev| match ev {
        TransportEvent::Message(m) if m.message.is_response() => Some(m),
        _ => None,
    })
    .await;
    assert!(resp.source.is_ipv6());
    // An IPv4 destination from a transport bound to an IPv6 address is refused.
    let e = a
        .send_message(
            &req,
            &Destination::new("127.0.0.1:9".parse().expect("addr")),
        )
        .await
        .expect_err("family mismatch");
    assert!(matches!(e, Error::AddressFamilyMismatch { .. }), "{e:?}");
    a.close().await;
    b.close().await;
}

/// close(): everything send_message accepted before close() is written before the
/// connections close; then Closed, and no task is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_queued_messages() {
    const N: u64 = 500;
    let (srv, mut s_rx) = server(Limits::default()).await;
    let (cli, mut c_rx) = TcpTransport::bind(TcpConfig::client())
        .await
        .expect("client");
    let to = Destination::new(srv.local_addr());
    for n in 0..N {
        cli.send_message(&options("127.0.0.1:9".parse().expect("addr"), n), &to)
            .await
            .expect("queued");
    }
    cli.close().await;
    assert!(cli.is_closed());
    assert_eq!(cli.task_count(), 0, "no task outlives close()");
    assert!(matches!(
        cli.send_message(&options("127.0.0.1:9".parse().expect("addr"), 0), &to)
            .await,
        Err(Error::TransportClosed)
    ));
    for n in 0..N {
        let m = next_message(&mut s_rx).await;
        assert_eq!(m.message.cseq().map(|c| u64::from(c.seq)), Some(n));
    }
    let reason = wait_for(&mut s_rx, |ev| match ev {
        TransportEvent::ConnectionClosed { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::PeerClosed);
    // The client reported its own close as a local one, then Closed.
    let mut saw_local = false;
    wait_for(&mut c_rx, |ev| match ev {
        TransportEvent::ConnectionClosed { reason, .. } => {
            saw_local = reason == CloseReason::LocalClose;
            None
        }
        TransportEvent::Closed => Some(()),
        _ => None,
    })
    .await;
    assert!(saw_local);
    assert_eq!(cli.stats().messages_sent, N);
    assert_eq!(
        cli.stats().send_errors,
        1,
        "only the send after close failed"
    );
    srv.close().await;
    assert_eq!(srv.task_count(), 0);
}

/// Concurrent sends to a new destination share one dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_share_one_dial() {
    let (srv, mut s_rx) = server(Limits::default()).await;
    let (cli, _c_rx) = TcpTransport::bind(TcpConfig::client())
        .await
        .expect("client");
    let to = Destination::new(srv.local_addr());
    let mut tasks = Vec::new();
    for n in 0..50 {
        let cli = Arc::clone(&cli);
        let to = to.clone();
        tasks.push(tokio::spawn(async move {
            cli.send_message(&options("127.0.0.1:9".parse().expect("addr"), n), &to)
                .await
                .expect("send")
        }));
    }
    let mut flows = std::collections::HashSet::new();
    for t in tasks {
        flows.insert(timeout(WAIT, t).await.expect("in time").expect("task"));
    }
    assert_eq!(flows.len(), 1);
    for _ in 0..50 {
        next_message(&mut s_rx).await;
    }
    assert_eq!(cli.stats().connections_dialed, 1);
    assert_eq!(srv.stats().connections_accepted, 1);
    cli.close().await;
    srv.close().await;
}

/// A dial that fails reaches every waiting sender as a typed, recoverable error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_failure_is_typed() {
    let (cli, _c_rx) = TcpTransport::bind(TcpConfig::client())
        .await
        .expect("client");
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = l.local_addr().expect("addr");
    drop(l);
    let e = cli
        .send_message(
            &options("127.0.0.1:9".parse().expect("addr"), 1),
            &Destination::new(dead),
        )
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.is_recoverable());
    cli.close().await;
}

/// The raw bytes a peer receives for a message are exactly the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_on_the_wire() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (cli, _c_rx) = TcpTransport::bind(TcpConfig::client())
        .await
        .expect("client");
    let msg = options("127.0.0.1:9".parse().expect("addr"), 3);
    cli.send_message(&msg, &Destination::new(l.local_addr().expect("addr")))
        .await
        .expect("send");
    let (mut peer, _) = timeout(WAIT, l.accept())
        .await
        .expect("in time")
        .expect("accept");
    let mut got = vec![0u8; msg.len()];
    timeout(WAIT, peer.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&got[..], &msg.as_bytes()[..]);
    cli.close().await;
}

/// Dropping the transport without close() still stops the listener and closes connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_without_close_releases_everything() {
    let (srv, mut rx) = server(Limits::default()).await;
    let addr = srv.local_addr();
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    wait_for(&mut rx, |ev| {
        matches!(ev, TransportEvent::ConnectionOpened { .. }).then_some(())
    })
    .await;
    drop(srv);
    let mut buf = [0u8; 16];
    let r = timeout(WAIT, raw.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(r, Ok(0)), "{r:?}");
    // The listener is gone too.
    let again = timeout(WAIT, async {
        loop {
            match TcpStream::connect(addr).await {
                Err(_) => return,
                Ok(s) => {
                    drop(s);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
    .await;
    assert!(again.is_ok(), "the listener still accepts after drop");
}

/// A client that writes its request and then half-closes (FIN) still gets the answer over
/// that connection (RFC 3261 §18.2.2): the server keeps its write side open for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_reaches_a_half_closed_client() {
    let (srv, mut rx) = server(Limits::default()).await;
    let mut raw = TcpStream::connect(srv.local_addr()).await.expect("connect");
    // The Via names a port nothing listens on: the answer can only go over this connection.
    let req = options("127.0.0.1:9".parse().expect("addr"), 7);
    raw.write_all(req.as_bytes()).await.expect("write");
    raw.shutdown().await.expect("half-close");
    let m = next_message(&mut rx).await;
    // An application takes a moment to answer (a lookup, a downstream hop); by then the FIN
    // has been read. The connection waits for the answer, within the close grace (2 s).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resp = sip_transport_testkit::ok_response(&m.message);
    srv.send_response(&resp, m.flow)
        .await
        .expect("answered over the half-closed flow");
    let mut got = Vec::new();
    timeout(WAIT, raw.read_to_end(&mut got))
        .await
        .expect("in time")
        .expect("read");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text:?}");
    assert!(text.contains("CSeq: 7 OPTIONS"), "{text:?}");
    let reason = wait_for(&mut rx, |ev| match ev {
        TransportEvent::ConnectionClosed { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, CloseReason::PeerClosed);
    srv.close().await;
}
