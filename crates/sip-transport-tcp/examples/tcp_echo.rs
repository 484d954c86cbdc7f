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
use sip_transport_testkit::{ok_response, options_request};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Echo,
    Respond,
}

#[derive(Debug, Clone, Copy)]
struct Args {
    count: u64,
    window: u64,
    threads: usize,
    mode: Mode,
    serve: Option<std::net::SocketAddr>,
    seconds: u64,
    clients: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        count: 200_000,
        window: 64,
        threads: 2,
        mode: Mode::Echo,
        serve: None,
        seconds: 60,
        clients: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--count" => args.count = num()?.max(1),
            "--window" => args.window = num()?.max(1),
            "--serve" => {
                args.serve = Some(value.parse().map_err(|e| format!("--serve {value}: {e}"))?)
            }
            "--seconds" => args.seconds = num()?,
            "--clients" => args.clients = num()?.max(1),
            "--threads" => args.threads = usize::try_from(num()?.max(1)).unwrap_or(1),
            "--mode" => {
                args.mode = match value.as_str() {
                    "echo" => Mode::Echo,
                    "respond" => Mode::Respond,
                    _ => return Err(format!("--mode {value}: expected echo or respond")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// User + system CPU seconds of this process so far (`/proc/self/stat`, clock ticks of
/// 1/100 s, the Linux `USER_HZ`).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

async fn serve(
    t: Arc<TcpTransport>,
    mut rx: tokio::sync::mpsc::Receiver<TransportEvent>,
    mode: Mode,
) {
    while let Some(event) = rx.recv().await {
        let TransportEvent::Message(m) = event else {
            continue;
        };
        let sent = match (mode, m.flow) {
            (Mode::Echo, Some(flow)) => t.send_on_flow(flow, &m.message).await,
            _ => t.send_response(&ok_response(&m.message), m.flow).await,
        };
        if let Err(e) = sent {
            eprintln!("server send: {e}");
        }
    }
}

/// Server only, for an external load generator; stops after `args.seconds`.
async fn serve_only(addr: std::net::SocketAddr, args: Args) -> Result<(), String> {
    let config = TcpConfig::default().with_bind(addr);
    let (server, rx) = TcpTransport::bind(config)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "serving {:?} on {} for {} s (pid {})",
        args.mode,
        server.local_addr(),
        args.seconds,
        std::process::id()
    );
    let task = tokio::spawn(serve(server.clone(), rx, args.mode));
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    println!("server {:?}", server.stats());
    server.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
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

async fn run(args: Args) -> Result<(), String> {
    if let Some(addr) = args.serve {
        return serve_only(addr, args).await;
    }
    let loopback = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let (server, server_rx) = TcpTransport::bind(TcpConfig::default().with_bind(loopback))
        .await
        .map_err(|e| e.to_string())?;
    let server_task = tokio::spawn(serve(server.clone(), server_rx, args.mode));
    let dest = Destination::new(server.local_addr());
    let per_client = (args.count / args.clients).max(1);
    let window = (args.window / args.clients).max(1);
    // The window may exceed the default write queue; size it to fit.
    let limits = Limits::default().with_write_queue_depth((window as usize).max(1024));
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let (client, rx) = TcpTransport::bind(TcpConfig::client().with_limits(limits.clone()))
            .await
            .map_err(|e| e.to_string())?;
        // Open the connection before timing.
        client.connect(&dest).await.map_err(|e| e.to_string())?;
        clients.push((client, rx));
    }
    let total = per_client * args.clients;

    let cpu0 = cpu_seconds();
    let started = Instant::now();
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
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let rt_per_s = total as f64 / elapsed;
    println!(
        "mode={:?} count={} window={} clients={} threads={} elapsed={:.3}s round_trips/s={:.0} messages/s={:.0}",
        args.mode,
        total,
        window * args.clients,
        args.clients,
        args.threads,
        elapsed,
        rt_per_s,
        2.0 * rt_per_s,
    );
    if let Some(cpu) = cpu {
        println!(
            "cpu={:.2}s ({:.0}% of one core) cpu_s_per_1000_round_trips={:.4} cpu_s_per_1000_messages={:.4}",
            cpu,
            100.0 * cpu / elapsed,
            1000.0 * cpu / total as f64,
            1000.0 * cpu / (2 * total) as f64
        );
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
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tcp_echo: {e}");
            std::process::exit(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("tcp_echo: {e}");
        std::process::exit(1);
    }
}
