//! `UdpConfig`: what [`UdpTransport::bind`](crate::UdpTransport::bind) needs, with defaults
//! and builder-style setters.
//!
//! Plain data: nothing here touches a socket.

use std::net::{Ipv4Addr, SocketAddr};

use sip_transport_api::{Dscp, Limits};

/// The RFC 3261 §18.1.1 size above which a request must not go over UDP when the path MTU is
/// unknown (1500-byte Ethernet MTU minus a margin for headers).
pub const DEFAULT_MTU_THRESHOLD: usize = 1300;

/// Configuration of one [`UdpTransport`](crate::UdpTransport).
///
/// `Default` binds `127.0.0.1` on an ephemeral port: nothing is exposed on the network unless
/// asked for. A server sets [`bind`](Self::bind) to e.g. `0.0.0.0:5060`, or `[::]:5060` for one
/// dual-stack socket that also receives IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpConfig {
    /// The local address to bind. Default `127.0.0.1:0` (loopback, ephemeral port).
    pub bind: SocketAddr,
    /// Size limits for received and sent messages, and the event channel depth
    /// ([`Limits::event_queue_depth`]) and [`Limits::close_grace`].
    pub limits: Limits,
    /// Requests larger than this many bytes are refused with
    /// [`Error::UdpMessageTooLarge`](sip_transport_api::Error::UdpMessageTooLarge)
    /// (RFC 3261 §18.1.1). Responses are not subject to it. Default 1300.
    pub mtu_threshold: usize,
    /// `SO_RCVBUF` in bytes; `None` keeps the OS default. A busy server raises it so bursts
    /// are not dropped by the kernel (Linux caps it at `net.core.rmem_max`).
    pub recv_buffer_size: Option<usize>,
    /// `SO_SNDBUF` in bytes; `None` keeps the OS default.
    pub send_buffer_size: Option<usize>,
    /// Sets `SO_REUSEPORT` so that several transports (one per core) can bind the same address
    /// and the kernel spreads datagrams over them. Default `false`.
    pub reuse_port: bool,
    /// DSCP mark for every datagram sent (`IP_TOS`; on an IPv6 socket `IPV6_TCLASS`, plus
    /// `IP_TOS` for the IPv4 peers of a dual-stack `[::]` socket), like Kamailio's `tos` and
    /// PJSIP's `pj_qos_params`. [`Dscp::CS3`] is the usual class for SIP signalling
    /// (RFC 4594 §3.2). `None` (default): no marking, the OS default.
    pub dscp: Option<Dscp>,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            limits: Limits::default(),
            mtu_threshold: DEFAULT_MTU_THRESHOLD,
            recv_buffer_size: None,
            send_buffer_size: None,
            reuse_port: false,
            dscp: None,
        }
    }
}

impl UdpConfig {
    /// The defaults with another bind address.
    pub fn new(bind: SocketAddr) -> Self {
        UdpConfig {
            bind,
            ..Self::default()
        }
    }

    /// Sets [`UdpConfig::bind`].
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Sets [`UdpConfig::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`UdpConfig::mtu_threshold`].
    pub fn with_mtu_threshold(mut self, bytes: usize) -> Self {
        self.mtu_threshold = bytes;
        self
    }

    /// Sets [`UdpConfig::recv_buffer_size`].
    pub fn with_recv_buffer_size(mut self, bytes: usize) -> Self {
        self.recv_buffer_size = Some(bytes);
        self
    }

    /// Sets [`UdpConfig::send_buffer_size`].
    pub fn with_send_buffer_size(mut self, bytes: usize) -> Self {
        self.send_buffer_size = Some(bytes);
        self
    }

    /// Sets [`UdpConfig::reuse_port`].
    pub fn with_reuse_port(mut self, reuse: bool) -> Self {
        self.reuse_port = reuse;
        self
    }

    /// Sets [`UdpConfig::dscp`].
    pub fn with_dscp(mut self, dscp: Option<Dscp>) -> Self {
        self.dscp = dscp;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_setters() {
        let c = UdpConfig::default();
        assert_eq!(c.mtu_threshold, 1300);
        assert!(c.bind.ip().is_loopback() && c.bind.port() == 0);
        assert_eq!(c.recv_buffer_size, None);
        assert!(!c.reuse_port);
        assert_eq!(c.dscp, None);
        let bind: SocketAddr = "[::]:5060".parse().expect("addr");
        let c = UdpConfig::new(bind)
            .with_mtu_threshold(60_000)
            .with_recv_buffer_size(1 << 20)
            .with_send_buffer_size(1 << 19)
            .with_reuse_port(true)
            .with_dscp(Some(Dscp::CS3))
            .with_limits(Limits::default().with_event_queue_depth(4));
        assert_eq!(c.bind, bind);
        assert_eq!(c.mtu_threshold, 60_000);
        assert_eq!(c.recv_buffer_size, Some(1 << 20));
        assert_eq!(c.send_buffer_size, Some(1 << 19));
        assert!(c.reuse_port);
        assert_eq!(c.dscp, Some(Dscp::CS3));
        assert_eq!(c.limits.event_queue_depth, 4);
    }
}
