//! `cargo xtask bench`: `sipt serve` and Kamailio side by side on this machine, in one go.
//!
//! 1. builds `sipt` (release), starts `sipt serve --quiet` on its own ports and both Kamailio
//!    peers with `../shared/peers/kam.sh` (holding the same machine-wide locks as the tests);
//! 2. SIPp (UDP `-t u1`, TCP `-t t1`) against both through `bench.py`: server CPU per transaction;
//! 3. `sipt bench` over UDP, TCP, TLS, WS and WSS against both: peak transactions/s;
//! 4. idle connections (TCP, TLS, WS) against a fresh server each time: memory per connection,
//!    and (full mode) the hold targets: 50,000 TCP, 10,000 TLS, 10,000 WS on `sipt serve`;
//! 5. the criterion codec benchmark (decode + index next to a bare memmem).
//!
//! Writes `<target>/bench/results.json` and prints a table. `--quick` is the ~2-minute version.
//! Every load is bounded in time and count, on loopback; every process started here is
//! stopped by PID when [`Procs`] drops, on error too. Not a regression gate: the machine is
//! shared, so each figure comes with the foreign CPU measured meanwhile.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{cargo, describe, run_cmd, workspace_root};

/// `sipt serve`'s listeners for the benchmark: away from the defaults other tests use.
const SIPT_UDP_TCP: u16 = 25060;
const SIPT_TLS: u16 = 25061;
const SIPT_WS: u16 = 28080;
const SIPT_WSS: u16 = 28443;
/// SIPp's own port.
const SIPP_LOCAL: u16 = 25062;
/// The Kamailio peers' fixed ports (../shared/peers/README.md).
const KAM_SL: u16 = 5070;
const KAM_TLS_WS_TCP: u16 = 5072;
const KAM_TLS: u16 = 5073;
const KAM_WS: u16 = 8072;
const KAM_WSS: u16 = 8073;

/// What a run does; `--quick` shrinks every part.
struct Plan {
    quick: bool,
    parts: Vec<String>,
    sipp_reps: u32,
    sipp_secs: u32,
    quiet_wait_s: u32,
    load_secs: u32,
    /// (connections, concurrency) tried per transport and side; the best counts.
    load_settings: Vec<(u32, u32)>,
    /// Idle connections held against both sides (Kamailio's peers allow 4,096).
    hold_compare: u32,
    hold_secs: u32,
    /// Full mode: the hold targets on `sipt serve` (TCP, TLS, WS).
    hold_targets: Option<(u32, u32, u32)>,
    criterion: (&'static str, &'static str),
}

impl Plan {
    fn parse(args: &[String]) -> Result<Plan, String> {
        let mut quick = false;
        let mut parts: Vec<String> = ["sipp", "load", "hold", "codec"].map(String::from).into();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--only" => {
                    let v = it.next().ok_or("--only needs sipp,load,hold,codec")?;
                    parts = v.split(',').map(str::to_string).collect();
                }
                "-h" | "--help" => {
                    return Err(
                        "usage: cargo xtask bench [--quick] [--only sipp,load,hold,codec]".into(),
                    );
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(if quick {
            Plan {
                quick,
                parts,
                sipp_reps: 1,
                sipp_secs: 6,
                quiet_wait_s: 5,
                load_secs: 3,
                load_settings: vec![(2, 64)],
                hold_compare: 2_000,
                hold_secs: 1,
                hold_targets: None,
                criterion: ("0.5", "1"),
            }
        } else {
            Plan {
                quick,
                parts,
                sipp_reps: 2,
                sipp_secs: 15,
                quiet_wait_s: 30,
                load_secs: 8,
                load_settings: vec![(1, 64), (4, 64)],
                // Kamailio's peers allow 4,096 connections; 4,000 TLS/WS did not all open.
                hold_compare: 3_000,
                hold_secs: 3,
                hold_targets: Some((50_000, 10_000, 10_000)),
                criterion: ("1", "3"),
            }
        })
    }

    fn has(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let plan = Plan::parse(args)?;
    for tool in ["sipp", "kamailio", "python3", "bash"] {
        if find_program(tool).is_none() {
            return Err(format!("`{tool}` not found: run `cargo xtask deps` first"));
        }
    }
    let root = workspace_root();
    let shared = std::env::var_os("SIP_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"));
    let peers = shared.join("peers");
    if !peers.join("kam.sh").is_file() {
        return Err(format!(
            "{} has no kam.sh (set SIP_SHARED_DIR to the shared folder)",
            peers.display()
        ));
    }
    let scripts = root.join("xtask/scripts");
    let target = target_dir()?;
    let out_dir = target.join("bench");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let started = Instant::now();
    let mut r = Results::default();
    let clk_tck = clk_tck();

    if plan.has("sipp") || plan.has("load") || plan.has("hold") {
        run_cmd(cargo().args(["build", "--release", "-p", "sipt"]))?;
        let sipt = target.join("release/sipt");
        let mut procs = Procs::new(&peers, &sipt, &out_dir)?;
        procs.start_kam("kamailio-sl")?;
        procs.start_kam("kamailio-tls-ws")?;
        procs.start_sipt()?;
        if plan.has("sipp") {
            sipp_part(&plan, &mut procs, &peers, &scripts, &out_dir, &mut r)?;
        }
        if plan.has("load") {
            load_part(&plan, &mut procs, &sipt, clk_tck, &mut r)?;
        }
        if plan.has("hold") {
            hold_part(&plan, &mut procs, &peers, &scripts, &mut r)?;
        }
        drop(procs);
    }
    if plan.has("codec") {
        codec_part(&plan, &target, &mut r)?;
    }

    let path = out_dir.join("results.json");
    let json = r.to_json(&plan, started.elapsed());
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{}", r.table(&plan));
    println!("results: {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The parts.

fn sipp_part(
    plan: &Plan,
    procs: &mut Procs,
    peers: &Path,
    scripts: &Path,
    out_dir: &Path,
    r: &mut Results,
) -> Result<(), String> {
    let kam_pid = procs.kam_pid("kamailio-sl")?;
    let sipt_pid = procs.sipt_pid()?;
    for (t, flag) in [("udp", "u1"), ("tcp", "t1")] {
        let mut cpu = [None, None];
        let mut rate = [None, None];
        for (side, (name, pid, port)) in [
            ("sipt", sipt_pid, SIPT_UDP_TCP),
            ("kamailio", kam_pid, KAM_SL),
        ]
        .into_iter()
        .enumerate()
        {
            let label = format!("xtask-{name}-{t}");
            let time_limit = plan.sipp_secs;
            let mut cmd = Command::new("python3");
            cmd.arg(scripts.join("sipp_bench.py"))
                .arg(peers)
                .arg(plan.quiet_wait_s.to_string())
                .args(["--label", &label, "--server-pid", &pid.to_string()])
                .args(["--reps", &plan.sipp_reps.to_string()])
                .args(["--time-limit", &time_limit.to_string(), "--pause", "1"])
                .arg("--out")
                .arg(out_dir.join("sipp.jsonl"))
                .arg("--")
                .arg(format!("127.0.0.1:{port}"))
                .arg("-sf")
                .arg(peers.join("options-uac.xml"))
                .args(["-t", flag, "-i", "127.0.0.1", "-p", &SIPP_LOCAL.to_string()])
                .args(["-r", "100000", "-l", "5000", "-m", "50000000"]);
            let limit = plan.sipp_reps * (time_limit + 15 + plan.quiet_wait_s + 5) + 30;
            let out = run_bounded(&mut cmd, Duration::from_secs(limit.into()))?;
            let reps: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with('{') && l.contains("\"cpu_server\""))
                .collect();
            if reps.is_empty() {
                return Err(format!("bench.py {label} reported nothing:\n{out}"));
            }
            let mut per_tx = Vec::new();
            let mut rates = Vec::new();
            for l in &reps {
                let (c, rt) = (num(l, "cpu_server"), num(l, "rate_total"));
                if let (Some(c), Some(rt)) = (c, rt)
                    && rt > 0.0
                {
                    per_tx.push(c / rt * 1e6);
                    rates.push(rt);
                }
                r.raw_sipp.push(l.to_string());
                r.foreign
                    .push((format!("sipp {name} {t}"), num(l, "cpu_foreign")));
            }
            cpu[side] = median(&per_tx);
            rate[side] = median(&rates);
            eprintln!(
                "sipp {t} {name}: {:?} us/tx at {:?} tx/s",
                cpu[side], rate[side]
            );
        }
        let up = t.to_uppercase();
        r.row(
            format!("SIPp {up}: server CPU us/tx"),
            cpu[0],
            cpu[1],
            Target::AtMost(0.5),
        );
        r.row(
            format!("SIPp {up}: rate tx/s (info)"),
            rate[0],
            rate[1],
            Target::None,
        );
    }
    Ok(())
}

fn load_part(
    plan: &Plan,
    procs: &mut Procs,
    sipt: &Path,
    clk_tck: f64,
    r: &mut Results,
) -> Result<(), String> {
    let sipt_pid = procs.sipt_pid()?;
    let kam_sl = procs.kam_pid("kamailio-sl")?;
    let kam_tw = procs.kam_pid("kamailio-tls-ws")?;
    let cases: [(&str, String, String, u32, f64); 5] = [
        (
            "UDP",
            format!("sip:127.0.0.1:{SIPT_UDP_TCP};transport=udp"),
            format!("sip:127.0.0.1:{KAM_SL};transport=udp"),
            kam_sl,
            2.0,
        ),
        (
            "TCP",
            format!("sip:127.0.0.1:{SIPT_UDP_TCP};transport=tcp"),
            format!("sip:127.0.0.1:{KAM_SL};transport=tcp"),
            kam_sl,
            2.0,
        ),
        (
            "TLS",
            format!("sip:127.0.0.1:{SIPT_TLS};transport=tls"),
            format!("sip:127.0.0.1:{KAM_TLS};transport=tls"),
            kam_tw,
            1.0,
        ),
        (
            "WS",
            format!("ws://127.0.0.1:{SIPT_WS}"),
            format!("ws://127.0.0.1:{KAM_WS}"),
            kam_tw,
            1.0,
        ),
        (
            "WSS",
            format!("wss://127.0.0.1:{SIPT_WSS}"),
            format!("wss://127.0.0.1:{KAM_WSS}"),
            kam_tw,
            1.0,
        ),
    ];
    for (t, ours, theirs, kam_pid, factor) in cases {
        let mut peak = [None::<f64>, None::<f64>];
        let mut cpu_at_peak = [None::<f64>, None::<f64>];
        for (side, (name, uri, pid)) in [("sipt", &ours, sipt_pid), ("kamailio", &theirs, kam_pid)]
            .into_iter()
            .enumerate()
        {
            for &(conns, conc) in &plan.load_settings {
                let mut cmd = Command::new(sipt);
                cmd.arg("bench")
                    .arg(uri)
                    .args(["--duration", &plan.load_secs.to_string()])
                    .args(["--connections", &conns.to_string()])
                    .args(["--concurrency", &conc.to_string()])
                    .args(["--timeout", "2000", "--json", "--insecure"]);
                let server = descendants(&[pid]);
                let child = BoundedChild::spawn(&mut cmd)?;
                let gen_pid = child.pid();
                // CPU sampled inside the run (after the connections are up, before the end),
                // while the generator still exists in /proc.
                let run = Duration::from_secs(plan.load_secs.into());
                std::thread::sleep(Duration::from_millis(500));
                let s0 = ticks_of(&server);
                let a0 = all_ticks();
                let t0 = Instant::now();
                std::thread::sleep(run.saturating_sub(Duration::from_millis(900)));
                let wall = t0.elapsed().as_secs_f64();
                let s1 = ticks_of(&server);
                let a1 = all_ticks();
                let out = child.finish(Duration::from_secs(u64::from(plan.load_secs) + 30))?;
                let gen_ticks = a1
                    .get(&gen_pid)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(a0.get(&gen_pid).copied().unwrap_or(0));
                let foreign = foreign_ticks(&a0, &a1, &server, gen_pid);
                let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
                let tps = num(line, "tps");
                let cpu_server = (s1.saturating_sub(s0)) as f64 / clk_tck / wall;
                let cpu_foreign = foreign as f64 / clk_tck / wall;
                let cpu_gen = gen_ticks as f64 / clk_tck / wall;
                eprintln!(
                    "sipt bench {t} -> {name} c={conns} k={conc}: {tps:?} tx/s, server {cpu_server:.2} cores, generator {cpu_gen:.2}, foreign {cpu_foreign:.2}"
                );
                r.raw_load.push(format!(
                    "{{\"transport\":\"{t}\",\"server\":\"{name}\",\"connections\":{conns},\"concurrency\":{conc},\"cpu_server\":{cpu_server:.3},\"cpu_generator\":{cpu_gen:.3},\"cpu_foreign\":{cpu_foreign:.3},\"sipt_bench\":{}}}",
                    if line.is_empty() { "null" } else { line }
                ));
                r.foreign
                    .push((format!("load {name} {t} c{conns}"), Some(cpu_foreign)));
                if let Some(tps) = tps
                    && peak[side].is_none_or(|p| tps > p)
                {
                    peak[side] = Some(tps);
                    cpu_at_peak[side] = (tps > 0.0).then(|| cpu_server / tps * 1e6);
                }
            }
        }
        r.row(
            format!("sipt bench {t}: peak tx/s"),
            peak[0],
            peak[1],
            Target::AtLeast(factor),
        );
        r.row(
            format!("sipt bench {t}: server CPU us/tx at peak (info)"),
            cpu_at_peak[0],
            cpu_at_peak[1],
            Target::None,
        );
    }
    Ok(())
}

fn hold_part(
    plan: &Plan,
    procs: &mut Procs,
    peers: &Path,
    scripts: &Path,
    r: &mut Results,
) -> Result<(), String> {
    let n = plan.hold_compare;
    for (t, ours_port, kam_port) in [
        ("tcp", SIPT_UDP_TCP, KAM_TLS_WS_TCP),
        ("tls", SIPT_TLS, KAM_TLS),
        ("ws", SIPT_WS, KAM_WS),
    ] {
        let mut rss = [None, None];
        let mut pss = [None, None];
        for side in 0..2 {
            // A fresh server for each measurement: freed pages stay resident.
            let (pid, port) = if side == 0 {
                procs.restart_sipt()?;
                (procs.sipt_pid()?, ours_port)
            } else {
                procs.restart_kam("kamailio-tls-ws")?;
                (procs.kam_pid("kamailio-tls-ws")?, kam_port)
            };
            let line = hold(peers, scripts, t, port, n, plan.hold_secs, pid)?;
            rss[side] = num(&line, "per_conn_rss_kb");
            pss[side] = num(&line, "per_conn_pss_kb");
            let ok = num(&line, "still_open").unwrap_or(0.0) as u32;
            eprintln!(
                "hold {t} x{n} {}: {ok} held, {:?} kB RSS, {:?} kB PSS per connection",
                ["sipt", "kamailio"][side],
                rss[side],
                pss[side]
            );
            r.raw_hold.push(format!(
                "{{\"server\":\"{}\",\"result\":{line}}}",
                ["sipt", "kamailio"][side]
            ));
        }
        let up = t.to_uppercase();
        r.row(
            format!("idle {up} x{n}: kB/conn RSS"),
            rss[0],
            rss[1],
            Target::AtMost(0.5),
        );
        r.row(
            format!("idle {up} x{n}: kB/conn PSS"),
            pss[0],
            pss[1],
            Target::AtMost(0.5),
        );
    }
    if let Some((tcp, tls, ws)) = plan.hold_targets {
        for (t, port, count) in [
            ("tcp", SIPT_UDP_TCP, tcp),
            ("tls", SIPT_TLS, tls),
            ("ws", SIPT_WS, ws),
        ] {
            procs.restart_sipt()?;
            let pid = procs.sipt_pid()?;
            // Without CAP_SYS_RESOURCE the hard open-file limit caps what server and holder
            // can have open: hold what fits and say so, rather than fail the whole run.
            let fds = nofile_limit();
            let tried = count.min(fds.saturating_sub(500));
            let up = t.to_uppercase();
            let line = match hold(peers, scripts, t, port, tried, plan.hold_secs, pid) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("hold {t} x{tried} sipt failed: {e}");
                    "{}".to_string()
                }
            };
            let held = num(&line, "still_open");
            let per = num(&line, "per_conn_rss_kb");
            eprintln!(
                "hold {t} x{tried} sipt: {held:?} held, {per:?} kB RSS per connection (fd limit {fds})"
            );
            r.raw_hold.push(format!(
                "{{\"server\":\"sipt\",\"tried\":{tried},\"fd_limit\":{fds},\"result\":{line}}}"
            ));
            r.row(
                format!("hold {up}: connections held (fd limit {fds})"),
                held,
                None,
                Target::Count(f64::from(count)),
            );
            r.row(
                format!("hold {up} x{count}: kB/conn RSS (info)"),
                per,
                None,
                Target::None,
            );
        }
    }
    procs.restart_sipt()?;
    Ok(())
}

/// The open-file limit a child gets after our `ulimit -n 200000` attempt (root without
/// CAP_SYS_RESOURCE, e.g. in a container, keeps the old hard limit).
fn nofile_limit() -> u32 {
    Command::new("bash")
        .arg("-c")
        .arg("ulimit -n 200000 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; ulimit -n")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(1024)
}

/// One idle-connection hold: `conn_hold.py` for TCP/TLS up to its 20,000, our asyncio holder
/// for WS and above that. Returns the holder's JSON line.
fn hold(
    peers: &Path,
    scripts: &Path,
    t: &str,
    port: u16,
    count: u32,
    hold_secs: u32,
    pid: u32,
) -> Result<String, String> {
    let mut cmd = Command::new("bash");
    // Raise the open-file limit for the holder (root may raise the hard limit too).
    cmd.arg("-c")
        .arg("ulimit -n 200000 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec \"$@\"")
        .arg("hold");
    if t != "ws" && count <= 20_000 {
        cmd.arg("python3").arg(peers.join("conn_hold.py"));
        cmd.args(["127.0.0.1", &port.to_string(), &count.to_string()]);
        if t == "tls" {
            cmd.arg("--tls");
        }
    } else {
        cmd.arg("python3").arg(scripts.join("hold.py"));
        cmd.args([t, "127.0.0.1", &port.to_string(), &count.to_string()]);
        cmd.args(["--rate", "5000"]);
    }
    cmd.args(["--hold-seconds", &hold_secs.to_string()])
        .args(["--server-pid", &pid.to_string()]);
    // Opens and closes paced at 2,000-5,000/s, TLS handshakes ~2 ms each in Python.
    let limit = 60 + u64::from(count) / 200 + u64::from(hold_secs);
    let out = run_bounded(&mut cmd, Duration::from_secs(limit))?;
    out.lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .map(str::to_string)
        .ok_or_else(|| format!("holder reported nothing:\n{out}"))
}

fn codec_part(plan: &Plan, target: &Path, r: &mut Results) -> Result<(), String> {
    let (warm, meas) = plan.criterion;
    run_cmd(cargo().args([
        "bench",
        "-p",
        "sip-transport-api",
        "--bench",
        "codec",
        "--",
        "--warm-up-time",
        warm,
        "--measurement-time",
        meas,
    ]))?;
    for msg in ["invite_sdp", "ok_200", "long_request"] {
        let est = |bench: &str| -> Option<f64> {
            let p = target
                .join("criterion")
                .join(msg)
                .join(bench)
                .join("new/estimates.json");
            let s = std::fs::read_to_string(p).ok()?;
            let mean = s.find("\"mean\"")?;
            num(&s[mean..], "point_estimate")
        };
        let memmem = est("memmem_head_end");
        let dgram = est("datagram_decode_index_fresh");
        let shared = est("datagram_decode_index_shared");
        let stream = est("stream_decode_index");
        r.raw_codec.push(format!(
            "{{\"message\":\"{msg}\",\"memmem_ns\":{},\"datagram_decode_index_fresh_ns\":{},\"datagram_decode_index_shared_ns\":{},\"stream_decode_index_ns\":{}}}",
            json_num(memmem),
            json_num(dgram),
            json_num(shared),
            json_num(stream)
        ));
        r.row_ratio(
            format!("codec {msg}: datagram decode+index / memmem"),
            dgram,
            memmem,
            Some(3.0),
        );
        r.row_ratio(
            format!("codec {msg}: same + shared Bytes clone / memmem"),
            shared,
            memmem,
            None,
        );
        r.row_ratio(
            format!("codec {msg}: stream decode+index / memmem"),
            stream,
            memmem,
            Some(3.0),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Results.

#[derive(Clone, Copy)]
enum Target {
    /// ours / Kamailio at most this.
    AtMost(f64),
    /// ours / Kamailio at least this.
    AtLeast(f64),
    /// ours at least this many (no Kamailio figure).
    Count(f64),
    /// A figure recorded for information.
    None,
}

struct Row {
    metric: String,
    ours: Option<f64>,
    kam: Option<f64>,
    ratio: Option<f64>,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Results {
    rows: Vec<Row>,
    raw_sipp: Vec<String>,
    raw_load: Vec<String>,
    raw_hold: Vec<String>,
    raw_codec: Vec<String>,
    foreign: Vec<(String, Option<f64>)>,
}

impl Results {
    fn row(&mut self, metric: String, ours: Option<f64>, kam: Option<f64>, target: Target) {
        let ratio = match (ours, kam) {
            (Some(o), Some(k)) if k > 0.0 => Some(o / k),
            _ => None,
        };
        let (target, met) = match target {
            Target::AtMost(f) => (format!("<= {f}x"), ratio.map(|x| x <= f)),
            Target::AtLeast(f) => (format!(">= {f}x"), ratio.map(|x| x >= f)),
            Target::Count(c) => (format!(">= {c}"), ours.map(|o| o >= c)),
            Target::None => ("-".into(), None),
        };
        self.rows.push(Row {
            metric,
            ours,
            kam,
            ratio,
            target,
            met,
        });
    }

    /// A row whose ratio is ours over a baseline of ours (the codec), not over Kamailio; with
    /// no `max` it is for information.
    fn row_ratio(
        &mut self,
        metric: String,
        ours: Option<f64>,
        base: Option<f64>,
        max: Option<f64>,
    ) {
        let ratio = match (ours, base) {
            (Some(o), Some(b)) if b > 0.0 => Some(o / b),
            _ => None,
        };
        self.rows.push(Row {
            metric: format!("{metric} (ns; memmem in Kamailio column)"),
            ours,
            kam: base,
            ratio,
            target: max.map_or("-".into(), |m| format!("<= {m}x")),
            met: max.and_then(|m| ratio.map(|x| x <= m)),
        });
    }

    fn table(&self, plan: &Plan) -> String {
        let w = self.rows.iter().map(|r| r.metric.len()).max().unwrap_or(10);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\ncargo xtask bench{} — ours = sipt serve, Kamailio = ../shared/peers (kam.sh)",
            if plan.quick { " --quick" } else { "" }
        );
        let _ = writeln!(
            s,
            "{:<w$}  {:>12}  {:>12}  {:>7}  {:>8}  met?",
            "metric", "ours", "Kamailio", "ratio", "target"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<w$}  {:>12}  {:>12}  {:>7}  {:>8}  {}",
                r.metric,
                fmt_num(r.ours),
                fmt_num(r.kam),
                r.ratio.map(|x| format!("{x:.2}x")).unwrap_or("-".into()),
                r.target,
                match r.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                }
            );
        }
        let noisy: Vec<String> = self
            .foreign
            .iter()
            .filter_map(|(k, v)| v.filter(|v| *v > 0.1).map(|v| format!("{k} {v:.2}")))
            .collect();
        let max = self
            .foreign
            .iter()
            .filter_map(|(_, v)| *v)
            .fold(0.0_f64, f64::max);
        let _ = writeln!(
            s,
            "foreign CPU (other processes, cores) max {max:.2}; runs above 0.1: {}",
            if noisy.is_empty() {
                "none".to_string()
            } else {
                noisy.join(", ")
            }
        );
        s
    }

    fn to_json(&self, plan: &Plan, took: Duration) -> String {
        let mut s = String::from("{\n");
        let _ = writeln!(s, "  \"date\": {},", json_str(&date()));
        let _ = writeln!(
            s,
            "  \"mode\": \"{}\",",
            if plan.quick { "quick" } else { "full" }
        );
        let _ = writeln!(s, "  \"seconds\": {:.0},", took.as_secs_f64());
        let _ = writeln!(
            s,
            "  \"machine\": {{\"cpus\": {}, \"mem_gib\": {:.1}}},",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            mem_total_gib()
        );
        s.push_str("  \"metrics\": [\n");
        for (i, r) in self.rows.iter().enumerate() {
            let _ = write!(
                s,
                "    {{\"metric\": {}, \"ours\": {}, \"kamailio\": {}, \"ratio\": {}, \"target\": {}, \"met\": {}}}",
                json_str(&r.metric),
                json_num(r.ours),
                json_num(r.kam),
                json_num(r.ratio),
                json_str(&r.target),
                r.met.map_or("null".to_string(), |m| m.to_string())
            );
            s.push_str(if i + 1 < self.rows.len() { ",\n" } else { "\n" });
        }
        s.push_str("  ],\n");
        for (name, lines, last) in [
            ("sipp", &self.raw_sipp, false),
            ("sipt_bench", &self.raw_load, false),
            ("idle_hold", &self.raw_hold, false),
            ("codec", &self.raw_codec, true),
        ] {
            let _ = write!(s, "  \"{name}\": [");
            for (i, l) in lines.iter().enumerate() {
                s.push_str(if i == 0 { "\n    " } else { ",\n    " });
                s.push_str(l);
            }
            s.push_str(if lines.is_empty() { "]" } else { "\n  ]" });
            s.push_str(if last { "\n" } else { ",\n" });
        }
        s.push_str("}\n");
        s
    }
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "null".into(),
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The number after `"key":` in a flat JSON text (the tools print one object per line).
fn num(json: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let i = json.find(&pat)? + pat.len();
    let rest = json[i..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn mem_total_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0)
}

// ---------------------------------------------------------------------------------------
// Processes.

/// Everything this run started that lives across steps: `sipt serve` and the Kamailio
/// peers (with the machine-wide locks the tests take for them). Drop stops them by PID.
struct Procs {
    peers: PathBuf,
    sipt: PathBuf,
    log_dir: PathBuf,
    serve: Option<BoundedChild>,
    kams: Vec<String>,
    locks: Vec<File>,
}

impl Procs {
    fn new(peers: &Path, sipt: &Path, log_dir: &Path) -> Result<Procs, String> {
        Ok(Procs {
            peers: peers.to_path_buf(),
            sipt: sipt.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            serve: None,
            kams: Vec::new(),
            locks: Vec::new(),
        })
    }

    fn start_sipt(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg("ulimit -n 200000 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec \"$@\"")
            .arg("serve")
            .arg(&self.sipt)
            .args(["serve", "--quiet"])
            // Every benchmark client is 127.0.0.1: the per-address limit must not cap them.
            .arg("--max-connections-per-ip=100000")
            .arg(format!("--listen=udp:127.0.0.1:{SIPT_UDP_TCP}"))
            .arg(format!("--listen=tcp:127.0.0.1:{SIPT_UDP_TCP}"))
            .arg(format!("--listen=tls:127.0.0.1:{SIPT_TLS}"))
            .arg(format!("--listen=ws:127.0.0.1:{SIPT_WS}"))
            .arg(format!("--listen=wss:127.0.0.1:{SIPT_WSS}"));
        let log = self.log_dir.join("sipt-serve.log");
        let err = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stderr(err);
        let child = BoundedChild::spawn(&mut cmd)?;
        // Ready when it has printed a line per listener.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut listening = 0;
        while listening < 5 {
            let left = deadline.saturating_duration_since(Instant::now());
            match child.lines.recv_timeout(left) {
                Ok(l) if l.starts_with("listening") => listening += 1,
                Ok(_) => {}
                Err(_) => {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(format!("sipt serve did not start its 5 listeners:\n{log}"));
                }
            }
        }
        eprintln!("sipt serve started, PID {}", child.pid());
        self.serve = Some(child);
        Ok(())
    }

    fn restart_sipt(&mut self) -> Result<(), String> {
        if let Some(c) = self.serve.take() {
            c.stop();
        }
        self.start_sipt()
    }

    fn sipt_pid(&self) -> Result<u32, String> {
        self.serve
            .as_ref()
            .map(BoundedChild::pid)
            .ok_or_else(|| "sipt serve is not running".to_string())
    }

    fn kam_sh(&self, verb: &str, name: &str) -> Result<String, String> {
        let mut cmd = Command::new("bash");
        cmd.arg(self.peers.join("kam.sh"))
            .arg(verb)
            .arg(self.peers.join(format!("{name}.cfg")));
        run_bounded(&mut cmd, Duration::from_secs(30))
    }

    fn start_kam(&mut self, name: &str) -> Result<(), String> {
        if !self.kams.iter().any(|k| k == name) {
            // The tests' lock for this fixed-port peer: wait for them, they wait for us.
            self.locks.push(machine_lock(name)?);
            self.kams.push(name.to_string());
        }
        // A run that crashed may have left one behind (under the same lock: ours).
        self.kam_sh("stop", name)?;
        let out = self.kam_sh("start", name)?;
        eprintln!("{}", out.trim());
        self.kam_pid(name).map(|_| ())
    }

    fn restart_kam(&mut self, name: &str) -> Result<(), String> {
        self.start_kam(name)
    }

    fn kam_pid(&self, name: &str) -> Result<u32, String> {
        let p = Path::new("/tmp").join(name).join("kamailio.pid");
        std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("no Kamailio PID in {}", p.display()))
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        if let Some(c) = self.serve.take() {
            c.stop();
        }
        for name in std::mem::take(&mut self.kams) {
            if let Err(e) = self.kam_sh("stop", &name) {
                eprintln!("xtask bench: stopping {name}: {e}");
            }
        }
        // The locks are released when the files close.
    }
}

/// The lock file `sip-transport-testkit` takes around a fixed-port Kamailio peer.
fn machine_lock(name: &str) -> Result<File, String> {
    let path = std::env::temp_dir().join(format!("sip-transport-peer-{name}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut told = false;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                if !told {
                    eprintln!("waiting for {} (a test is using {name})", path.display());
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

/// A child process with its stdout read line by line on a thread; killed by PID on drop.
struct BoundedChild {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    desc: String,
}

impl BoundedChild {
    fn spawn(cmd: &mut Command) -> Result<BoundedChild, String> {
        let desc = describe(cmd);
        eprintln!("+ {desc}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {desc}: {e}"))?;
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines() {
                    let Ok(l) = l else { break };
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(BoundedChild {
            child: Some(child),
            lines: rx,
            desc,
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits for the exit (killing it at `limit`) and returns its stdout.
    fn finish(mut self, limit: Duration) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        let mut out = String::new();
        let status = loop {
            while let Ok(l) = self.lines.try_recv() {
                out.push_str(&l);
                out.push('\n');
            }
            let Some(c) = self.child.as_mut() else {
                return Err("no child".into());
            };
            match c.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    let _ = c.kill(); // SIGKILL to its PID
                    let _ = c.wait();
                    self.child = None;
                    return Err(format!("{} ran past {limit:?}; killed", self.desc));
                }
                Err(e) => return Err(format!("{}: {e}", self.desc)),
            }
        };
        self.child = None;
        // The reader thread ends at EOF.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            out.push_str(&l);
            out.push('\n');
        }
        if !status.success() {
            eprintln!("note: {} exited with {status}", self.desc);
        }
        Ok(out)
    }

    /// SIGTERM by PID, then SIGKILL after 3 s.
    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Ok(None) = c.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
        }
        let _ = c.wait();
    }
}

impl Drop for BoundedChild {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Runs `cmd` to its end (killed by PID at `limit`) and returns its stdout; stderr passes
/// through. A non-zero exit is reported but not an error: the output says what happened.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<String, String> {
    BoundedChild::spawn(cmd)?.finish(limit)
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The workspace's target directory as cargo sees it (CARGO_TARGET_DIR, config, default).
fn target_dir() -> Result<PathBuf, String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    let s = String::from_utf8_lossy(&out.stdout);
    let key = "\"target_directory\":\"";
    let i = s.find(key).ok_or("cargo metadata: no target_directory")? + key.len();
    let end = s[i..]
        .find('"')
        .ok_or("cargo metadata: bad target_directory")?;
    Ok(PathBuf::from(s[i..i + end].replace("\\\\", "\\")))
}

// ---------------------------------------------------------------------------------------
// CPU accounting from /proc (as bench.py does it).

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// (ppid, utime + stime) of a PID.
fn stat_of(pid: u32) -> Option<(u32, u64)> {
    let mut s = String::new();
    File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
    let rest: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let t = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some((ppid, t))
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn descendants(roots: &[u32]) -> Vec<u32> {
    let mut kids: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in pids() {
        if let Some((pp, _)) = stat_of(p) {
            kids.entry(pp).or_default().push(p);
        }
    }
    let mut out = Vec::new();
    let mut todo = roots.to_vec();
    while let Some(p) = todo.pop() {
        if !out.contains(&p) {
            out.push(p);
            todo.extend(kids.get(&p).into_iter().flatten().copied());
        }
    }
    out
}

fn ticks_of(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| stat_of(*p))
        .map(|(_, t)| t)
        .sum()
}

fn all_ticks() -> HashMap<u32, u64> {
    pids()
        .into_iter()
        .filter_map(|p| stat_of(p).map(|(_, t)| (p, t)))
        .collect()
}

/// CPU ticks used between two snapshots by processes other than the server and generator.
fn foreign_ticks(
    a0: &HashMap<u32, u64>,
    a1: &HashMap<u32, u64>,
    server: &[u32],
    generator: u32,
) -> u64 {
    a1.iter()
        .filter(|(p, _)| !server.contains(p) && **p != generator && **p != std::process::id())
        .map(|(p, t)| t.saturating_sub(a0.get(p).copied().unwrap_or(0)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_json_lines() {
        let l = r#"{"label": "x", "rate_total": 18716.5, "cpu_server": 0.19, "neg": -1, "e": 1e3}"#;
        assert_eq!(num(l, "rate_total"), Some(18716.5));
        assert_eq!(num(l, "cpu_server"), Some(0.19));
        assert_eq!(num(l, "neg"), Some(-1.0));
        assert_eq!(num(l, "e"), Some(1000.0));
        assert_eq!(num(l, "label"), None);
        assert_eq!(num(l, "missing"), None);
        let est = r#"{"mean":{"confidence_interval":{"lower_bound":1.0},"point_estimate":181.5},"median":{"point_estimate":9.0}}"#;
        let m = est.find("\"mean\"").expect("mean");
        assert_eq!(num(&est[m..], "point_estimate"), Some(181.5));
    }

    #[test]
    fn medians_and_json() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(json_str("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
        let mut r = Results::default();
        r.row("x".into(), Some(1.0), Some(4.0), Target::AtMost(0.5));
        r.row("y".into(), Some(1.0), Some(1.0), Target::AtLeast(2.0));
        assert_eq!(r.rows[0].met, Some(true));
        assert_eq!(r.rows[1].met, Some(false));
    }
}
