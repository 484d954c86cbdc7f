//! `sipt serve`: bind every listener, answer requests statelessly, shut down on a signal with
//! a one-line summary.
//!
//! `--workers N` sets the runtime's threads and binds N `SO_REUSEPORT` sockets per udp
//! listener, each with its own responder task; stream connections already run on every
//! worker. `--proxy-protocol` puts the tcp, tls, ws and wss listeners behind a load balancer.
//! `--dscp` marks every listener's and connection's packets.
//!
//! A responder task sends each reply inline while the request's connection is open (or over
//! UDP); a reply that needs a new connection goes to a bounded set of tasks ([`Redials`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use sip_transport::tcp::ProxyProtocolConfig;
use sip_transport::{
    Error, Limits, Message, ReceivedMessage, Transport, TransportEvent, TransportKind,
    TransportStats,
};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::Receiver;

use crate::ServeArgs;
use crate::listen::default_listeners;
use crate::net;
use crate::responder::{Listener, Reply, reply};

pub(crate) async fn run(args: ServeArgs) -> u8 {
    let specs = if !args.listen.is_empty() {
        args.listen.clone()
    } else {
        default_listeners()
    };
    let mut tls = net::TlsOptions::default();
    if specs.iter().any(|s| s.kind.is_secure()) {
        if args.cert.len() != args.key.len() {
            return fail(format!(
                "{} --cert but {} --key: give each certificate its key, in the same order",
                args.cert.len(),
                args.key.len()
            ));
        }
        let mut pairs = Vec::with_capacity(args.cert.len());
        for (c, k) in args.cert.iter().zip(&args.key) {
            match (std::fs::read(c), std::fs::read(k)) {
                (Ok(chain_pem), Ok(key_pem)) => pairs.push(net::Identity { chain_pem, key_pem }),
                (Err(e), _) => return fail(format!("cannot read {}: {e}", c.display())),
                (_, Err(e)) => return fail(format!("cannot read {}: {e}", k.display())),
            }
        }
        let mut pairs = pairs.into_iter();
        let identity = match pairs.next() {
            Some(id) => id,
            None => match net::self_signed() {
                Ok(id) => {
                    println!(
                        "certificate self-signed for localhost, 127.0.0.1, ::1 sha256 {}",
                        net::fingerprint(&id.chain_pem).unwrap_or_default()
                    );
                    id
                }
                Err(e) => return fail(e),
            },
        };
        tls.identity = Some(identity);
        tls.sni_identities = pairs.collect();
    }
    let proxy = args.proxy_protocol.then(|| {
        if args.proxy_from.is_empty() {
            ProxyProtocolConfig::default()
        } else {
            ProxyProtocolConfig::new(args.proxy_from.iter().copied())
        }
    });
    if proxy.is_some() && specs.iter().any(|s| s.kind == TransportKind::Udp) {
        eprintln!(
            "sipt serve: --proxy-protocol applies to tcp, tls, ws and wss listeners, not udp"
        );
    }
    let opts = net::BindOptions {
        limits: serve_limits(&args),
        tls,
        listen: true,
        proxy,
        dscp: args.dscp,
    };
    let workers = args.worker_count();
    let redials = Redials::new(MAX_REDIALS);
    let mut transports: Vec<Arc<dyn Transport>> = Vec::new();
    let mut tasks = Vec::new();
    for spec in specs {
        let bound = if spec.kind == TransportKind::Udp {
            net::bind_udp_group(spec.addr, workers, &opts)
        } else {
            net::bind(spec.kind, spec.addr, &opts)
                .await
                .map(|b| vec![b])
        };
        match bound {
            Ok(group) => {
                if let Some((t, _)) = group.first() {
                    println!("listening {} {}", spec.kind, t.local_addr());
                }
                for (t, rx) in group {
                    tasks.push(tokio::spawn(respond_loop(
                        t.clone(),
                        rx,
                        args.code,
                        args.quiet,
                        redials.clone(),
                    )));
                    transports.push(t);
                }
            }
            Err(e) => {
                eprintln!("sipt: cannot listen on {spec}: {e}");
                for t in &transports {
                    t.close().await;
                }
                return 2;
            }
        }
    }
    if transports.is_empty() {
        eprintln!("sipt: no listener could be opened");
        return 2;
    }
    wait_for_signal().await;
    for t in &transports {
        t.close().await;
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut total = TransportStats::default();
    for t in &transports {
        total += &t.stats();
    }
    println!(
        "summary: received={} sent={} malformed={} dropped={} send_errors={} connections={} refused={} replies_dropped={}",
        total.messages_received,
        total.messages_sent,
        total.malformed,
        total.dropped,
        total.send_errors,
        total.connections_accepted,
        total.connections_refused,
        redials.dropped()
    );
    0
}

fn fail(e: String) -> u8 {
    eprintln!("sipt serve: {e}");
    2
}

/// Limits for a server: the library defaults with the command line's knobs applied (and
/// room for benchmark connection counts by default).
fn serve_limits(args: &ServeArgs) -> Limits {
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let size = count(args.max_message_size);
    let defaults = Limits::default();
    Limits::default()
        .with_max_connections(count(args.max_connections))
        .with_max_connections_per_ip(count(args.max_connections_per_ip))
        .with_idle_timeout(Duration::from_secs(args.idle_timeout))
        .with_handshake_timeout(Duration::from_secs(args.handshake_timeout))
        .with_header_read_timeout(Duration::from_secs(args.header_read_timeout))
        .with_max_message_size(size)
        .with_max_body_size(size)
        .with_max_header_size(defaults.max_header_size.min(size))
        .with_max_line_length(defaults.max_line_length.min(size))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Replies in flight to a new connection at once, server-wide (see [`Redials`]).
const MAX_REDIALS: usize = 256;

/// Replies whose request's connection is gone: RFC 3261 §18.2.2 sends them over a new
/// connection to the Via's address, and that dial can take the connect timeout plus the
/// handshake timeout (10 s each by default), or forever for a host that never answers, which
/// a client can name in its Via on purpose. Each runs in its own task so the responder goes
/// on answering everyone else; at most `limit` at once, so a flood of them cannot grow memory
/// without bound. Beyond that the reply is dropped and counted: a stateless server may drop a
/// response, the client retransmits its request.
#[derive(Clone)]
pub(crate) struct Redials {
    permits: Arc<Semaphore>,
    limit: usize,
    dropped: Arc<AtomicU64>,
}

impl Redials {
    pub(crate) fn new(limit: usize) -> Self {
        Redials {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Replies dropped because `limit` were already waiting for a connection.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Sends `resp` to its Via's address (RFC 3261 §18.2.2) from a task of its own.
    fn spawn(&self, t: &Arc<dyn Transport>, resp: Message, peer: SocketAddr) {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            if self.dropped.fetch_add(1, Relaxed) == 0 {
                tracing::warn!(
                    limit = self.limit,
                    "too many replies waiting for a new connection: dropping replies until \
                     some finish (counted as replies_dropped)"
                );
            } else {
                tracing::debug!(%peer, "reply dropped: too many waiting for a new connection");
            }
            return;
        };
        let t = Arc::clone(t);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = t.send_response(&resp, None).await {
                tracing::debug!(%peer, error = %e, "response not sent over a new connection");
            }
        });
    }
}

/// Sends a reply as RFC 3261 §18.2.2 says. The common cases stay inline and never wait on
/// the network: the request's flow is open (a write queue push), or the transport is UDP (a
/// datagram). Only a reply whose flow is gone needs a new connection, which goes to `redials`.
async fn send_reply(t: &Arc<dyn Transport>, resp: Message, m: &ReceivedMessage, redials: &Redials) {
    // A response with no Via (the request had none) can only go back the way it came.
    let has_via = resp.header("Via").is_some();
    let sent = match m.flow {
        Some(flow) => match t.send_on_flow(flow, &resp).await {
            Err(Error::FlowClosed { .. }) if has_via => {
                redials.spawn(t, resp, m.source);
                return;
            }
            other => other,
        },
        None if has_via => t.send_response(&resp, None).await,
        None => t.send_message(&resp, &m.source.into()).await.map(|_| ()),
    };
    if let Err(e) = sent {
        tracing::debug!(peer = %m.source, error = %e, "response not sent");
    }
}

/// The listener `m` arrived on, for a Contact. A socket bound to an unspecified address
/// (udp on 0.0.0.0) does not know which of its addresses the datagram was sent to: the one
/// this host would use towards the client stands in (a syscall, so only for an INVITE, the
/// one request whose reply carries a Contact).
fn listener_of(m: &ReceivedMessage) -> Listener {
    let mut addr = m.local;
    if addr.ip().is_unspecified() && m.message.method() == Some("INVITE") {
        addr.set_ip(net::local_ip_towards(m.source));
    }
    Listener { addr, kind: m.kind }
}

async fn respond_loop(
    t: Arc<dyn Transport>,
    mut rx: Receiver<TransportEvent>,
    code: u16,
    quiet: bool,
    redials: Redials,
) {
    while let Some(ev) = rx.recv().await {
        match ev {
            TransportEvent::Message(m) => {
                let Reply::Respond(resp) = reply(&m.message, code, listener_of(&m)) else {
                    continue;
                };
                if !quiet {
                    println!(
                        "{} {} from {} {} -> {}",
                        m.message.method().unwrap_or("?"),
                        m.message.call_id().unwrap_or("-"),
                        m.kind,
                        m.source,
                        resp.status_code().unwrap_or(0)
                    );
                }
                send_reply(&t, resp, &m, &redials).await;
            }
            TransportEvent::Closed => break,
            TransportEvent::Error { peer, error, .. } => {
                tracing::debug!(?peer, %error, "transport error");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sip_transport::FlowId;
    use sip_transport::tcp::{TcpConfig, TcpTransport};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket, TcpStream};
    use tokio::sync::mpsc;

    fn options(via: SocketAddr, call_id: &str) -> Message {
        let s = format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {via};branch=z9hG4bK-{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=f\r\nTo: <sip:x@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(s)).expect("parses")
    }

    /// A listener whose accept queue (backlog 0: one connection) is full: Linux drops further
    /// SYNs, so a dial to it hangs until the connect timeout. (One that accepts and stays
    /// silent would not stall a TCP dial: the connect completes at once.)
    async fn never_answers() -> (TcpListener, Vec<TcpStream>) {
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let l = sock.listen(0).expect("listen");
        let addr = l.local_addr().expect("addr");
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fillers.push(s),
                _ => return (l, fillers),
            }
        }
        panic!("the accept queue never filled: this test needs Linux");
    }

    /// A TCP transport whose responder first meets `stalled` requests whose flow is gone and
    /// whose Via names a host that never answers; returns the transport and its redials.
    async fn serve_behind_stalled(stalled: usize, limit: usize) -> (Arc<dyn Transport>, Redials) {
        let (stall, fillers) = never_answers().await;
        let stall_addr = stall.local_addr().expect("addr");
        let (tcp, mut events) = TcpTransport::bind(
            TcpConfig::default().with_bind("127.0.0.1:0".parse().expect("addr")),
        )
        .await
        .expect("bind");
        let t: Arc<dyn Transport> = tcp;
        let (tx, rx) = mpsc::channel(64);
        for n in 0..stalled {
            let m = ReceivedMessage::new(
                options(stall_addr, &format!("stalled-{n}")),
                stall_addr,
                t.local_addr(),
                TransportKind::Tcp,
                Some(FlowId::next()), // a flow that is not open (any more)
            );
            tx.send(TransportEvent::Message(m)).await.expect("queued");
        }
        tokio::spawn(async move {
            let _keep = (stall, fillers);
            while let Some(ev) = events.recv().await {
                if tx.send(ev).await.is_err() {
                    break;
                }
            }
        });
        let redials = Redials::new(limit);
        tokio::spawn(respond_loop(t.clone(), rx, 200, true, redials.clone()));
        (t, redials)
    }

    /// Sends an OPTIONS on a new connection; the status line of the answer within 2 s.
    async fn ask(addr: SocketAddr) -> Option<String> {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let local = c.local_addr().expect("addr");
        c.write_all(options(local, "victim").as_bytes())
            .await
            .expect("send");
        let mut buf = Vec::new();
        let read = async {
            let mut chunk = [0u8; 2048];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(2), read)
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&buf);
        text.lines().next().map(str::to_owned)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_dialing_a_silent_host_does_not_hold_up_the_next() {
        let (t, redials) = serve_behind_stalled(1, MAX_REDIALS).await;
        let started = Instant::now();
        let status = ask(t.local_addr()).await;
        assert_eq!(
            status.as_deref(),
            Some("SIP/2.0 200 OK"),
            "answered after {:?}",
            started.elapsed()
        );
        assert_eq!(redials.dropped(), 0);
        t.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replies_beyond_the_redial_limit_are_dropped_and_counted() {
        let (t, redials) = serve_behind_stalled(3, 1).await;
        let status = ask(t.local_addr()).await;
        assert_eq!(status.as_deref(), Some("SIP/2.0 200 OK"));
        // One dial is hanging; the two replies behind it found no room.
        assert_eq!(redials.dropped(), 2);
        t.close().await;
    }
}
