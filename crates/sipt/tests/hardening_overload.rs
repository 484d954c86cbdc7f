//! Issue 9, overload, against the transports in this process (the limits under test are
//! knobs `sipt serve` does not expose, and events and counters are read directly):
//!
//! - slowloris: 1,000 TCP and 200 TLS connections drip one byte a second into a header block
//!   while normal traffic (paced, 2,000/s) runs; its transactions stay at >= 95% of a baseline
//!   measured in the same test, and every slow connection is cut at the header-read timeout
//!   (4 s here, CI-sized: the default is 10 s) with `CloseReason::HeaderReadTimeout`;
//! - connection flood: per-IP (16) and total (48) limits; connections over them are closed at
//!   once, existing flows keep working, RSS stays under a stated bound after 2,000 refusals;
//! - slow consumer: the application stops reading events for 3 s (CI-sized; the issue says
//!   10 s) under load: UDP drops and counts, TCP stops reading so the peer's writes block, and
//!   everything resumes after, with no TCP message lost.
//!
//! The tests run one at a time (a lock) so timing and RSS readings are not disturbed by each
//! other. RSS is this test process's VmRSS: server and clients together.

// Each #[tokio::test] has its own runtime on its own thread; the std lock held across awaits
// serialises whole tests, which is the point.
#![allow(clippy::await_holding_lock)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::rss_kib;
use sip_transport::tcp::{TcpConfig, TcpTransport};
use sip_transport::tls::{TlsConfig, TlsTransport};
use sip_transport::udp::{UdpConfig, UdpTransport};
use sip_transport::{CloseReason, Limits, Transport, TransportEvent};
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::ok_response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::Receiver;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn self_rss() -> u64 {
    rss_kib(std::process::id())
}

fn raise_fd_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

fn request(proto: &str, n: u64) -> Vec<u8> {
    format!(
        "OPTIONS sip:load@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{proto} 127.0.0.1:9;branch=z9hG4bK-load-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:load@127.0.0.1>;tag=l\r\nTo: <sip:load@127.0.0.1>\r\n\
         Call-ID: load-{n}\r\nCSeq: {} OPTIONS\r\nContent-Length: 0\r\n\r\n",
        n % 1_000_000 + 1
    )
    .into_bytes()
}

#[derive(Default)]
struct Tally {
    header_timeouts: AtomicU64,
    messages: AtomicU64,
}

/// Answers every request over its flow; counts header-read timeouts.
fn respond(t: Arc<dyn Transport>, mut rx: Receiver<TransportEvent>, tally: Arc<Tally>) {
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            match ev {
                TransportEvent::Message(m) => {
                    tally.messages.fetch_add(1, Relaxed);
                    if m.message.method().is_some()
                        && let Some(flow) = m.flow
                    {
                        let _ = t.send_on_flow(flow, &ok_response(&m.message)).await;
                    }
                }
                TransportEvent::ConnectionClosed {
                    reason: CloseReason::HeaderReadTimeout,
                    ..
                } => {
                    tally.header_timeouts.fetch_add(1, Relaxed);
                }
                TransportEvent::Closed => break,
                _ => {}
            }
        }
    });
}

/// Normal traffic: `conns` connections, one transaction in flight each, each paced to
/// `per_conn_rate` per second, counting answers.
///
/// Paced, not saturating: the slow clients run in this process on the same 2 cores, so a
/// saturating load would measure the attackers' own CPU cost (about 3,600 extra syscalls a
/// second here) as much as the server's. The offered rate (2,000/s) is well under the
/// closed-loop capacity measured here (~20,000/s on 2 cores); a server that stalls behind
/// the slow connections falls behind it.
fn normal_traffic(
    addr: SocketAddr,
    conns: usize,
    per_conn_rate: u64,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicU64>,
) {
    for c in 0..conns {
        let done = done.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.set_nodelay(true).ok();
            let mut buf = vec![0u8; 4096];
            let mut have = 0usize;
            let mut n = c as u64 * 1_000_000_000;
            let mut pace = tokio::time::interval(Duration::from_micros(1_000_000 / per_conn_rate));
            while stop.load(Relaxed) == 0 {
                pace.tick().await;
                n += 1;
                if s.write_all(&request("TCP", n)).await.is_err() {
                    break;
                }
                // One response (Content-Length: 0): read to the empty line.
                loop {
                    if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.copy_within(end + 4..have, 0);
                        have -= end + 4;
                        break;
                    }
                    match s.read(&mut buf[have..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => have += k,
                    }
                }
                done.fetch_add(1, Relaxed);
            }
        });
    }
}

/// Transactions completed in each of `windows` windows of `len`.
async fn windows(done: &AtomicU64, windows: usize, len: Duration) -> Vec<u64> {
    let mut out = Vec::with_capacity(windows);
    let mut last = done.load(Relaxed);
    let mut tick = tokio::time::interval(len);
    tick.tick().await;
    for _ in 0..windows {
        tick.tick().await;
        let now = done.load(Relaxed);
        out.push(now - last);
        last = now;
    }
    out
}

/// Drips `OPTIONS ...` one byte a second after `go`; returns how long after its first byte
/// the server closed it (None: still open at the deadline).
async fn drip<S>(mut s: S, mut go: tokio::sync::watch::Receiver<bool>) -> Option<Duration>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if go.wait_for(|g| *g).await.is_err() {
        return None;
    }
    let bytes = b"OPTIONS sip:slow@127.0.0.1 SIP/2.0\r\n";
    let first = Instant::now();
    let mut buf = [0u8; 64];
    for b in bytes.iter().take(15) {
        if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
            return Some(first.elapsed());
        }
        // Wait a second, or notice the close.
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(first.elapsed()),
            Ok(Ok(_)) => return None,
            Err(_) => {}
        }
    }
    None
}

const HEADER_TIMEOUT: Duration = Duration::from_secs(4);
const SLOW_TCP: usize = 1_000;
const SLOW_TLS: usize = 200;

/// One retry, and only for the throughput comparison: CI runners and this 2-core machine are
/// shared with other jobs, and a compile elsewhere can take a core away for a second. The
/// cut-off assertions must hold on every attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_tcp_and_tls() {
    let _serial = serial();
    raise_fd_limit();
    for attempt in 1..=2 {
        let (b, d) = slowloris_once().await;
        if d * 100 >= b * 95 {
            return;
        }
        eprintln!("slowloris attempt {attempt}: normal traffic {d} vs baseline {b}");
    }
    panic!("normal traffic fell below 95% of its baseline on both attempts");
}

/// Returns normal transactions completed in the baseline period and in the same length of
/// time while the slow connections drip.
async fn slowloris_once() -> (u64, u64) {
    let limits = Limits::default().with_header_read_timeout(HEADER_TIMEOUT);
    let (tcp, tcp_rx) = TcpTransport::bind(
        TcpConfig::default()
            .with_bind("127.0.0.1:0".parse().expect("addr"))
            .with_limits(limits.clone()),
    )
    .await
    .expect("tcp");
    let pki = TestPki::generate();
    let (tls, tls_rx) = TlsTransport::bind(
        TlsConfig::default()
            .with_bind("127.0.0.1:0".parse().expect("addr"))
            .with_certificate_files(&pki.server.cert_path, &pki.server.key_path)
            .with_limits(limits),
    )
    .await
    .expect("tls");
    let tally = Arc::new(Tally::default());
    respond(tcp.clone(), tcp_rx, tally.clone());
    respond(tls.clone(), tls_rx, tally.clone());

    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicU64::new(0));
    normal_traffic(tcp.local_addr(), 4, 500, done.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let win = Duration::from_millis(250);
    let baseline = windows(&done, 10, win).await;
    let rss_before = self_rss();

    // The slow connections: all connected (TLS handshakes done) before the drip starts.
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let mut slow = Vec::new();
    for _ in 0..SLOW_TCP {
        let s = TcpStream::connect(tcp.local_addr())
            .await
            .expect("slow tcp");
        slow.push(tokio::spawn(drip(s, go.clone())));
    }
    let connector = tokio_rustls::TlsConnector::from(common::tls_client_config(&pki));
    for _ in 0..SLOW_TLS {
        let s = TcpStream::connect(tls.local_addr())
            .await
            .expect("slow tls");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let s = connector.connect(name, s).await.expect("TLS handshake");
        slow.push(tokio::spawn(drip(s, go.clone())));
    }
    let connected = tcp.connection_count() + tls_connections(&tls);
    go_tx.send_replace(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Normal traffic while all 1,200 drip (they are cut at 4 s).
    let during = windows(&done, 10, win).await;
    let rss_during = self_rss();
    let (b, d) = (baseline.iter().sum::<u64>(), during.iter().sum::<u64>());
    eprintln!(
        "slowloris: {connected} connections open; normal traffic per {win:?}: baseline {baseline:?} (total {b}), during {during:?} (total {d}); RSS {rss_before} -> {rss_during} KiB"
    );
    let mut cut = Vec::new();
    for h in slow {
        cut.push(
            tokio::time::timeout(Duration::from_secs(20), h)
                .await
                .expect("slow client ends")
                .expect("task"),
        );
    }
    stop.store(1, Relaxed);
    let rss_after = self_rss();
    let closed: Vec<Duration> = cut.iter().flatten().copied().collect();
    let min = closed.iter().min().copied().unwrap_or_default();
    let max = closed.iter().max().copied().unwrap_or_default();
    eprintln!(
        "slowloris: {} of {} cut, {min:?}..{max:?} after their first byte; HeaderReadTimeout events {}; RSS after {rss_after} KiB",
        closed.len(),
        SLOW_TCP + SLOW_TLS,
        tally.header_timeouts.load(Relaxed)
    );
    assert!(connected >= SLOW_TCP + SLOW_TLS, "{connected}");
    assert_eq!(
        closed.len(),
        SLOW_TCP + SLOW_TLS,
        "every slow connection cut"
    );
    assert!(
        min >= HEADER_TIMEOUT - Duration::from_millis(1_100),
        "{min:?}"
    );
    assert!(max <= HEADER_TIMEOUT + Duration::from_secs(3), "{max:?}");
    assert_eq!(
        tally.header_timeouts.load(Relaxed),
        (SLOW_TCP + SLOW_TLS) as u64
    );
    assert!(
        rss_during < rss_before + 64 * 1024,
        "{rss_before} -> {rss_during} KiB"
    );
    tcp.close().await;
    tls.close().await;
    (b, d)
}

fn tls_connections(tls: &TlsTransport) -> usize {
    tls.stats().connections_open as usize
}

async fn connect_from(src: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(format!("{src}:0").parse().expect("addr"))?;
    s.connect(to).await
}

/// True when the server closes the connection within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut b = [0u8; 64];
    matches!(
        tokio::time::timeout(wait, s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn exchange(s: &mut TcpStream, n: u64) -> bool {
    if s.write_all(&request("TCP", n)).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 2048];
    let mut have = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf[have..])).await {
            Ok(Ok(k)) if k > 0 => {
                have += k;
                if buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
                    return buf.starts_with(b"SIP/2.0 200");
                }
            }
            _ => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flood() {
    let _serial = serial();
    raise_fd_limit();
    const PER_IP: usize = 16;
    const TOTAL: usize = 48;
    const FLOOD: usize = 2_000;
    let limits = Limits::default()
        .with_max_connections(TOTAL)
        .with_max_connections_per_ip(PER_IP);
    let (tcp, rx) = TcpTransport::bind(
        TcpConfig::default()
            .with_bind("0.0.0.0:0".parse().expect("addr"))
            .with_limits(limits),
    )
    .await
    .expect("bind");
    let port = tcp.local_addr().port();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let tally = Arc::new(Tally::default());
    respond(tcp.clone(), rx, tally);
    let rss_before = self_rss();

    // Fill: 16 from each of three source addresses = the total limit.
    let mut held = Vec::new();
    for src in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        for _ in 0..PER_IP {
            held.push(connect_from(src, to).await.expect("connect"));
        }
        // One over the per-IP limit: closed at once.
        let mut extra = connect_from(src, to).await.expect("tcp accept");
        assert!(
            closed_within(&mut extra, Duration::from_secs(2)).await,
            "{src}: per-IP"
        );
    }
    // Every held connection is served (proves they were accepted, not refused).
    for (i, s) in held.iter_mut().enumerate() {
        assert!(exchange(s, i as u64).await, "held connection {i}");
    }
    assert_eq!(tcp.connection_count(), TOTAL);
    // Total limit: a fresh source is refused too.
    let mut over = connect_from("127.0.0.5", to).await.expect("tcp accept");
    assert!(
        closed_within(&mut over, Duration::from_secs(2)).await,
        "total"
    );

    // The flood: 2,000 more from 20 addresses, 100 at a time; each closed at once.
    let started = Instant::now();
    let mut refused_fast = 0;
    for batch in 0..FLOOD / 100 {
        let src = format!("127.0.1.{}", batch % 20 + 1);
        let mut conns = Vec::new();
        for _ in 0..100 {
            if let Ok(s) = connect_from(&src, to).await {
                conns.push(s);
            }
        }
        for mut s in conns {
            if closed_within(&mut s, Duration::from_secs(2)).await {
                refused_fast += 1;
            }
        }
    }
    let flood_time = started.elapsed();
    let rss_after = self_rss();
    // Existing flows still work.
    for (i, s) in held.iter_mut().enumerate() {
        assert!(
            exchange(s, 1_000 + i as u64).await,
            "held connection {i} after the flood"
        );
    }
    let stats = tcp.stats();
    eprintln!(
        "flood: {TOTAL} held ({PER_IP} per IP), {refused_fast}/{FLOOD} flood connections closed at once in {flood_time:?}; refused counter {}; RSS {rss_before} -> {rss_after} KiB",
        stats.connections_refused
    );
    assert_eq!(refused_fast, FLOOD);
    assert!(stats.connections_refused >= (FLOOD + 4) as u64, "{stats:?}");
    assert_eq!(tcp.connection_count(), TOTAL);
    // Stated bound: 2,000 refusals leave no more than 16 MiB behind.
    assert!(
        rss_after < rss_before + 16 * 1024,
        "{rss_before} -> {rss_after} KiB"
    );
    tcp.close().await;
}

const PAUSE: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_udp_drops_and_counts() {
    let _serial = serial();
    let limits = Limits::default().with_event_queue_depth(256);
    let (udp, mut rx) = UdpTransport::bind(
        UdpConfig::default()
            .with_bind("127.0.0.1:0".parse().expect("addr"))
            .with_limits(limits),
    )
    .expect("bind");
    let to = udp.local_addr();
    let rss_before = self_rss();
    // The application reads nothing for PAUSE while 20,000 requests arrive.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sent = 20_000u64;
    let started = Instant::now();
    for n in 0..sent {
        sock.send_to(&request("UDP", n), to).await.expect("send");
        if n % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(PAUSE.saturating_sub(started.elapsed())).await;
    let rss_paused = self_rss();
    let st = udp.stats();
    // Resume: what was queued comes out, then new traffic flows.
    let mut queued = 0u64;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        if matches!(ev, TransportEvent::Message(_)) {
            queued += 1;
        }
    }
    for n in 0..50 {
        sock.send_to(&request("UDP", 1_000_000 + n), to)
            .await
            .expect("send");
    }
    let mut after = 0;
    while after < 50 {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(TransportEvent::Message(_))) => after += 1,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    eprintln!(
        "slow consumer udp: sent {sent}, delivered {queued} after the {PAUSE:?} pause, dropped (counted) {}, received {}; RSS {rss_before} -> {rss_paused} KiB; {after}/50 after resuming",
        st.dropped, st.messages_received
    );
    assert!(st.dropped > 0, "{st:?}");
    assert!(queued <= 256 + 1, "the event queue is bounded: {queued}");
    assert!(st.messages_received + st.dropped <= sent, "{st:?}");
    assert_eq!(after, 50, "traffic resumes");
    assert!(
        rss_paused < rss_before + 16 * 1024,
        "{rss_before} -> {rss_paused}"
    );
    udp.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_tcp_pushes_back_without_loss() {
    let _serial = serial();
    let limits = Limits::default().with_event_queue_depth(64);
    let (tcp, mut rx) = TcpTransport::bind(
        TcpConfig::default()
            .with_bind("127.0.0.1:0".parse().expect("addr"))
            .with_limits(limits),
    )
    .await
    .expect("bind");
    let rss_before = self_rss();
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicU64::new(0));
    let mut s = TcpStream::connect(tcp.local_addr()).await.expect("connect");
    let writer = {
        let written = written.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while stop.load(Relaxed) == 0 {
                if s.write_all(&request("TCP", n)).await.is_err() {
                    break;
                }
                n += 1;
                written.store(n, Relaxed);
            }
            s
        })
    };
    // The application does not read for PAUSE: the sender must stall.
    tokio::time::sleep(PAUSE - Duration::from_secs(1)).await;
    let at_2s = written.load(Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_3s = written.load(Relaxed);
    let rss_paused = self_rss();
    // Resume reading; let the sender go on a little, then stop it.
    let mut got = 0u64;
    let resume = Instant::now();
    while resume.elapsed() < Duration::from_millis(500) {
        if let Ok(Some(TransportEvent::Message(_))) =
            tokio::time::timeout(Duration::from_millis(50), rx.recv()).await
        {
            got += 1;
        }
    }
    stop.store(1, Relaxed);
    let _s = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::select! {
                r = rx.recv() => if let Some(TransportEvent::Message(_)) = r { got += 1 },
                _ = tokio::time::sleep(Duration::from_millis(1)) => {
                    if writer.is_finished() { break; }
                }
            }
        }
    })
    .await;
    let total = written.load(Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while got < total && Instant::now() < deadline {
        if let Ok(Some(TransportEvent::Message(_))) =
            tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
        {
            got += 1;
        }
    }
    eprintln!(
        "slow consumer tcp: sender wrote {at_2s} then {at_3s} messages at 2 s / 3 s of the pause (stalled), {total} in all; delivered {got}; RSS {rss_before} -> {rss_paused} KiB"
    );
    assert_eq!(at_2s, at_3s, "the sender's writes block while nobody reads");
    assert!(total > at_3s, "the sender resumes");
    assert_eq!(got, total, "no message lost");
    assert!(
        rss_paused < rss_before + 16 * 1024,
        "{rss_before} -> {rss_paused}"
    );
    tcp.close().await;
}
