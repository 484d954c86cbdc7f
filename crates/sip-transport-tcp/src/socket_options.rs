//! The socket options every stream socket gets besides `TCP_NODELAY`: DSCP marking
//! (`IP_TOS` / `IPV6_TCLASS`) and TCP keepalive (`SO_KEEPALIVE`, `TCP_KEEPIDLE`,
//! `TCP_KEEPINTVL`, `TCP_KEEPCNT`), set by one function, [`StreamSocketOptions::apply`], on
//! listening sockets and on outbound sockets before they connect (so the SYN is marked too).
//! The WebSocket crate calls the same function on its sockets.
//!
//! Accepted sockets: Linux copies `IP_TOS`, `IPV6_TCLASS`, `SO_KEEPALIVE` and the keepalive
//! timing from the listener to each socket it accepts (tested below, on real sockets), so
//! nothing is set on them there; elsewhere [`StreamSocketOptions::apply_accepted`] sets them
//! again. Not here: the RFC 5626 CRLF keepalive, which is SIP-level and lives in the driver.

use std::io;
use std::time::Duration;

use sip_transport_api::{Dscp, Error, Result};
use socket2::SockRef;

/// Kernel TCP keepalive on a connection: after `idle` without traffic the kernel sends empty
/// probes every `interval`; `retries` unanswered probes in a row reset the connection, which
/// the transport then reports like any other reset. This finds peers that vanished (a NAT
/// binding dropped, a host powered off) without any help from the peer, and each probe
/// refreshes NAT and firewall state on the path.
///
/// Not the RFC 5626 keepalive ([`StreamConfig::keepalive_interval`](crate::StreamConfig::keepalive_interval),
/// WebSocket pings): those are SIP-level CRLFCRLF pings (or WebSocket pings) that we send on
/// flows we dialed and that the peer's SIP stack must answer; TCP keepalive probes are
/// answered by the peer's kernel, work on inbound connections too, and prove only that the
/// host and the path are there, not the SIP stack.
///
/// Probes carry no data, so they do not count as traffic for `Limits::idle_timeout` (300 s
/// by default): a silent connection is still closed then. For probes to matter before that,
/// `idle` plus `interval × retries` must be below it.
///
/// On Linux, `TCP_USER_TIMEOUT` (which the transports set to `Limits::write_timeout` to bound
/// bytes the kernel holds for a peer that stopped reading) also decides keepalive failure,
/// overriding `retries`: with it below `idle`, the first unanswered probe would reset the
/// connection. So when `idle`, `interval` and `retries` are all set, the transports raise it
/// to [`TcpKeepaliveConfig::detection_time`] and every probe is tried; a peer that stops
/// reading is then cut after that time rather than the write timeout
/// ([`bound_unacked`](crate::bound_unacked)).
///
/// Each `None` keeps the operating system's value (Linux: `net.ipv4.tcp_keepalive_time`
/// 7200 s, `tcp_keepalive_intvl` 75 s, `tcp_keepalive_probes` 9), as Kamailio's
/// `tcp_keepalive=1` does. Durations are whole seconds (fractions are dropped); `bind`
/// refuses an idle or interval below 1 s or above 32,767 s and retries outside 1..=127
/// (Linux's bounds). On systems without the per-socket knobs only `SO_KEEPALIVE` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TcpKeepaliveConfig {
    /// Silence before the first probe (`TCP_KEEPIDLE`; `TCP_KEEPALIVE` on macOS). Behind NATs
    /// 30-120 s is usual. `None`: the OS default.
    pub idle: Option<Duration>,
    /// Time between unanswered probes (`TCP_KEEPINTVL`). `None`: the OS default.
    pub interval: Option<Duration>,
    /// Unanswered probes before the connection is reset (`TCP_KEEPCNT`). `None`: the OS
    /// default.
    pub retries: Option<u32>,
}

/// Linux's upper bound for `TCP_KEEPIDLE` and `TCP_KEEPINTVL`, in seconds.
const MAX_KEEPALIVE_SECS: u64 = 32_767;
/// Linux's upper bound for `TCP_KEEPCNT`.
const MAX_KEEPALIVE_RETRIES: u32 = 127;

impl TcpKeepaliveConfig {
    /// Keepalive on, with the operating system's timing (the default of the stream configs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`TcpKeepaliveConfig::idle`].
    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Sets [`TcpKeepaliveConfig::interval`].
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Sets [`TcpKeepaliveConfig::retries`].
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// How long an idle connection whose peer vanished takes to be reset: idle + interval ×
    /// retries, when all three are set (`None` when one is the OS's).
    pub fn detection_time(&self) -> Option<Duration> {
        let probes = self.interval?.checked_mul(self.retries?)?;
        self.idle?.checked_add(probes)
    }

    /// Checks the bounds the kernel would refuse with `EINVAL`; `bind` calls it.
    pub fn validate(&self) -> Result<()> {
        let secs = |name: &str, d: Option<Duration>| match d {
            Some(d) if d.as_secs() == 0 || d.as_secs() > MAX_KEEPALIVE_SECS => {
                Err(Error::InvalidConfig {
                    reason: format!(
                        "tcp_keepalive.{name} is {d:?}; it must be 1..={MAX_KEEPALIVE_SECS} s"
                    ),
                })
            }
            _ => Ok(()),
        };
        secs("idle", self.idle)?;
        secs("interval", self.interval)?;
        match self.retries {
            Some(n) if n == 0 || n > MAX_KEEPALIVE_RETRIES => Err(Error::InvalidConfig {
                reason: format!(
                    "tcp_keepalive.retries is {n}; it must be 1..={MAX_KEEPALIVE_RETRIES}"
                ),
            }),
            _ => Ok(()),
        }
    }

    fn to_socket2(self) -> socket2::TcpKeepalive {
        let mut k = socket2::TcpKeepalive::new();
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "fuchsia",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "dragonfly",
            target_os = "illumos",
        ))]
        {
            if let Some(idle) = self.idle {
                k = k.with_time(idle);
            }
            if let Some(interval) = self.interval {
                k = k.with_interval(interval);
            }
            if let Some(retries) = self.retries {
                k = k.with_retries(retries);
            }
        }
        k
    }
}

/// What [`StreamSocketOptions::apply`] sets: the marking and keepalive settings of a stream
/// transport's config (`StreamConfig`, `WsConfig`), gathered for its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StreamSocketOptions {
    /// DSCP mark; `None` leaves the OS default (unmarked).
    pub dscp: Option<Dscp>,
    /// TCP keepalive; `None` leaves the OS default (off).
    pub tcp_keepalive: Option<TcpKeepaliveConfig>,
}

impl StreamSocketOptions {
    /// These two settings.
    pub fn new(dscp: Option<Dscp>, tcp_keepalive: Option<TcpKeepaliveConfig>) -> Self {
        StreamSocketOptions {
            dscp,
            tcp_keepalive,
        }
    }

    /// Sets the options on a TCP socket (listening, or outbound before or after connect) of
    /// the given address family. Nothing is touched for a `None` setting.
    pub fn apply(&self, socket: SockRef<'_>, ipv6: bool) -> io::Result<()> {
        if let Some(dscp) = self.dscp {
            set_dscp(&socket, dscp, ipv6)?;
        }
        if let Some(keepalive) = self.tcp_keepalive {
            socket.set_tcp_keepalive(&keepalive.to_socket2())?;
        }
        Ok(())
    }

    /// For a socket taken from a listener that [`apply`](Self::apply) configured. Linux
    /// copies these options from the listener at accept (`accepted_and_dialed_sockets_carry_the_options` tests
    /// it), so this sets nothing there; on other systems it applies them again.
    pub fn apply_accepted(&self, socket: SockRef<'_>, ipv6: bool) -> io::Result<()> {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            return Ok(());
        }
        self.apply(socket, ipv6)
    }
}

/// Marks the socket's packets with `dscp`. IPv4: `IP_TOS`. IPv6: `IPV6_TCLASS`, and also
/// `IP_TOS`, which the kernel uses for IPv4 peers of a dual-stack socket (`::ffff:a.b.c.d`);
/// a system that refuses `IP_TOS` on an IPv6 socket (`EINVAL`, `ENOPROTOOPT`) has no IPv4
/// traffic on it to mark, so that refusal is ignored.
pub fn set_dscp(socket: &SockRef<'_>, dscp: Dscp, ipv6: bool) -> io::Result<()> {
    let tos = u32::from(dscp.tos());
    if !ipv6 {
        return socket.set_tos_v4(tos);
    }
    socket.set_tclass_v6(tos)?;
    if let Err(e) = socket.set_tos_v4(tos) {
        tracing::debug!(error = %e, "IP_TOS not set on an IPv6 socket; IPv6 traffic is marked");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpListener, TcpStream};

    use super::*;

    fn options() -> StreamSocketOptions {
        StreamSocketOptions::new(
            Some(Dscp::CS3),
            Some(
                TcpKeepaliveConfig::new()
                    .with_idle(Duration::from_secs(31))
                    .with_interval(Duration::from_secs(7))
                    .with_retries(4),
            ),
        )
    }

    fn assert_applied(s: &TcpStream, ipv6: bool, what: &str) {
        let s = SockRef::from(s);
        assert_eq!(s.tos_v4().expect("IP_TOS"), 0x60, "{what}: IP_TOS");
        if ipv6 {
            assert_eq!(s.tclass_v6().expect("IPV6_TCLASS"), 0x60, "{what}: tclass");
        }
        assert!(s.keepalive().expect("SO_KEEPALIVE"), "{what}: SO_KEEPALIVE");
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let idle = s.tcp_keepalive_time().expect("TCP_KEEPIDLE");
            assert_eq!(idle, Duration::from_secs(31), "{what}: idle");
            let intvl = s.tcp_keepalive_interval().expect("TCP_KEEPINTVL");
            assert_eq!(intvl, Duration::from_secs(7), "{what}: interval");
            assert_eq!(s.tcp_keepalive_retries().expect("TCP_KEEPCNT"), 4, "{what}");
        }
    }

    /// A listener configured by `apply`, a client socket configured by `apply`, and the
    /// accepted socket as the transports treat it (`apply_accepted`).
    fn pair(listen: &str, connect_ip: &str) -> Option<(TcpStream, TcpStream)> {
        let addr: SocketAddr = listen.parse().expect("addr");
        let opts = options();
        let l = TcpListener::bind(addr).ok()?;
        opts.apply(SockRef::from(&l), addr.is_ipv6())
            .expect("listener");
        let port = l.local_addr().expect("local").port();
        let peer: SocketAddr = (connect_ip.parse::<std::net::IpAddr>().expect("ip"), port).into();
        let c = TcpStream::connect(peer).ok()?;
        opts.apply(SockRef::from(&c), peer.is_ipv6())
            .expect("client");
        let (a, _) = l.accept().expect("accept");
        opts.apply_accepted(SockRef::from(&a), addr.is_ipv6())
            .expect("accepted");
        Some((a, c))
    }

    #[test]
    fn accepted_and_dialed_sockets_carry_the_options() {
        let (accepted, client) = pair("127.0.0.1:0", "127.0.0.1").expect("loopback");
        assert_applied(&accepted, false, "accepted");
        assert_applied(&client, false, "dialed");
    }

    #[test]
    fn dual_stack_sockets_get_both_marks() {
        // `[::]` with an IPv4 peer: the accepted socket is IPv6 carrying IPv4 packets.
        let Some((accepted, _client)) = pair("[::]:0", "127.0.0.1") else {
            eprintln!("*** SKIPPED: no dual-stack [::] listener here ***");
            return;
        };
        assert_applied(&accepted, true, "accepted on [::]");
        let Some((accepted, client)) = pair("[::1]:0", "::1") else {
            eprintln!("*** SKIPPED: no IPv6 loopback here ***");
            return;
        };
        assert_applied(&accepted, true, "accepted on [::1]");
        assert_applied(&client, true, "dialed to [::1]");
    }

    #[test]
    fn none_touches_nothing() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        StreamSocketOptions::default()
            .apply(SockRef::from(&l), false)
            .expect("apply");
        let s = SockRef::from(&l);
        assert_eq!(s.tos_v4().expect("IP_TOS"), 0);
        assert!(!s.keepalive().expect("SO_KEEPALIVE"));
    }

    #[test]
    fn keepalive_bounds() {
        assert!(TcpKeepaliveConfig::new().validate().is_ok());
        let ok = TcpKeepaliveConfig::new()
            .with_idle(Duration::from_secs(1))
            .with_interval(Duration::from_secs(32_767))
            .with_retries(127);
        assert!(ok.validate().is_ok());
        for bad in [
            TcpKeepaliveConfig::new().with_idle(Duration::from_millis(500)),
            TcpKeepaliveConfig::new().with_interval(Duration::from_secs(32_768)),
            TcpKeepaliveConfig::new().with_retries(0),
            TcpKeepaliveConfig::new().with_retries(128),
        ] {
            let e = bad.validate().expect_err("out of bounds");
            assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
        }
    }
}
