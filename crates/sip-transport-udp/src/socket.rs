//! Opening the UDP socket: socket2 for the options tokio does not expose (buffer sizes,
//! `SO_REUSEPORT`, `IPV6_V6ONLY`), then handed to tokio.
//!
//! Not the receive loop and not the send rules; only the `bind` step.

use std::io;

use sip_transport_api::{Error, Result};
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
    socket.set_nonblocking(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    let socket = UdpSocket::from_std(socket.into()).map_err(bind_err)?;
    Ok(BoundSocket { socket, dual_stack })
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
