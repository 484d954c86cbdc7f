//! `cargo xtask soak [--minutes N] [--rate R]`: a long run of mixed UDP/TCP/TLS/WS load against
//! one `sipt serve`, reporting lost transactions and the server's RSS over time (issue 9).
//!
//! Builds `sipt` in release, starts `sipt serve` on loopback (udp, tcp, tls with its self-signed
//! certificate, ws), then runs rounds of four `sipt bench` processes at once, one per transport,
//! each paced to `--rate` transactions/s (default 250, so about 1,000/s in total: moderate on a
//! 2-core machine). After every round it samples the server's VmRSS. It fails when any
//! transaction is lost (timed out, failed to send, or answered with a non-2xx) or when RSS
//! keeps growing: the last sample may not exceed the first one taken after warm-up (round 2)
//! by more than 25% + 16 MiB. Not part of CI: `--minutes` defaults to 10.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TRANSPORTS: [&str; 4] = ["udp", "tcp", "tls", "ws"];

struct Round {
    at_s: u64,
    sent: u64,
    ok: u64,
    lost: u64,
    rss_kib: u64,
    per_kind: Vec<(String, u64, f64)>,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut minutes: u64 = 10;
    let mut rate: u64 = 250;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--minutes" => minutes = num("--minutes")?.max(1),
            "--rate" => rate = num("--rate")?.max(1),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (--minutes N, --rate R)"
                ));
            }
        }
    }
    crate::run_cmd(crate::cargo().args(["build", "--release", "-p", "sipt"]))?;
    let sipt = target_dir().join("release").join("sipt");
    if !sipt.is_file() {
        return Err(format!("{} not found after the build", sipt.display()));
    }
    let mut server = Server::start(&sipt)?;
    eprintln!(
        "soak: {minutes} min, {rate} tx/s per transport, server pid {} on {:?}",
        server.child.id(),
        server.listening
    );
    let rss_start = rss_kib(server.child.id()).unwrap_or(0);
    let round_s: u64 = 30;
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    let start = Instant::now();
    let mut rounds: Vec<Round> = Vec::new();
    let mut failure = None;
    while Instant::now() + Duration::from_secs(round_s / 2) < deadline {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let secs = round_s.min(left.max(1));
        match run_round(&sipt, &server, rate, secs) {
            Ok(mut r) => {
                if let Some(code) = server.child.try_wait().ok().flatten() {
                    failure = Some(format!("sipt serve exited during the soak: {code}"));
                    break;
                }
                r.at_s = start.elapsed().as_secs();
                r.rss_kib = rss_kib(server.child.id()).unwrap_or(0);
                let kinds: Vec<String> = r
                    .per_kind
                    .iter()
                    .map(|(k, ok, tps)| format!("{k} {ok} ok {tps:.0}/s"))
                    .collect();
                eprintln!(
                    "soak: t={:4}s sent {:7} ok {:7} lost {} rss {} KiB  [{}]",
                    r.at_s,
                    r.sent,
                    r.ok,
                    r.lost,
                    r.rss_kib,
                    kinds.join(", ")
                );
                rounds.push(r);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let summary = server.terminate();
    let sent: u64 = rounds.iter().map(|r| r.sent).sum();
    let ok: u64 = rounds.iter().map(|r| r.ok).sum();
    let lost: u64 = rounds.iter().map(|r| r.lost).sum();
    let rss: Vec<u64> = rounds.iter().map(|r| r.rss_kib).collect();
    println!("soak summary");
    println!(
        "  duration        {:.1} min",
        start.elapsed().as_secs_f64() / 60.0
    );
    println!("  transactions    sent {sent}, ok {ok}, lost {lost}");
    println!(
        "  rate            {:.0} tx/s overall",
        ok as f64 / start.elapsed().as_secs_f64().max(1.0)
    );
    println!("  server RSS KiB  start {rss_start}, per round {rss:?}");
    println!("  server          {summary}");
    if let Some(e) = failure {
        return Err(e);
    }
    if lost > 0 {
        return Err(format!("{lost} transactions lost"));
    }
    if rounds.len() >= 3 {
        let base = rss[1];
        let last = rss[rss.len() - 1];
        let bound = base + base / 4 + 16 * 1024;
        if last > bound {
            return Err(format!(
                "server RSS grew from {base} KiB (after warm-up) to {last} KiB (bound {bound} KiB)"
            ));
        }
    }
    Ok(())
}

/// Four `sipt bench` processes at once, one per transport; their JSON summaries added up.
fn run_round(sipt: &PathBuf, server: &Server, rate: u64, secs: u64) -> Result<Round, String> {
    let mut children = Vec::new();
    for kind in TRANSPORTS {
        let addr = server
            .listening
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| format!("no {kind} listener"))?;
        let uri = match kind {
            "udp" => format!("sip:{addr}"),
            "ws" => format!("ws://{addr}"),
            k => format!("sip:{addr};transport={k}"),
        };
        let child = Command::new(sipt)
            .args(["bench", &uri, "--insecure", "--json"])
            .args(["--rate", &rate.to_string(), "--duration", &secs.to_string()])
            .args([
                "--connections",
                "4",
                "--concurrency",
                "16",
                "--timeout",
                "8000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run sipt bench: {e}"))?;
        children.push((kind, child));
    }
    let mut round = Round {
        at_s: 0,
        sent: 0,
        ok: 0,
        lost: 0,
        rss_kib: 0,
        per_kind: Vec::new(),
    };
    let mut errors = Vec::new();
    for (kind, child) in children {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("sipt bench {kind}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(json) = stdout.lines().rev().find(|l| l.starts_with('{')) else {
            errors.push(format!(
                "sipt bench {kind} printed no summary ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        };
        let field = |name: &str| json_number(json, name).unwrap_or(0.0);
        let (sent, ok) = (field("sent") as u64, field("ok") as u64);
        let lost = field("failed") as u64 + field("timeouts") as u64;
        round.sent += sent;
        round.ok += ok;
        round.lost += lost + sent.saturating_sub(ok + lost);
        round.per_kind.push((kind.to_owned(), ok, field("tps")));
    }
    if errors.is_empty() {
        Ok(round)
    } else {
        Err(errors.join("; "))
    }
}

/// A number field of a flat JSON object line (no nesting in `sipt bench --json`).
fn json_number(json: &str, name: &str) -> Option<f64> {
    let key = format!("\"{name}\":");
    let at = json.find(&key)? + key.len();
    let rest = json[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

/// Resident set size of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The `sipt serve` child; killed by its PID when dropped.
struct Server {
    child: Child,
    listening: Vec<(String, String)>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(sipt: &PathBuf) -> Result<Server, String> {
        let mut cmd = Command::new(sipt);
        cmd.args(["serve", "--quiet"]);
        for kind in TRANSPORTS {
            cmd.args(["--listen", &format!("{kind}:127.0.0.1:0")]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start sipt serve: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            listening: Vec::new(),
            lines,
        };
        while server.listening.len() < TRANSPORTS.len() {
            let line = server
                .lines
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "sipt serve did not print its listeners".to_owned())?;
            let mut parts = line.split_whitespace();
            if parts.next() == Some("listening")
                && let (Some(k), Some(a)) = (parts.next(), parts.next())
            {
                server.listening.push((k.to_owned(), a.to_owned()));
            }
        }
        Ok(server)
    }

    /// SIGTERM, then the summary line `sipt serve` prints.
    fn terminate(&mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let summary = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| "no summary".to_owned());
        let _ = self.child.wait();
        summary
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
