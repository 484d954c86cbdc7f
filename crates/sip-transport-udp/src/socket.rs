//! Opening the UDP socket: socket2 for the options tokio does not expose (buffer sizes,
//! `SO_REUSEPORT`, `IPV6_V6ONLY`, the DSCP mark), then handed to tokio.
//!
//! Not the receive loop and not the send rules; only the `bind` step.

use std::io;

use sip_transport_api::{Dscp, Error, Result};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::UdpConfig;

/// A bound socket and whether it also carries IPv4 (an IPv6 socket bound to `[::]`).
#[derive(Debug)]
pub(crate) struct BoundSocket {
    pub(crate) socket: UdpSocket,
    pub(crate) dual_stack: bool,
}

/// Creates, configures and binds the socket. Must run inside a Tokio runtime with I/O enabled.
pub(crate) fn bind(config: &UdpConfig) -> Result<BoundSocket> {
    let addr = config.bind;
    let bind_err = |source: io::Error| Error::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(bind_err)?;
    // Only `[::]` is made dual-stack; any other IPv6 address stays IPv6-only whatever the
    // system default (`net.ipv6.bindv6only`) is, so the address family checks hold.
    let dual_stack = addr.is_ipv6() && addr.ip().is_unspecified();
    if addr.is_ipv6() {
        socket.set_only_v6(!dual_stack).map_err(bind_err)?;
    }
    if config.reuse_port {
        set_reuse_port(&socket).map_err(bind_err)?;
    }
    if let Some(size) = config.recv_buffer_size {
        socket.set_recv_buffer_size(size).map_err(bind_err)?;
    }
    if let Some(size) = config.send_buffer_size {
        socket.set_send_buffer_size(size).map_err(bind_err)?;
    }
    if let Some(dscp) = config.dscp {
        set_dscp(&socket, dscp, addr.is_ipv6()).map_err(bind_err)?;
    }
    socket.set_nonblocking(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    let socket = UdpSocket::from_std(socket.into()).map_err(bind_err)?;
    Ok(BoundSocket { socket, dual_stack })
}

/// Marks every datagram with `dscp`. IPv4: `IP_TOS`. IPv6: `IPV6_TCLASS`, and also `IP_TOS`,
/// which the kernel uses for datagrams to IPv4 peers of a dual-stack `[::]` socket; a system
/// that refuses `IP_TOS` on an IPv6 socket has no IPv4 traffic on it to mark, so that refusal
/// is ignored. (The stream transports' `StreamSocketOptions::apply` does the same; this crate
/// does not depend on theirs.)
fn set_dscp(socket: &Socket, dscp: Dscp, ipv6: bool) -> io::Result<()> {
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

#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn set_reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not available on this platform",
    ))
}
