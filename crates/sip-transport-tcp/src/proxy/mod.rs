//! PROXY protocol (HAProxy's spec, v1 text and v2 binary) on stream listeners: the settings
//! ([`ProxyProtocolConfig`]), the trusted-source list ([`IpPrefix`]) and the reader that takes
//! the header off a freshly accepted socket before anything else (the TLS handshake
//! included) reads from it.
//!
//! The parsing is sans-IO in [`header`]. The reader peeks, asks the parser, and consumes only
//! the header's bytes, so SIP or TLS bytes that arrived in the same segment stay in the
//! socket for the connector.

pub mod header;
mod prefix;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use sip_transport_api::Error;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

pub use header::{HeaderError, Parsed, ProxiedAddrs};
pub use prefix::IpPrefix;

/// Smallest header bound accepted: a v2 header with the largest address block (AF_UNIX,
/// 216 bytes) and no TLVs; also above v1's 107 bytes.
const MIN_HEADER_LEN: usize = header::V2_FIXED_LEN + 216;

/// Accept a PROXY protocol header (v1 or v2, detected per connection) on a listener.
///
/// When set on a [`StreamConfig`](crate::StreamConfig), every accepted connection must come
/// from a [`trusted`](Self::trusted) address and start with a valid header within
/// [`header_timeout`](Self::header_timeout); otherwise it is closed (counted in
/// `connections_refused`). The client address in the header becomes the connection's peer:
/// the `source` of its messages, the `received`/`rport` stamped into their Via (RFC 3261
/// §18.2.1) and the pool key its flow is found under, and the address
/// `Limits::max_connections_per_ip` counts (charged once the header is read; the total limit
/// is applied at accept). A v2 `LOCAL` header (the balancer's health check) or v1 `UNKNOWN`
/// keeps the real peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyProtocolConfig {
    /// Sources allowed to send a header (the load balancers). Default: loopback only.
    pub trusted: Vec<IpPrefix>,
    /// Time from accept to the end of the header. Default 5 s.
    pub header_timeout: Duration,
    /// Most bytes a header may take (v2 with TLVs; v1 is always at most 107). Default 1,024;
    /// never below 232.
    pub max_header_len: usize,
}

impl Default for ProxyProtocolConfig {
    fn default() -> Self {
        ProxyProtocolConfig {
            trusted: IpPrefix::loopback(),
            header_timeout: Duration::from_secs(5),
            max_header_len: 1024,
        }
    }
}

impl ProxyProtocolConfig {
    /// The defaults, trusting `trusted` instead of loopback.
    pub fn new(trusted: impl IntoIterator<Item = IpPrefix>) -> Self {
        ProxyProtocolConfig {
            trusted: trusted.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Sets [`ProxyProtocolConfig::header_timeout`].
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Sets [`ProxyProtocolConfig::max_header_len`].
    pub fn with_max_header_len(mut self, bytes: usize) -> Self {
        self.max_header_len = bytes;
        self
    }

    /// True when `peer` may send a header.
    pub fn is_trusted(&self, peer: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|p| p.contains(peer))
    }
}

/// Reads the header off a freshly accepted `tcp` socket under the configured timeout and
/// returns the address to use as the connection's peer: the client's, or `peer` itself for a
/// v2 `LOCAL` or v1 `UNKNOWN` header. Only the header's bytes are consumed, so a TLS
/// ClientHello or HTTP request that came in the same segment stays in the socket. A missing,
/// malformed, oversized or late header is an `Error::Io` (`InvalidData`, `UnexpectedEof` or
/// `TimedOut`) naming `peer`. Public so that other listeners (the WebSocket crate's) read
/// the header exactly as TCP and TLS listeners do.
pub async fn read_header(
    tcp: &mut TcpStream,
    peer: SocketAddr,
    config: &ProxyProtocolConfig,
) -> Result<SocketAddr, Error> {
    let after = config.header_timeout;
    let max = config.max_header_len.max(MIN_HEADER_LEN);
    let addrs = match tokio::time::timeout(after, read(tcp, max)).await {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(source)) => return Err(Error::Io { peer, source }),
        Err(_) => {
            let source = io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no complete PROXY header within {after:?}"),
            );
            return Err(Error::Io { peer, source });
        }
    };
    Ok(match addrs {
        ProxiedAddrs::Proxied { source, .. } => crate::dial::canonical(source),
        ProxiedAddrs::Local => peer,
    })
}

/// Peeks, parses, and consumes exactly the header. Each round consumes what it peeked when the
/// header is still incomplete (all of it is header then), so the loop always makes progress.
async fn read(tcp: &mut TcpStream, max: usize) -> io::Result<ProxiedAddrs> {
    let mut seen: Vec<u8> = Vec::with_capacity(64);
    let mut scratch = vec![0u8; max];
    loop {
        let room = max - seen.len();
        let n = tcp.peek(&mut scratch[..room]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the PROXY header ended",
            ));
        }
        let consumed = seen.len();
        seen.extend_from_slice(&scratch[..n]);
        match header::parse(&seen, max) {
            Ok(Parsed::Complete { len, addrs }) => {
                tcp.read_exact(&mut scratch[..len - consumed]).await?;
                return Ok(addrs);
            }
            Ok(Parsed::Incomplete) if seen.len() < max => {
                tcp.read_exact(&mut scratch[..n]).await?;
            }
            Ok(Parsed::Incomplete) => {
                let e = HeaderError::TooLong {
                    len: seen.len(),
                    limit: max,
                };
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}
