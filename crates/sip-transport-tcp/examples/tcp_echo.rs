//! Loopback throughput of `TcpTransport`: a client keeps `--window` requests in flight over
//! one connection against a server on the same host until `--count` round trips are done,
//! then reports round trips per second, messages per second and the process CPU time (user +
//! system, the `getrusage(RUSAGE_SELF)` figure, read from `/proc/self/stat`) per 1,000 of each.
//!
//! Client and server run in one process, so the CPU figure covers both ends.
//!
//! ```sh
//! cargo run --release -p sip-transport-tcp --example tcp_echo -- \
//!     --count 200000 --window 64 --threads 2 --mode echo
//! ```
//!
//! `--clients C` splits the count and the window over C client transports, so the server
//! carries C connections (and its pool lock sees C flows).
//!
//! `--mode echo` sends each request back unchanged over its flow (the transport alone);
//! `--mode respond` answers with a stateless 200 built per request and sent with
//! `send_response` (what the SIPp interop test's responder does).
//!
//! `--serve ADDR --seconds N` runs only the server side (in `--mode`) on `ADDR` for `N`
//! seconds, to be loaded by SIPp through `../shared/peers/bench.py --server-pid <pid>` for a
//! like-for-like comparison with Kamailio.
//!
//! Not a benchmark harness: one run, one line of figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_transport_api::{Destination, Limits, Transport, TransportEvent};
use sip_transport_tcp::{TcpConfig, TcpTransport};
use sip_transport_testkit::echo::{self, EchoArgs, Stopwatch};
use sip_transport_testkit::options_request;

/// Server only, for an external load generator; stops after `args.seconds`.
async fn serve_only(addr: std::net::SocketAddr, args: EchoArgs) -> Result<(), String> {
    let config = TcpConfig::default().with_bind(addr);
    let (server, rx) = TcpTransport::bind(config)
        .await
        .map_err(|e| e.to_string())?;
    echo::serve_for(server, rx, &args).await;
    Ok(())
}

/// One client transport doing `count` round trips with `window` in flight.
async fn client_loop(
    client: Arc<TcpTransport>,
    mut rx: tokio::sync::mpsc::Receiver<TransportEvent>,
    dest: Destination,
    count: u64,
    window: u64,
) -> Result<(), String> {
    // A window's worth of distinct requests, reused (cloning a Message is cheap).
    let requests: Vec<_> = (0..window)
        .map(|n| options_request("sip:echo@127.0.0.1", "TCP", "127.0.0.1:9", n))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut sent, mut done) = (0u64, 0u64);
    let send = |i: u64| {
        let req = &requests[(i % window) as usize];
        let client = &client;
        let dest = &dest;
        async move { client.send_message(req, dest).await }
    };
    while sent < window.min(count) {
        send(sent).await.map_err(|e| e.to_string())?;
        sent += 1;
    }
    while done < count {
        if Instant::now() > deadline {
            return Err(format!("gave up after 300 s with {done} round trips"));
        }
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(TransportEvent::Message(_))) => {
                done += 1;
                if sent < count {
                    send(sent).await.map_err(|e| e.to_string())?;
                    sent += 1;
                }
            }
            Ok(Some(TransportEvent::ConnectionOpened { .. })) => {}
            Ok(Some(other)) => return Err(format!("unexpected event {other:?}")),
            Ok(None) => return Err("client channel ended".into()),
            Err(_) => return Err(format!("stalled for 10 s with {done} round trips")),
        }
    }
    Ok(())
}

async fn run(args: EchoArgs) -> Result<(), String> {
    if let Some(addr) = args.serve {
        return serve_only(addr, args).await;
    }
    let loopback = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let (server, server_rx) = TcpTransport::bind(TcpConfig::default().with_bind(loopback))
        .await
        .map_err(|e| e.to_string())?;
    let server_task = tokio::spawn(echo::serve_events(server.clone(), server_rx, args.mode));
    let dest = Destination::new(server.local_addr());
    let n_clients = args.clients.unwrap_or(1);
    let per_client = (args.count / n_clients).max(1);
    let window = (args.window / n_clients).max(1);
    // The window may exceed the default write queue; size it to fit.
    let limits = Limits::default().with_write_queue_depth((window as usize).max(1024));
    let mut clients = Vec::new();
    for _ in 0..n_clients {
        let (client, rx) = TcpTransport::bind(TcpConfig::client().with_limits(limits.clone()))
            .await
            .map_err(|e| e.to_string())?;
        // Open the connection before timing.
        client.connect(&dest).await.map_err(|e| e.to_string())?;
        clients.push((client, rx));
    }
    let total = per_client * n_clients;

    let clock = Stopwatch::start();
    let mut loops = Vec::new();
    for (client, rx) in &mut clients {
        let (tx, rx2) = tokio::sync::mpsc::channel(1);
        let rx = std::mem::replace(rx, rx2);
        drop(tx);
        loops.push(tokio::spawn(client_loop(
            Arc::clone(client),
            rx,
            dest.clone(),
            per_client,
            window,
        )));
    }
    for l in loops {
        l.await.map_err(|e| e.to_string())??;
    }
    let elapsed = clock.elapsed_secs();
    let cpu = clock.cpu_secs();
    let rt_per_s = total as f64 / elapsed;
    println!(
        "mode={:?} count={} window={} clients={} threads={} elapsed={:.3}s round_trips/s={:.0} messages/s={:.0}",
        args.mode,
        total,
        window * n_clients,
        n_clients,
        args.threads,
        elapsed,
        rt_per_s,
        2.0 * rt_per_s,
    );
    if let Some(cpu) = cpu {
        println!("{}", echo::cpu_line(cpu, elapsed, total, "messages"));
    }
    println!("server {:?}", server.stats());
    for (client, _) in &clients {
        client.close().await;
    }
    server.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    Ok(())
}

fn main() {
    // The one flag udp_echo lacks: `--clients`, default 1.
    let defaults = EchoArgs {
        clients: Some(1),
        ..EchoArgs::default()
    };
    echo::echo_main("tcp_echo", defaults, run);
}
