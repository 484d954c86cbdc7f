//! Issue 9, faults, against the TCP transport in this process: a refused target, a peer
//! that resets mid-message, and a peer that vanishes without a FIN (simulated by a peer that
//! accepts and never reads: without packet filters on loopback, a silent peer is what a
//! vanished one looks like to the sender, and the write timeout must catch it). Each gives a
//! typed error with the right `is_recoverable()`, and the transport's task count and this
//! process's open descriptors return to where they were.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::open_fds;
use sip_transport::tcp::{TcpConfig, TcpTransport};
use sip_transport::{CloseReason, Destination, Error, Limits, Message, Transport, TransportEvent};
use tokio::io::AsyncWriteExt;

fn big_request(n: u64, body: usize) -> Message {
    let text = format!(
        "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-f{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:f@127.0.0.1>;tag=f\r\nTo: <sip:x@127.0.0.1>\r\n\
         Call-ID: fault-{n}\r\nCSeq: 1 MESSAGE\r\nContent-Length: {body}\r\n\r\n{}",
        "x".repeat(body)
    );
    Message::parse(Bytes::from(text)).expect("parses")
}

/// The tests count this process's descriptors: one at a time, each in its own runtime built
/// under the lock (a runtime's epoll and wakeup descriptors count too).
fn serially(test: impl std::future::Future<Output = ()>) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(test);
}

async fn settle(t: &TcpTransport, want_tasks: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.task_count() > want_tasks && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.task_count()
}

#[test]
fn refused_and_reset_peers() {
    serially(refused_and_reset_peers_inner());
}

async fn refused_and_reset_peers_inner() {
    let limits = Limits::default()
        .with_write_timeout(Duration::from_secs(1))
        .with_write_queue_depth(8)
        .with_connect_timeout(Duration::from_secs(2));
    let (t, mut rx) = TcpTransport::bind(
        TcpConfig::default()
            .with_bind("127.0.0.1:0".parse().expect("addr"))
            .with_limits(limits),
    )
    .await
    .expect("bind");
    let tasks0 = t.task_count();
    let fds0 = open_fds(std::process::id());

    // 1. A refusing target.
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let e = t
        .send_message(&big_request(1, 10), &Destination::new(closed_port))
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, Error::Connect { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e:?}"
    );
    assert!(e.is_recoverable(), "refused is recoverable");

    // 2. A peer that resets mid-message (SO_LINGER 0, then close: RST, no FIN).
    let raw = std::net::TcpStream::connect(t.local_addr()).expect("connect");
    let mut raw = tokio::net::TcpStream::from_std({
        raw.set_nonblocking(true).expect("nb");
        raw
    })
    .expect("tokio");
    let peer = raw.local_addr().expect("addr");
    raw.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1\r\nCont")
        .await
        .expect("half a message");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Deprecated because a non-zero linger blocks on drop; zero sends the RST at once.
    #[allow(deprecated)]
    raw.set_linger(Some(Duration::ZERO)).expect("linger");
    drop(raw);
    let reason = wait_closed(&mut rx, peer).await;
    assert!(
        matches!(
            reason,
            CloseReason::Io(std::io::ErrorKind::ConnectionReset) | CloseReason::PeerClosed
        ),
        "{reason:?}"
    );

    // No leaks: tasks and descriptors back where they were.
    let tasks1 = settle(&t, tasks0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fds1 = open_fds(std::process::id());
    eprintln!("faults: tasks {tasks0} -> {tasks1}, open fds {fds0} -> {fds1}");
    assert_eq!(tasks1, tasks0);
    assert!(fds1 <= fds0 + 1, "{fds0} -> {fds1}");
    t.close().await;
}

/// A peer that vanished (accepts, never reads): `WriteQueueFull` (recoverable) to the sender,
/// then the stuck connection closed with `CloseReason::WriteTimeout` about 1 s later, although
/// every accepted message left our outbox at once for the kernel's send buffer (loopback
/// autotunes it to megabytes): `TCP_USER_TIMEOUT` = the write timeout covers those bytes.
#[test]
fn vanished_peer_write_timeout() {
    serially(vanished_peer_write_timeout_inner());
}

async fn vanished_peer_write_timeout_inner() {
    let limits = Limits::default()
        .with_write_timeout(Duration::from_secs(1))
        .with_write_queue_depth(8);
    let (t, mut rx) = TcpTransport::bind(
        TcpConfig::default()
            .with_bind("127.0.0.1:0".parse().expect("addr"))
            .with_limits(limits),
    )
    .await
    .expect("bind");
    // 3. A peer that vanished: accepts, never reads. Large sends fill its window, then our
    // queue; the stuck write times out.
    // Small receive buffer: loopback autotuning otherwise keeps absorbing bytes for seconds
    // (progress, so no write timeout), which a vanished peer's closed window would not.
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    sock.bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let silent = sock.listen(8).expect("listen");
    let silent_addr = silent.local_addr().expect("addr");
    let holder = tokio::spawn(async move {
        let (s, _) = silent.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(8)).await;
        drop(s);
    });
    let mut errors = Vec::new();
    let started = Instant::now();
    for n in 0..400 {
        match t
            .send_message(&big_request(n, 60_000), &Destination::new(silent_addr))
            .await
        {
            Ok(_) => {}
            Err(e) => {
                errors.push(e);
                if errors.len() > 3 {
                    break;
                }
            }
        }
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let closed = wait_closed(&mut rx, silent_addr).await;
    eprintln!(
        "vanished peer: send errors {:?}; connection closed as {closed:?} after {:?}",
        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        started.elapsed()
    );
    assert!(
        errors.iter().all(|e| matches!(
            e,
            Error::WriteQueueFull { .. } | Error::WriteTimeout { .. } | Error::FlowClosed { .. }
        ) && e.is_recoverable()),
        "{errors:?}"
    );
    assert_eq!(closed, CloseReason::WriteTimeout);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed within a bounded time, not at the peer's own close (8 s)"
    );
    holder.abort();

    t.close().await;
}

async fn wait_closed(
    rx: &mut tokio::sync::mpsc::Receiver<TransportEvent>,
    peer: SocketAddr,
) -> CloseReason {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match rx.recv().await.expect("events") {
                TransportEvent::ConnectionClosed {
                    peer: p, reason, ..
                } if p == peer => {
                    return reason;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("connection closed in time")
}
