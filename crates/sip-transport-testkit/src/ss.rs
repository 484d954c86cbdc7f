//! The kernel's view of TCP sockets, through iproute2's `ss -tanoie --tos`: the TOS and
//! traffic class each socket marks its packets with, and whether its keepalive timer runs.
//!
//! Lets a test check the options a transport set on sockets it keeps to itself (listener,
//! accepted and dialed connections) from outside, on Linux, without hooks in the transport.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// One TCP socket as `ss` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocketInfo {
    /// `LISTEN`, `ESTAB`, ...
    pub state: String,
    /// The `Send-Q` column: for a listener, its backlog.
    pub send_q: u32,
    /// Local port.
    pub local_port: u16,
    /// Remote port (0 for a listener).
    pub peer_port: u16,
    /// `tos:` (IP_TOS), when shown.
    pub tos: Option<u8>,
    /// `tclass:` (IPV6_TCLASS), shown for IPv6 sockets.
    pub tclass: Option<u8>,
    /// The timer `ss` shows (`keepalive`, `on` for retransmission, `persist`, ...). It shows
    /// one: a retransmission timer hides the keepalive timer.
    pub timer: Option<String>,
    /// Time left on the keepalive timer (`timer:(keepalive,44sec,0)`), when it runs.
    pub keepalive_timer: Option<Duration>,
}

/// The TCP sockets with `port` as local or remote port, or `None` (skipped per the peer
/// policy, a failure under CI) when `ss` is missing.
pub fn tcp_sockets_on_port(port: u16) -> Option<Vec<TcpSocketInfo>> {
    let ss = crate::require_program("ss")?;
    let filter = format!("( sport = :{port} or dport = :{port} )");
    let out = Command::new(ss)
        .args(["-tanoieH", "--tos", &filter])
        .output()
        .expect("run ss");
    assert!(out.status.success(), "ss failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // A socket's record is its first line plus indented continuation lines.
    let mut records: Vec<String> = Vec::new();
    for line in text.lines() {
        match records.last_mut() {
            Some(r) if line.starts_with(char::is_whitespace) => {
                r.push(' ');
                r.push_str(line);
            }
            _ if !line.trim().is_empty() => records.push(line.to_owned()),
            _ => {}
        }
    }
    Some(records.iter().filter_map(|r| parse_record(r)).collect())
}

/// The OS's keepalive idle time, which the transports' default configs keep (7200 s on Linux
/// unless `net.ipv4.tcp_keepalive_time` says otherwise).
pub fn os_keepalive_idle_secs() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_keepalive_time")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(7200)
}

/// `ss`'s own text for `port`, for failure messages.
fn raw(port: u16) -> String {
    let filter = format!("( sport = :{port} or dport = :{port} )");
    Command::new("ss")
        .args(["-tanoieH", "--tos", &filter])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn parse_record(record: &str) -> Option<TcpSocketInfo> {
    let fields: Vec<&str> = record.split_whitespace().collect();
    let port = |s: &str| s.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
    let hex = |name: &str| {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| u8::from_str_radix(v.trim_start_matches("0x"), 16).ok())
    };
    let timer = fields
        .iter()
        .find_map(|f| f.strip_prefix("timer:("))
        .and_then(|rest| rest.split(',').next())
        .map(str::to_owned);
    let keepalive_timer = fields
        .iter()
        .find_map(|f| f.strip_prefix("timer:(keepalive,"))
        .map(|rest| parse_ss_time(rest.split(',').next().unwrap_or("")));
    Some(TcpSocketInfo {
        state: fields.first()?.to_string(),
        send_q: fields.get(2)?.parse().ok()?,
        local_port: port(fields.get(3)?)?,
        peer_port: port(fields.get(4)?).unwrap_or(0),
        tos: hex("tos:"),
        tclass: hex("tclass:"),
        timer,
        keepalive_timer,
    })
}

/// `ss`'s timer text: e.g. `44sec`, `1min13sec`, `119min`, `250ms`.
fn parse_ss_time(s: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut unit = String::new();
    let mut flush = |number: &mut String, unit: &mut String| {
        let n: u64 = number.parse().unwrap_or(0);
        total += match unit.as_str() {
            "ms" => Duration::from_millis(n),
            "sec" => Duration::from_secs(n),
            "min" => Duration::from_secs(n * 60),
            "h" | "hr" => Duration::from_secs(n * 3600),
            _ => Duration::ZERO,
        };
        number.clear();
        unit.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                flush(&mut number, &mut unit);
            }
            number.push(c);
        } else {
            unit.push(c);
        }
    }
    flush(&mut number, &mut unit);
    total
}

/// What a test expects of one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The TOS byte (`Dscp::tos`), 0 for unmarked.
    pub tos: u8,
    /// `Some(limit)`: the keepalive timer runs with at most `limit` left; `None`: no timer
    /// runs (keepalive off, nothing in flight).
    pub keepalive_at_most: Option<Duration>,
}

impl Expected {
    /// Marked with `tos`, its keepalive timer running with at most `secs` left.
    pub fn keepalive(tos: u8, secs: u64) -> Expected {
        Expected {
            tos,
            keepalive_at_most: Some(Duration::from_secs(secs)),
        }
    }

    /// Marked with `tos`, no keepalive timer running.
    pub fn no_keepalive(tos: u8) -> Expected {
        Expected {
            tos,
            keepalive_at_most: None,
        }
    }
}

/// Checks, through `ss`, the listener on `server` and the two ends of the connection between
/// a client transport and that listener: the accepted socket (local port = the listener's)
/// and the dialed one (remote port = the listener's). IPv4 sockets are checked through
/// `tos`, IPv6 ones (e.g. on a dual-stack `[::]` listener) through `tclass` and `tos` both.
///
/// `ss` shows one timer per socket, and a retransmission timer (data in flight) hides the
/// keepalive timer, so the check is repeated for up to 5 s until it holds; it panics with
/// `ss`'s output if it never does. Returns `false` when `ss` is missing (skipped per the
/// peer policy).
pub fn check_stream_sockets(
    server: SocketAddr,
    listener: Expected,
    accepted: Expected,
    dialed: Expected,
) -> bool {
    let port = server.port();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let Some(sockets) = tcp_sockets_on_port(port) else {
            return false;
        };
        match check_once(port, &sockets, listener, accepted, dialed) {
            Ok(()) => return true,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("{e}\nss shows:\n{}", raw(port))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn check_once(
    port: u16,
    sockets: &[TcpSocketInfo],
    listener: Expected,
    accepted: Expected,
    dialed: Expected,
) -> Result<(), String> {
    let find = |what: &str, pick: &dyn Fn(&TcpSocketInfo) -> bool| {
        sockets
            .iter()
            .find(|s| pick(s))
            .ok_or_else(|| format!("no {what} socket on port {port}"))
    };
    let l = find("listening", &|s| {
        s.state == "LISTEN" && s.local_port == port
    })?;
    let a = find("accepted", &|s| s.state == "ESTAB" && s.local_port == port)?;
    let d = find("dialed", &|s| s.state == "ESTAB" && s.peer_port == port)?;
    for (what, s, want) in [
        ("listener", l, listener),
        ("accepted", a, accepted),
        ("dialed", d, dialed),
    ] {
        let marks = [s.tos, s.tclass];
        if marks.iter().flatten().count() == 0 {
            return Err(format!("{what}: ss shows neither tos nor tclass: {s:?}"));
        }
        if let Some(mark) = marks.into_iter().flatten().find(|m| *m != want.tos) {
            return Err(format!(
                "{what}: mark {mark:#04x}, want {:#04x}: {s:?}",
                want.tos
            ));
        }
        if what == "listener" {
            continue; // a listener has no keepalive timer of its own; its children do
        }
        match (want.keepalive_at_most, s.keepalive_timer) {
            // No timer at all: a retransmission timer could be hiding a keepalive one.
            (None, None) if s.timer.is_none() => {}
            (Some(limit), Some(left)) if left <= limit => {}
            (want, got) => {
                return Err(format!(
                    "{what}: keepalive timer {got:?}, want at most {want:?}: {s:?}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ss_output() {
        let r = parse_record(
            "ESTAB 0 0 [::ffff:127.0.0.1]:5060 [::ffff:127.0.0.1]:40000 \
             timer:(keepalive,1min13sec,0) ino:1 sk:e cgroup:/ <-> tos:0x60 tclass:0x60 class_id:0 \
             ts sack bbr",
        )
        .expect("record");
        assert_eq!(r.state, "ESTAB");
        assert_eq!((r.local_port, r.peer_port), (5060, 40000));
        assert_eq!((r.tos, r.tclass), (Some(0x60), Some(0x60)));
        assert_eq!(r.keepalive_timer, Some(Duration::from_secs(73)));
        assert_eq!(r.timer.as_deref(), Some("keepalive"));
        let l = parse_record("LISTEN 0 128 *:39457 *:* ino:2 sk:f <-> tos:0 tclass:0xb8")
            .expect("listener");
        assert_eq!((l.local_port, l.peer_port), (39457, 0));
        assert_eq!(
            (l.tos, l.tclass, l.keepalive_timer),
            (Some(0), Some(0xb8), None)
        );
        assert_eq!(parse_ss_time("119min"), Duration::from_secs(7140));
        assert_eq!(parse_ss_time("250ms"), Duration::from_millis(250));
    }
}
