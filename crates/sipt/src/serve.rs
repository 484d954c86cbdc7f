//! `sipt serve`: bind every listener, answer requests statelessly, shut down on a signal with
//! a one-line summary.
//!
//! `--workers N` sets the runtime's threads and binds N `SO_REUSEPORT` sockets per udp
//! listener, each with its own responder task; stream connections already run on every
//! worker. `--proxy-protocol` puts the tcp, tls, ws and wss listeners behind a load balancer.

use std::sync::Arc;

use sip_transport::tcp::ProxyProtocolConfig;
use sip_transport::{Limits, Transport, TransportEvent, TransportKind, TransportStats};
use tokio::sync::mpsc::Receiver;

use crate::ServeArgs;
use crate::listen::default_listeners;
use crate::net;
use crate::responder::{Reply, reply};

pub(crate) async fn run(args: ServeArgs) -> u8 {
    let specs = if !args.listen.is_empty() {
        args.listen.clone()
    } else {
        default_listeners()
    };
    let mut tls = net::TlsOptions::default();
    if specs.iter().any(|s| s.kind.is_secure()) {
        let identity = match (&args.cert, &args.key) {
            (Some(c), Some(k)) => match (std::fs::read(c), std::fs::read(k)) {
                (Ok(chain_pem), Ok(key_pem)) => net::Identity { chain_pem, key_pem },
                (Err(e), _) => return fail(format!("cannot read {}: {e}", c.display())),
                (_, Err(e)) => return fail(format!("cannot read {}: {e}", k.display())),
            },
            _ => match net::self_signed() {
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
        limits: serve_limits(),
        tls,
        listen: true,
        proxy,
    };
    let workers = args.worker_count();
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
        "summary: received={} sent={} malformed={} dropped={} send_errors={} connections={} refused={}",
        total.messages_received,
        total.messages_sent,
        total.malformed,
        total.dropped,
        total.send_errors,
        total.connections_accepted,
        total.connections_refused
    );
    0
}

fn fail(e: String) -> u8 {
    eprintln!("sipt serve: {e}");
    2
}

/// Limits for a server: the library defaults, with room for benchmark connection counts.
fn serve_limits() -> Limits {
    Limits::default()
        .with_max_connections(100_000)
        .with_max_connections_per_ip(100_000)
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

async fn respond_loop(
    t: Arc<dyn Transport>,
    mut rx: Receiver<TransportEvent>,
    code: u16,
    quiet: bool,
) {
    while let Some(ev) = rx.recv().await {
        match ev {
            TransportEvent::Message(m) => {
                let Reply::Respond(resp) = reply(&m.message, code) else {
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
                // RFC 3261 §18.2.2: the request's flow first, then the Via's address. A
                // response with no Via (the request had none) can only go back the way it came.
                let sent = if resp.header("Via").is_some() {
                    t.send_response(&resp, m.flow).await
                } else if let Some(flow) = m.flow {
                    t.send_on_flow(flow, &resp).await
                } else {
                    t.send_message(&resp, &m.source.into()).await.map(|_| ())
                };
                if let Err(e) = sent {
                    tracing::debug!(peer = %m.source, error = %e, "response not sent");
                }
            }
            TransportEvent::Closed => break,
            TransportEvent::Error { peer, error, .. } => {
                tracing::debug!(?peer, %error, "transport error");
            }
            _ => {}
        }
    }
}
