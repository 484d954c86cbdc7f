//! Memory held per idle TCP connection by a `TcpTransport` server: opens `--count` plain
//! client sockets to it from this process (std sockets: a file descriptor each, no user-space
//! state), waits until the server has them all, then reports the growth of this process's
//! resident memory (VmRSS) per connection — first right after opening, then after one
//! OPTIONS request on every connection (so each has had a read buffer and a message).
//!
//! ```sh
//! cargo run --release -p sip-transport-tcp --example idle_conns -- --count 9000
//! ```
//!
//! Each connection takes two descriptors here (client and server end): `ulimit -n` bounds
//! `--count` to about half of it. Kernel socket memory is not in VmRSS.

use std::io::Write;
use std::time::{Duration, Instant};

use sip_transport_api::{Limits, Transport, TransportEvent};
use sip_transport_tcp::{TcpConfig, TcpTransport};
use sip_transport_testkit::echo::rss_kib;

async fn run(count: usize) -> Result<(), String> {
    // All clients come from 127.0.0.1: lift the per-IP limit (default 1,024).
    let limits = Limits::default()
        .with_max_connections(count.max(16_384))
        .with_max_connections_per_ip(count);
    let config = TcpConfig::default()
        .with_bind("127.0.0.1:0".parse().map_err(|e| format!("{e}"))?)
        .with_limits(limits);
    let (server, mut rx) = TcpTransport::bind(config)
        .await
        .map_err(|e| e.to_string())?;
    let addr = server.local_addr();
    // Events are drained in the background, as an application would.
    let (msg_tx, mut msg_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let TransportEvent::Message(_) = ev {
                let _ = msg_tx.send(());
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib().ok_or("no /proc/self/status")?;
    let clients = tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|_| std::net::TcpStream::connect(addr))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("connect: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.connection_count() < count {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} connections after 60 s",
                server.connection_count()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let opened = rss_kib().ok_or("no /proc/self/status")?;
    let per = |now: u64| (now.saturating_sub(before) * 1024) as f64 / count as f64;
    println!(
        "connections={count} rss_before={before} KiB rss_open={opened} KiB per_connection_open={:.0} B",
        per(opened)
    );
    let req = sip_transport_testkit::options_request("sip:x@127.0.0.1", "TCP", "127.0.0.1:9", 1);
    let bytes = req.as_bytes().clone();
    let clients = tokio::task::spawn_blocking(move || {
        let mut clients = clients;
        for c in &mut clients {
            c.write_all(&bytes)?;
        }
        Ok::<_, std::io::Error>(clients)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("write: {e}"))?;
    for _ in 0..count {
        tokio::time::timeout(Duration::from_secs(60), msg_rx.recv())
            .await
            .map_err(|_| "messages did not all arrive".to_string())?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warmed = rss_kib().ok_or("no /proc/self/status")?;
    println!(
        "after one message each: rss={warmed} KiB per_connection={:.0} B",
        per(warmed)
    );
    drop(clients);
    server.close().await;
    Ok(())
}

fn main() {
    let mut count = 5_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--count", Some(n)) => count = n,
            _ => {
                eprintln!("usage: idle_conns [--count N]");
                std::process::exit(2);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match rt {
        Ok(rt) => rt.block_on(run(count)),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("idle_conns: {e}");
        std::process::exit(1);
    }
}
