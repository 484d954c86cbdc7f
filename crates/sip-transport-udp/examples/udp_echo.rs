//! Loopback throughput of `UdpTransport`: a client keeps `--window` requests in flight
//! against a server on the same host until `--count` round trips are done, then reports
//! round trips per second, datagrams per second and the process CPU time (user + system,
//! the `getrusage(RUSAGE_SELF)` figure, read from `/proc/self/stat`) per 1,000 of each.
//!
//! Client and server run in one process, so the CPU figure covers both ends.
//!
//! ```sh
//! cargo run --release -p sip-transport-udp --example udp_echo -- \
//!     --count 200000 --window 64 --threads 2 --mode echo
//! ```
//!
//! `--mode echo` sends each request back unchanged (the transport alone);
//! `--mode respond` answers with a stateless 200 built per request and sent with
//! `send_response` (what the SIPp interop test's responder does).
//!
//! Not a benchmark harness: one run, one line of figures. Lost datagrams (the channel or a
//! socket buffer overflowing) are resent after a second of silence and counted.
//!
//! `--serve ADDR --seconds N` runs only the server side (in `--mode`) on `ADDR` for `N`
//! seconds, to be loaded by SIPp through `../shared/peers/bench.py --server-pid <pid>` for a
//! like-for-like comparison with Kamailio.

use std::time::{Duration, Instant};

use sip_transport_api::{Destination, Transport, TransportEvent};
use sip_transport_testkit::echo::{self, EchoArgs, Stopwatch};
use sip_transport_testkit::options_request;
use sip_transport_udp::{UdpConfig, UdpTransport};

/// Server only, for an external load generator; stops after `args.seconds`.
async fn serve_only(addr: std::net::SocketAddr, args: EchoArgs) -> Result<(), String> {
    let config = UdpConfig::new(addr).with_recv_buffer_size(4 << 20);
    let (server, rx) = UdpTransport::bind(config).map_err(|e| e.to_string())?;
    echo::serve_for(server, rx, &args).await;
    Ok(())
}

async fn run(args: EchoArgs) -> Result<(), String> {
    if let Some(addr) = args.serve {
        return serve_only(addr, args).await;
    }
    let (server, server_rx) =
        UdpTransport::bind(UdpConfig::default()).map_err(|e| e.to_string())?;
    let (client, mut client_rx) =
        UdpTransport::bind(UdpConfig::default()).map_err(|e| e.to_string())?;
    let server_task = tokio::spawn(echo::serve_events(server.clone(), server_rx, args.mode));
    let dest = Destination::new(server.local_addr());
    let sent_by = client.local_addr().to_string();
    // A window's worth of distinct requests, reused (cloning a Message is cheap).
    let requests: Vec<_> = (0..args.window)
        .map(|n| options_request("sip:echo@127.0.0.1", "UDP", &sent_by, n))
        .collect();

    let clock = Stopwatch::start();
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut sent, mut done, mut resent) = (0u64, 0u64, 0u64);
    let send = |i: u64| {
        let req = &requests[(i % args.window) as usize];
        let client = &client;
        let dest = &dest;
        async move { client.send_message(req, dest).await }
    };
    while sent < args.window.min(args.count) {
        send(sent).await.map_err(|e| e.to_string())?;
        sent += 1;
    }
    while done < args.count {
        if Instant::now() > deadline {
            return Err(format!("gave up after 300 s with {done} round trips"));
        }
        match tokio::time::timeout(Duration::from_secs(1), client_rx.recv()).await {
            Ok(Some(TransportEvent::Message(_))) => {
                done += 1;
                if sent < args.count {
                    send(sent).await.map_err(|e| e.to_string())?;
                    sent += 1;
                }
            }
            Ok(Some(other)) => return Err(format!("unexpected event {other:?}")),
            Ok(None) => return Err("client channel ended".into()),
            Err(_) => {
                // A second of silence: whatever is in flight is lost; send it again.
                let in_flight = sent - done;
                for i in 0..in_flight {
                    send(i).await.map_err(|e| e.to_string())?;
                }
                resent += in_flight;
            }
        }
    }
    let elapsed = clock.elapsed_secs();
    let cpu = clock.cpu_secs();
    let rt_per_s = args.count as f64 / elapsed;
    println!(
        "mode={:?} count={} window={} threads={} elapsed={:.3}s round_trips/s={:.0} datagrams/s={:.0} resent={}",
        args.mode,
        args.count,
        args.window,
        args.threads,
        elapsed,
        rt_per_s,
        2.0 * rt_per_s,
        resent
    );
    if let Some(cpu) = cpu {
        println!("{}", echo::cpu_line(cpu, elapsed, args.count, "datagrams"));
    }
    println!("server {:?}", server.stats());
    println!("client {:?}", client.stats());
    client.close().await;
    server.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    Ok(())
}

fn main() {
    echo::echo_main("udp_echo", EchoArgs::default(), run);
}
