//! A real DNS server for RFC 3263 tests: dnsmasq on 127.0.0.1, a free port, only the records
//! the test gives (no upstream, no hosts file, no config file), killed by its PID on drop.
//!
//! Queries are logged (`--log-queries`) so a test can count what reached the server.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::require_program;

/// A running dnsmasq; stopped (killed by its PID) when dropped.
pub struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq answering for `local_domain` (`--local=/<domain>/`: names there that
    /// have no record get NXDOMAIN, nothing is forwarded) with the given record options, e.g.
    /// `--naptr-record=...`, `--srv-host=...`, `--host-record=...`, `--local-ttl=60`.
    /// Skips (returns `None`) per the peer policy when dnsmasq is not installed.
    pub fn start(local_domain: &str, records: &[String]) -> Option<Dnsmasq> {
        let program = require_program("dnsmasq")?;
        let mut last_err = String::new();
        // A port found free can be taken before dnsmasq binds it: a few tries.
        for attempt in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "sipt-dnsmasq-{}-{port}-{attempt}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let log = File::create(dir.join("dnsmasq.log")).expect("log file");
            let mut child = Command::new(&program)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--pid-file=",
                    "--no-resolv",
                    "--no-hosts",
                    "--no-poll",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    "--log-queries",
                    "--log-facility=-",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--local=/{local_domain}/"))
                .args(records)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn dnsmasq");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if wait_ready(&mut child, addr) {
                return Some(Dnsmasq { child, addr, dir });
            }
            let _ = child.kill();
            let _ = child.wait();
            last_err = std::fs::read_to_string(dir.join("dnsmasq.log")).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
        }
        panic!("dnsmasq did not start: {last_err}");
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dnsmasq.log")).unwrap_or_default()
    }

    /// The queries it received, as `TYPE name` (e.g. `NAPTR example.test`), in order; the
    /// start-up probe (`probe.invalid`) is left out.
    pub fn queries(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| {
                // "dnsmasq: query[SRV] _sip._udp.example.test from 127.0.0.1"
                let rest = &l[l.find("query[")? + 6..];
                let (rtype, rest) = rest.split_once(']')?;
                let name = rest.split_whitespace().next()?;
                (name != "probe.invalid").then(|| format!("{rtype} {name}"))
            })
            .collect()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 right now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// Waits (at most 5 s) until dnsmasq answers a DNS query on `addr`, or exits.
fn wait_ready(child: &mut Child, addr: SocketAddr) -> bool {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind probe socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    // A query for probe.invalid/A with RD set.
    let mut probe = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["probe", "invalid"] {
        probe.push(label.len() as u8);
        probe.extend_from_slice(label.as_bytes());
    }
    probe.extend_from_slice(&[0, 0, 1, 0, 1]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        let _ = sock.send_to(&probe, addr);
        if let Ok((n, _)) = sock.recv_from(&mut buf)
            && n >= 2
            && buf[..2] == [0x12, 0x34]
        {
            return true;
        }
    }
    false
}
