//! `sipt bench`: a load generator of OPTIONS transactions over any transport.
//!
//! N connections (for UDP: N sockets), each a task with up to `--concurrency` transactions in
//! flight, optionally paced to `--rate` per second overall. UDP requests are retransmitted on
//! RFC 3261 timer E's schedule. Bounded by `--duration` and `--requests` (either may be 0, for
//! no bound of that kind, but not both); transactions still open at the end get `--timeout` to
//! finish, then count as timed out. Latencies go into a
//! fixed-size histogram per connection (`LatencyHistogram`), merged at the end.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use sip_transport::{Destination, Message, Transport, TransportEvent, TransportKind};
use tokio::sync::mpsc::Receiver;

use crate::histogram::LatencyHistogram;
use crate::locate::locate;
use crate::net;
use crate::ping::{options, run_tag};
use crate::target::{Target, parse_target};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// Options of `sipt bench`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    /// Target URI (as for `sipt ping`).
    pub(crate) uri: String,
    /// Transactions per second to offer in total (0: as fast as responses come back).
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// Seconds to send for (0: no time limit, stop after --requests, which must then be > 0).
    #[arg(long, default_value_t = 10)]
    pub(crate) duration: u64,
    /// Stop after this many transactions (0: no limit, stop after --duration, which must then
    /// be > 0).
    #[arg(long, default_value_t = 0)]
    pub(crate) requests: u64,
    /// Connections (UDP: sockets) to spread the load over.
    #[arg(long, default_value_t = 1)]
    pub(crate) connections: u64,
    /// Transactions in flight per connection.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: u64,
    /// Milliseconds a transaction may take before it counts as timed out (RFC 3261 timer F
    /// is 32 s; a benchmark wants to know sooner).
    #[arg(long, default_value_t = 5000)]
    pub(crate) timeout: u64,
    /// Print a JSON summary as the last line of stdout.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) client: crate::ClientArgs,
}

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    send_errors: AtomicU64,
    timeouts: AtomicU64,
    retransmits: AtomicU64,
    budget: AtomicU64,
    stop: AtomicBool,
    fatal: std::sync::Mutex<Option<String>>,
}

struct Worker {
    id: u64,
    transport: Arc<dyn Transport>,
    events: Receiver<TransportEvent>,
    dest: Destination,
    target: Target,
    kind: TransportKind,
    local: SocketAddr,
    tag: String,
}

struct Pending {
    sent: Instant,
    msg: Message,
    next_retransmit: Instant,
    interval: Duration,
}

pub(crate) async fn run(args: BenchArgs) -> u8 {
    let send_for = match send_window(args.duration, args.requests) {
        Ok(d) => d,
        Err(e) => return usage(e),
    };
    let target = match parse_target(&args.uri) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let aim = match locate(&target, args.client.resolver).await {
        Ok(a) => a,
        Err(e) => return usage(e),
    };
    let (kind, dest, local_ip) = (aim.kind, aim.dest, aim.local_ip);
    let shared = Arc::new(Shared::default());
    shared.budget.store(
        if args.requests == 0 {
            u64::MAX
        } else {
            args.requests
        },
        Relaxed,
    );
    let tag = run_tag();
    let connections = args.connections.max(1);
    let opts = net::BindOptions::client(args.client.tls_options());
    let mut workers = Vec::new();
    for id in 0..connections {
        let (t, rx) = match net::bind(kind, std::net::SocketAddr::new(local_ip, 0), &opts).await {
            Ok(b) => b,
            Err(e) => return usage(format!("cannot open a {kind} transport: {e}")),
        };
        let local = t.local_addr();
        workers.push(Worker {
            id,
            transport: t,
            events: rx,
            dest: dest.clone(),
            target: target.clone(),
            kind,
            local,
            tag: tag.clone(),
        });
    }
    let concurrency = args.concurrency.max(1);
    let timeout = Duration::from_millis(args.timeout.max(1));
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in workers {
        let shared = shared.clone();
        let pacing = Pacing::of(args.rate, connections, w.id);
        let run = Run {
            start,
            send_for,
            timeout,
            concurrency,
            pacing,
        };
        handles.push(tokio::spawn(async move {
            let transport = w.transport.clone();
            let lat = work(w, shared, run).await;
            transport.close().await;
            lat
        }));
    }
    let progress = std::io::stderr().is_terminal();
    let progress_task = progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let el = start.elapsed().as_secs_f64();
                let ok = shared.ok.load(Relaxed);
                eprint!(
                    "\r{el:6.1}s sent {} ok {} failed {} timeouts {} ({:.0} tx/s)   ",
                    shared.sent.load(Relaxed),
                    ok,
                    shared.failed.load(Relaxed) + shared.send_errors.load(Relaxed),
                    shared.timeouts.load(Relaxed),
                    ok as f64 / el.max(0.001)
                );
            }
        })
    });
    let mut latencies = LatencyHistogram::new();
    let mut last_answer: Option<Instant> = None;
    for h in handles {
        if let Ok((lat, last)) = h.await {
            latencies.merge(&lat);
            last_answer = last_answer.max(last);
        }
    }
    if let Some(p) = progress_task {
        p.abort();
        eprintln!();
    }
    if let Some(e) = shared.fatal.lock().ok().and_then(|f| f.clone()) {
        return usage(e);
    }
    // Throughput over the time answers kept coming (the tail of timeouts excluded).
    let end = last_answer.unwrap_or_else(Instant::now);
    let elapsed = end.duration_since(start).max(Duration::from_millis(1));
    // Milliseconds; within 0.4% of the exact value (see `LatencyHistogram`).
    let pct = |p: f64| -> f64 { latencies.quantile(p) as f64 / 1000.0 };
    let sent = shared.sent.load(Relaxed);
    let ok = shared.ok.load(Relaxed);
    let rejected = shared.failed.load(Relaxed);
    let send_errors = shared.send_errors.load(Relaxed);
    let failed = rejected + send_errors;
    let timeouts = shared.timeouts.load(Relaxed);
    let tps = (ok + rejected) as f64 / elapsed.as_secs_f64();
    let counts = Counts {
        sent,
        ok,
        rejected,
        send_errors,
        timeouts,
        retransmits: shared.retransmits.load(Relaxed),
    };
    println!("{}", counts.line(elapsed));
    println!(
        "{tps:.0} transactions/s over {kind} with {connections} connection(s); latency ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    if args.json {
        let v = serde_json::json!({
            "transport": kind.to_string(), "connections": connections, "concurrency": concurrency,
            "sent": sent, "ok": ok, "failed": failed, "non_2xx": rejected, "send_errors": send_errors, "timeouts": timeouts,
            "retransmits": shared.retransmits.load(Relaxed),
            "duration_s": elapsed.as_secs_f64(), "tps": tps,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        });
        println!("{v}");
    }
    u8::from(failed + timeouts > 0 || ok == 0)
}

/// The run's transaction counts, for the summary.
struct Counts {
    sent: u64,
    ok: u64,
    /// Answered with a non-2xx.
    rejected: u64,
    send_errors: u64,
    timeouts: u64,
    retransmits: u64,
}

impl Counts {
    /// The first summary line. `failed` is non-2xx plus send errors, as in the JSON summary.
    fn line(&self, elapsed: Duration) -> String {
        let Counts {
            sent,
            ok,
            rejected,
            send_errors,
            timeouts,
            retransmits,
        } = self;
        format!(
            "sent {sent}, answered {} (ok {ok}, non-2xx {rejected}), send errors {send_errors}, \
             failed {}, timed out {timeouts}, retransmits {retransmits} in {:.2} s",
            ok + rejected,
            rejected + send_errors,
            elapsed.as_secs_f64()
        )
    }
}

fn usage(e: String) -> u8 {
    eprintln!("sipt bench: {e}");
    2
}

/// How long to send for (`None`: until `--requests` are used up), from `--duration` and
/// `--requests`; one of them must bound the run.
fn send_window(duration: u64, requests: u64) -> Result<Option<Duration>, String> {
    match (duration, requests) {
        (0, 0) => Err("--duration 0 and --requests 0 would never stop: \
                       give one of them a value > 0"
            .into()),
        (0, _) => Ok(None),
        (s, _) => Ok(Some(Duration::from_secs(s))),
    }
}

/// Takes one transaction from the global budget (`--requests`).
fn take_budget(shared: &Shared) -> bool {
    shared
        .budget
        .fetch_update(Relaxed, Relaxed, |b| b.checked_sub(1))
        .is_ok()
}

/// When one worker sends, for `--rate` per second in total over `--connections` workers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pacing {
    /// Time between two of this worker's requests: `connections / rate` seconds.
    period: Duration,
    /// This worker's first request, after the run's start: `id / rate` seconds.
    offset: Duration,
}

impl Pacing {
    /// Worker `id`'s share of `rate` requests per second (`None`: unpaced). The workers take
    /// turns on one clock, a request every `1 / rate` seconds in all, so the offered rate is
    /// `rate` exactly, even with more workers than requests per second (each then sends less
    /// than once a second).
    fn of(rate: u64, connections: u64, id: u64) -> Option<Pacing> {
        (rate > 0).then(|| Pacing {
            period: Duration::from_secs_f64(connections.max(1) as f64 / rate as f64),
            offset: Duration::from_secs_f64(id as f64 / rate as f64),
        })
    }
}

/// The settings every worker shares (its pacing is its own).
struct Run {
    start: Instant,
    /// `None`: no time limit (the run ends when `--requests` are used up).
    send_for: Option<Duration>,
    timeout: Duration,
    concurrency: u64,
    pacing: Option<Pacing>,
}

/// Housekeeping tick: retransmissions and timeouts are checked this often.
const TICK: Duration = Duration::from_millis(50);

/// When a worker whose window has room should wake up to send: at its next paced send, or
/// (unpaced) at the next tick; never before the back-off after a send error has ended, or
/// the loop would spin until it did.
fn send_wake(now: Instant, paced_next: Option<Instant>, backoff_until: Instant) -> Instant {
    match paced_next {
        Some(next) => next.max(backoff_until),
        None if backoff_until > now => backoff_until,
        None => now + TICK,
    }
}

async fn work(mut w: Worker, shared: Arc<Shared>, run: Run) -> (LatencyHistogram, Option<Instant>) {
    let Run {
        start,
        send_for,
        timeout,
        concurrency,
        pacing,
    } = run;
    let stop_sending = send_for.map(|d| start + d);
    let mut pending: HashMap<u64, Pending> = HashMap::with_capacity(concurrency as usize * 2);
    let mut latencies = LatencyHistogram::new();
    let mut seq = 0u64;
    let mut last_answer = None;
    let tag = format!("{}w{}", w.tag, w.id);
    let pace = pacing.map(|p| p.period);
    let mut next_send = start + pacing.map_or(Duration::ZERO, |p| p.offset);
    let mut housekeeping = tokio::time::interval(TICK);
    let mut last_scan = start;
    let mut backoff_until = start;
    loop {
        let now = Instant::now();
        let sending = stop_sending.is_none_or(|t| now < t) && !shared.stop.load(Relaxed);
        // Fill the window.
        while sending
            && stop_sending.is_none_or(|t| Instant::now() < t)
            && Instant::now() >= backoff_until
            && (pending.len() as u64) < concurrency
            && pace.is_none_or(|_| Instant::now() >= next_send)
        {
            if !take_budget(&shared) {
                shared.stop.store(true, Relaxed);
                break;
            }
            seq += 1;
            let Ok(msg) = options(&w.target, w.kind, w.local, &tag, seq) else {
                shared.send_errors.fetch_add(1, Relaxed);
                continue;
            };
            let t = Instant::now();
            shared.sent.fetch_add(1, Relaxed);
            match w.transport.send_message(&msg, &w.dest).await {
                Ok(_) => {
                    pending.insert(
                        seq,
                        Pending {
                            sent: t,
                            msg,
                            next_retransmit: t + T1,
                            interval: T1,
                        },
                    );
                }
                Err(e) => {
                    tracing::debug!(error = %e, "send failed");
                    shared.send_errors.fetch_add(1, Relaxed);
                    if !e.is_recoverable() {
                        shared
                            .fatal
                            .lock()
                            .map(|mut f| *f = Some(net::explain(&e)))
                            .ok();
                        shared.stop.store(true, Relaxed);
                    }
                    // Do not spin on a target that refuses: try again in a little while.
                    backoff_until = Instant::now() + Duration::from_millis(20);
                    break;
                }
            }
            if let Some(p) = pace {
                next_send = next_send.max(t - p) + p;
            }
        }
        if !sending && pending.is_empty() {
            break;
        }
        // Without a time limit, each open transaction's own timeout (below) ends the run.
        let give_up = stop_sending.map(|t| t + timeout);
        if !sending && give_up.is_some_and(|g| now >= g) {
            shared.timeouts.fetch_add(pending.len() as u64, Relaxed);
            break;
        }
        let wake = if sending && (pending.len() as u64) < concurrency {
            send_wake(now, pace.map(|_| next_send), backoff_until)
        } else {
            now + TICK
        };
        tokio::select! {
            ev = w.events.recv() => {
                let Some(ev) = ev else { break };
                if let TransportEvent::Message(m) = ev {
                    let msg = &m.message;
                    let Some(code) = msg.status_code() else { continue };
                    if code < 200 { continue; }
                    let Some(n) = msg.call_id().and_then(|c| c.strip_prefix(tag.as_str())).and_then(|c| c.strip_prefix('-')).and_then(|c| c.split('@').next()).and_then(|c| c.parse::<u64>().ok()) else { continue };
                    if let Some(p) = pending.remove(&n) {
                        let l = p.sent.elapsed();
                        latencies.record(u64::try_from(l.as_micros()).unwrap_or(u64::MAX));
                        last_answer = Some(Instant::now());
                        if (200..300).contains(&code) {
                            shared.ok.fetch_add(1, Relaxed);
                        } else {
                            shared.failed.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = housekeeping.tick() => {}
        }
        // Retransmissions (UDP) and per-transaction timeouts, checked every tick.
        let now = Instant::now();
        if now.duration_since(last_scan) < TICK {
            continue;
        }
        last_scan = now;
        let mut expired = Vec::new();
        for (n, p) in pending.iter_mut() {
            if now.duration_since(p.sent) >= timeout {
                expired.push(*n);
            } else if !w.kind.is_reliable() && now >= p.next_retransmit {
                let _ = w.transport.send_message(&p.msg, &w.dest).await;
                shared.retransmits.fetch_add(1, Relaxed);
                p.interval = (p.interval * 2).min(T2);
                p.next_retransmit = now + p.interval;
            }
        }
        for n in expired {
            pending.remove(&n);
            shared.timeouts.fetch_add(1, Relaxed);
        }
    }
    (latencies, last_answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests the schedule offers in the first `window`, all workers together.
    fn offered(rate: u64, connections: u64, window: Duration) -> u64 {
        (0..connections)
            .map(|id| {
                let p = Pacing::of(rate, connections, id).expect("paced");
                match window.checked_sub(p.offset) {
                    Some(left) if !left.is_zero() => {
                        (left.as_secs_f64() / p.period.as_secs_f64()).ceil() as u64
                    }
                    _ => 0,
                }
            })
            .sum()
    }

    #[test]
    fn rate_split_over_connections_is_exact() {
        assert_eq!(Pacing::of(0, 4, 0), None);
        // (rate, connections, requests): the window ends half a slot after the last one.
        for (rate, conns, n) in [
            (100, 1, 100),
            (1000, 7, 1000),
            (5, 5, 5),
            // More connections than requests per second: the old per-connection floor of
            // 1/s offered 4 and 10 requests at once here.
            (1, 4, 1),
            (3, 10, 6),
            (7, 1000, 20),
        ] {
            let window = Duration::from_secs_f64((n as f64 - 0.5) / rate as f64);
            assert_eq!(offered(rate, conns, window), n, "{rate}/s over {conns}");
        }
        // Worker 2 of 4 at 8/s: every half second, starting a quarter second in.
        assert_eq!(
            Pacing::of(8, 4, 2),
            Some(Pacing {
                period: Duration::from_millis(500),
                offset: Duration::from_millis(250),
            })
        );
    }

    #[test]
    fn duration_0_means_no_time_limit_when_requests_bound_the_run() {
        assert_eq!(send_window(5, 0), Ok(Some(Duration::from_secs(5))));
        assert_eq!(send_window(5, 100), Ok(Some(Duration::from_secs(5))));
        assert_eq!(send_window(0, 100), Ok(None));
        let e = send_window(0, 0).expect_err("unbounded");
        assert!(e.contains("--duration") && e.contains("--requests"), "{e}");
    }

    #[test]
    fn summary_line_counts_failed_as_non_2xx_plus_send_errors() {
        let c = Counts {
            sent: 10,
            ok: 5,
            rejected: 2,
            send_errors: 1,
            timeouts: 2,
            retransmits: 3,
        };
        assert_eq!(
            c.line(Duration::from_millis(1500)),
            "sent 10, answered 7 (ok 5, non-2xx 2), send errors 1, failed 3, timed out 2, \
             retransmits 3 in 1.50 s"
        );
    }

    #[test]
    fn send_wake_honours_the_back_off() {
        let now = Instant::now();
        let backoff = now + Duration::from_millis(20);
        // Paced, the send already due, backing off: wake when the back-off ends, not now.
        let due = now - Duration::from_millis(5);
        assert_eq!(send_wake(now, Some(due), backoff), backoff);
        // Paced, the next send after the back-off: the send.
        let later = now + Duration::from_millis(30);
        assert_eq!(send_wake(now, Some(later), backoff), later);
        // The back-off over: the paced send, or the next tick.
        let over = now - Duration::from_millis(100);
        assert_eq!(send_wake(now, Some(due), over), due);
        assert_eq!(send_wake(now, None, over), now + TICK);
        assert_eq!(send_wake(now, None, backoff), backoff);
    }

    /// CPU time of this thread, in clock ticks (USER_HZ, 100 a second on Linux).
    fn thread_cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc stat");
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').expect("comm").1;
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        f[10] + f[11]
    }

    /// A paced worker against a target that refuses every connection backs off 20 ms after
    /// each error; it used to spin through that back-off (the wake-up was the paced send
    /// time, already past), burning a core for the whole run.
    #[test]
    fn a_refusing_target_does_not_make_the_paced_loop_spin() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let closed = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port");
            let target = parse_target(&format!("sip:{closed};transport=tcp")).expect("target");
            let opts = net::BindOptions::client(net::TlsOptions::default());
            let (t, events) = net::bind(
                TransportKind::Tcp,
                "127.0.0.1:0".parse().expect("addr"),
                &opts,
            )
            .await
            .expect("bind");
            let w = Worker {
                id: 0,
                local: t.local_addr(),
                transport: t.clone(),
                events,
                dest: Destination::new(closed),
                target,
                kind: TransportKind::Tcp,
                tag: "spin".into(),
            };
            let shared = Arc::new(Shared::default());
            shared.budget.store(u64::MAX, Relaxed);
            let run = Run {
                start: Instant::now(),
                send_for: Some(Duration::from_secs(1)),
                timeout: Duration::from_millis(100),
                concurrency: 8,
                pacing: Pacing::of(1000, 1, 0),
            };
            let cpu0 = thread_cpu_ticks();
            work(w, shared.clone(), run).await;
            let cpu = thread_cpu_ticks() - cpu0;
            t.close().await;
            let errors = shared.send_errors.load(Relaxed);
            assert!(errors >= 10, "{errors} send errors");
            // About 50 refused connects; spinning costs the whole second (100 ticks).
            assert!(
                cpu < 30,
                "{cpu} ticks of CPU in a 1 s run, {errors} send errors"
            );
        });
    }
}
