//! PROXY protocol (HAProxy's v1 text and v2 binary header) on the `ws`/`wss` listener: the
//! reader that takes the header off a freshly accepted TCP socket before the TLS handshake
//! and the HTTP upgrade see a byte.
//!
//! The settings ([`ProxyProtocolConfig`]), the trusted-source list and the sans-IO parser are
//! the tcp crate's ([`sip_transport_tcp::proxy`]), so ws and TCP/TLS listeners behave alike.
//! This reader follows the tcp crate's own, which is private to that crate: peek, ask the
//! parser, and consume only the header's bytes, so a TLS ClientHello or HTTP request that came
//! in the same segment stays in the socket.

use std::io;
use std::net::SocketAddr;

use sip_transport_api::Error;
use sip_transport_tcp::ProxyProtocolConfig;
use sip_transport_tcp::proxy::header::{self, HeaderError, Parsed, ProxiedAddrs};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::registry::canonical;

/// Smallest header bound honoured: a v2 header with the largest address block (AF_UNIX,
/// 216 bytes) and no TLVs; also above v1's 107 bytes (the tcp crate's floor too).
const MIN_HEADER_LEN: usize = header::V2_FIXED_LEN + 216;

/// Reads the header off `tcp` within `ProxyProtocolConfig::header_timeout` and returns the
/// address to use as the connection's peer: the client's, or `peer` itself for a v2 `LOCAL`
/// or v1 `UNKNOWN` header. A missing, malformed, oversized or late header is an
/// `Error::Io` (`InvalidData`, `UnexpectedEof` or `TimedOut`) naming `peer`.
pub(crate) async fn read_header(
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
        ProxiedAddrs::Proxied { source, .. } => canonical(source),
        ProxiedAddrs::Local => peer,
    })
}

/// Peeks, parses, and consumes exactly the header. While the header is incomplete every byte
/// peeked belongs to it and is consumed, so each round makes progress.
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
