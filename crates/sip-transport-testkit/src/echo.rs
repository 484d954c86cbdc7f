//! The pieces the load-test examples share (`udp_echo`, `tcp_echo`, `tls_bench`, `ws_bench`,
//! ...): the echo examples' command line, the process CPU and memory clocks read from
//! `/proc/self`, and the server side that echoes or answers whatever a transport receives.
//!
//! What differs between transports (binding, the client loop, the figures' wording) stays in
//! each example.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_transport_api::{Destination, Transport, TransportEvent};
use tokio::sync::mpsc;

use crate::ok_response;

/// What the server side does with each message it receives (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoMode {
    /// Sends the message back unchanged over its flow (UDP: to its source): the transport alone.
    Echo,
    /// Answers each request (but ACK) with a stateless 200 built per request and sent with
    /// `send_response` (what the SIPp interop test's responder does).
    Respond,
}

/// The echo examples' command line: `--count N --window N --threads N --mode echo|respond
/// --serve ADDR --seconds N`, and `--clients N` where the example takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoArgs {
    /// Round trips to do (`--count`, at least 1).
    pub count: u64,
    /// Requests kept in flight (`--window`, at least 1).
    pub window: u64,
    /// Runtime worker threads (`--threads`, at least 1; 1 means a current-thread runtime).
    pub threads: usize,
    /// What the server does (`--mode`).
    pub mode: EchoMode,
    /// Run only the server, on this address (`--serve`).
    pub serve: Option<SocketAddr>,
    /// How long `--serve` runs, in seconds (`--seconds`).
    pub seconds: u64,
    /// Client transports (`--clients`, at least 1). `None` when the example does not take the
    /// flag: [`parse_echo_args`] accepts `--clients` only when the defaults give `Some`.
    pub clients: Option<u64>,
}

impl Default for EchoArgs {
    /// 200,000 round trips, window 64, 2 threads, echo, 60 s when serving, no `--clients`.
    fn default() -> Self {
        Self {
            count: 200_000,
            window: 64,
            threads: 2,
            mode: EchoMode::Echo,
            serve: None,
            seconds: 60,
            clients: None,
        }
    }
}

/// Parses `argv` (the arguments after the program name, as `--flag value` pairs) over
/// `defaults`. `--clients` is accepted only when `defaults.clients` is `Some`; any other
/// flag is an error, as is a flag without a value or a value that does not parse.
pub fn parse_echo_args(
    argv: impl IntoIterator<Item = String>,
    defaults: EchoArgs,
) -> Result<EchoArgs, String> {
    let mut args = defaults;
    let mut it = argv.into_iter();
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
            "--clients" if args.clients.is_some() => args.clients = Some(num()?.max(1)),
            "--threads" => args.threads = usize::try_from(num()?.max(1)).unwrap_or(1),
            "--mode" => {
                args.mode = match value.as_str() {
                    "echo" => EchoMode::Echo,
                    "respond" => EchoMode::Respond,
                    _ => return Err(format!("--mode {value}: expected echo or respond")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// An echo example's `main`: parses the command line over `defaults` (an error prints
/// `<name>: <error>` and exits with 2), runs `run` on a runtime with `--threads` workers (a
/// current-thread runtime for 1), and on an error prints `<name>: <error>` and exits with 1.
pub fn echo_main<F, Fut>(name: &str, defaults: EchoArgs, run: F)
where
    F: FnOnce(EchoArgs) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let args = match parse_echo_args(std::env::args().skip(1), defaults) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{name}: {e}");
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
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}

/// The server side: for every message `rx` delivers, does what `mode` says over `transport`,
/// until the channel ends. A failed send is printed (`server send: ...`) and serving goes on.
pub async fn serve_events<T: Transport + ?Sized>(
    transport: Arc<T>,
    mut rx: mpsc::Receiver<TransportEvent>,
    mode: EchoMode,
) {
    while let Some(event) = rx.recv().await {
        let TransportEvent::Message(m) = event else {
            continue;
        };
        let sent = match mode {
            EchoMode::Echo => match m.flow {
                Some(flow) => transport.send_on_flow(flow, &m.message).await,
                None => transport
                    .send_message(&m.message, &Destination::new(m.source))
                    .await
                    .map(|_| ()),
            },
            EchoMode::Respond if m.message.is_request() && m.message.method() != Some("ACK") => {
                transport
                    .send_response(&ok_response(&m.message), m.flow)
                    .await
            }
            EchoMode::Respond => continue,
        };
        if let Err(e) = sent {
            eprintln!("server send: {e}");
        }
    }
}

/// `--serve`: runs [`serve_events`] on an already bound `server` for `args.seconds`, for an
/// external load generator, then prints the server's counters and closes it. Prints
/// `serving <mode> on <addr> for <n> s (pid <pid>)` first.
pub async fn serve_for<T: Transport + ?Sized>(
    server: Arc<T>,
    rx: mpsc::Receiver<TransportEvent>,
    args: &EchoArgs,
) {
    println!(
        "serving {:?} on {} for {} s (pid {})",
        args.mode,
        server.local_addr(),
        args.seconds,
        std::process::id()
    );
    let task = tokio::spawn(serve_events(Arc::clone(&server), rx, args.mode));
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    println!("server {:?}", server.stats());
    server.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}

/// User + system CPU seconds of this process so far (`/proc/self/stat`, clock ticks of
/// 1/100 s, the Linux `USER_HZ`): the `getrusage(RUSAGE_SELF)` figure. `None` off Linux.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// This process's resident memory in KiB (`VmRSS` of `/proc/self/status`). `None` off Linux.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Wall-clock and process CPU time since [`Stopwatch::start`].
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    cpu0: Option<f64>,
    started: Instant,
}

impl Stopwatch {
    /// Reads both clocks now.
    pub fn start() -> Self {
        Self {
            cpu0: cpu_seconds(),
            started: Instant::now(),
        }
    }

    /// Wall-clock seconds since the start.
    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// CPU seconds (user + system, every thread) this process used since the start; `None`
    /// when [`cpu_seconds`] cannot read the clock.
    pub fn cpu_secs(&self) -> Option<f64> {
        Some(cpu_seconds()? - self.cpu0?)
    }
}

/// The echo examples' CPU line: `cpu=<s>s (<n>% of one core) cpu_s_per_1000_round_trips=<s>
/// cpu_s_per_1000_<unit>=<s>`, where a round trip is two `unit`s (datagrams, messages).
pub fn cpu_line(cpu: f64, elapsed: f64, round_trips: u64, unit: &str) -> String {
    format!(
        "cpu={:.2}s ({:.0}% of one core) cpu_s_per_1000_round_trips={:.4} cpu_s_per_1000_{unit}={:.4}",
        cpu,
        100.0 * cpu / elapsed,
        1000.0 * cpu / round_trips as f64,
        1000.0 * cpu / (2 * round_trips) as f64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &str, defaults: EchoArgs) -> Result<EchoArgs, String> {
        parse_echo_args(argv.split_whitespace().map(String::from), defaults)
    }

    #[test]
    fn no_flags_give_the_defaults() {
        assert_eq!(parse("", EchoArgs::default()), Ok(EchoArgs::default()));
    }

    #[test]
    fn every_flag_is_read() {
        let defaults = EchoArgs {
            clients: Some(1),
            ..EchoArgs::default()
        };
        let args = parse(
            "--count 5 --window 0 --threads 1 --mode respond --serve 127.0.0.1:5060 \
             --seconds 3 --clients 4",
            defaults,
        )
        .expect("parses");
        assert_eq!(
            args,
            EchoArgs {
                count: 5,
                window: 1,
                threads: 1,
                mode: EchoMode::Respond,
                serve: Some("127.0.0.1:5060".parse().expect("addr")),
                seconds: 3,
                clients: Some(4),
            }
        );
    }

    #[test]
    fn clients_only_where_the_defaults_take_it() {
        assert_eq!(
            parse("--clients 2", EchoArgs::default()),
            Err("unknown flag --clients".into())
        );
    }

    #[test]
    fn bad_command_lines_are_errors() {
        let d = EchoArgs::default();
        assert_eq!(parse("--count", d), Err("--count needs a value".into()));
        assert_eq!(
            parse("--mode loud", d),
            Err("--mode loud: expected echo or respond".into())
        );
        assert!(parse("--count many", d).is_err());
        assert!(parse("--serve nowhere", d).is_err());
        assert_eq!(parse("--fast 1", d), Err("unknown flag --fast".into()));
    }

    #[test]
    fn process_clocks_read_on_linux() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let clock = Stopwatch::start();
        // Burn a little CPU so the clock has something to count (it may still read 0.00).
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(clock.cpu_secs().expect("CPU clock") >= 0.0);
        assert!(clock.elapsed_secs() > 0.0);
        assert!(rss_kib().expect("VmRSS") > 0);
    }

    #[test]
    fn cpu_line_wording() {
        assert_eq!(
            cpu_line(1.0, 2.0, 1000, "datagrams"),
            "cpu=1.00s (50% of one core) cpu_s_per_1000_round_trips=1.0000 \
             cpu_s_per_1000_datagrams=0.5000"
        );
    }
}
