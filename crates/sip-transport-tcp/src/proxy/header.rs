//! Sans-IO parser of the PROXY protocol header (HAProxy's spec, versions 1 and 2) that a
//! layer-4 load balancer puts in front of a connection to say who the client really is.
//!
//! Pure: bytes in, a verdict out; no sockets, no clocks. The reader in `mod.rs` feeds it what
//! has arrived so far and learns either how many bytes the header takes, that more are
//! needed, or why the connection must be refused. It never looks past the header, so the
//! bytes after it (SIP, or a TLS ClientHello) stay in the socket untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v1 header's upper bound, CRLF included (spec §2.1: 107 bytes).
pub const V1_MAX_LEN: usize = 107;
/// The fixed part of a v2 header: signature, version/command, family, length.
pub const V2_FIXED_LEN: usize = 16;
/// The 12-byte v2 signature (spec §2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// What a complete header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxiedAddrs {
    /// A proxied connection: the client's address and the address it connected to.
    Proxied {
        /// The original client (becomes the message source).
        source: SocketAddr,
        /// The address the client connected to (the balancer's frontend).
        destination: SocketAddr,
    },
    /// v2 `LOCAL` (the balancer's own health check) or v1 `UNKNOWN` / v2 `AF_UNSPEC`:
    /// the connection's real peer stands for itself.
    Local,
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough bytes yet; every byte seen belongs to the header.
    Incomplete,
    /// A whole header of `len` bytes.
    Complete {
        /// Bytes the header takes; what follows is the proxied stream.
        len: usize,
        /// What it says.
        addrs: ProxiedAddrs,
    },
}

/// Why a header is refused. Any of these closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Neither `PROXY ` nor the v2 signature.
    BadSignature,
    /// v1 longer than 107 bytes, or v2 longer than the configured maximum.
    TooLong {
        /// The size announced or reached.
        len: usize,
        /// The bound.
        limit: usize,
    },
    /// A v1 line that is not `PROXY TCP4|TCP6|UNKNOWN ...\r\n` with valid fields.
    BadV1,
    /// A v2 version other than 2, a command other than LOCAL/PROXY.
    BadV2Version,
    /// A v2 family/protocol that is not TCP over IPv4/IPv6 or UNSPEC, or an address block
    /// shorter than its family needs.
    BadV2Address,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::BadSignature => f.write_str("no PROXY protocol signature"),
            HeaderError::TooLong { len, limit } => {
                write!(f, "PROXY header of {len} bytes exceeds {limit}")
            }
            HeaderError::BadV1 => f.write_str("malformed PROXY v1 line"),
            HeaderError::BadV2Version => f.write_str("bad PROXY v2 version or command"),
            HeaderError::BadV2Address => f.write_str("bad PROXY v2 address block"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Parses the start of a connection. `max_v2_len` bounds a v2 header (fixed part, addresses
/// and TLVs); TLVs are skipped, never interpreted.
pub fn parse(buf: &[u8], max_v2_len: usize) -> Result<Parsed, HeaderError> {
    const V1_PREFIX: &[u8] = b"PROXY ";
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Ok(Parsed::Incomplete)
        } else {
            parse_v2(buf, max_v2_len)
        };
    }
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] == V1_PREFIX[..n] {
        return if n < V1_PREFIX.len() {
            Ok(Parsed::Incomplete)
        } else {
            parse_v1(buf)
        };
    }
    Err(HeaderError::BadSignature)
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, HeaderError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(lf) = window.iter().position(|b| *b == b'\n') else {
        if buf.len() >= V1_MAX_LEN {
            return Err(HeaderError::TooLong {
                len: buf.len(),
                limit: V1_MAX_LEN,
            });
        }
        return Ok(Parsed::Incomplete);
    };
    let len = lf + 1;
    let line = window[..lf].strip_suffix(b"\r").ok_or(HeaderError::BadV1)?;
    let line = std::str::from_utf8(line).map_err(|_| HeaderError::BadV1)?;
    let mut fields = line.split(' ');
    fields.next(); // "PROXY"
    let proto = fields.next().ok_or(HeaderError::BadV1)?;
    if proto == "UNKNOWN" {
        // Spec §2.1: the rest of the line is to be ignored.
        return Ok(Parsed::Complete {
            len,
            addrs: ProxiedAddrs::Local,
        });
    }
    let v6 = match proto {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(HeaderError::BadV1),
    };
    let mut next = || fields.next().ok_or(HeaderError::BadV1);
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(HeaderError::BadV1);
    }
    let ip = |s: &str| -> Result<IpAddr, HeaderError> {
        let ip: IpAddr = s.parse().map_err(|_| HeaderError::BadV1)?;
        if ip.is_ipv6() != v6 {
            return Err(HeaderError::BadV1);
        }
        Ok(ip)
    };
    let port = |s: &str| -> Result<u16, HeaderError> {
        // Decimal without sign or leading zeros (spec §2.1), so "+80" or "080" is refused.
        if s.is_empty()
            || !s.bytes().all(|b| b.is_ascii_digit())
            || (s.len() > 1 && s.starts_with('0'))
        {
            return Err(HeaderError::BadV1);
        }
        s.parse().map_err(|_| HeaderError::BadV1)
    };
    Ok(Parsed::Complete {
        len,
        addrs: ProxiedAddrs::Proxied {
            source: SocketAddr::new(ip(src)?, port(sport)?),
            destination: SocketAddr::new(ip(dst)?, port(dport)?),
        },
    })
}

fn parse_v2(buf: &[u8], max_len: usize) -> Result<Parsed, HeaderError> {
    if buf.len() < V2_FIXED_LEN {
        // Check what is there already, so junk is refused without waiting for more.
        if let Some(&vc) = buf.get(12) {
            check_version_command(vc)?;
        }
        return Ok(Parsed::Incomplete);
    }
    let local = check_version_command(buf[12])?;
    let fam = buf[13];
    let addr_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = V2_FIXED_LEN + addr_len;
    if len > max_len {
        return Err(HeaderError::TooLong {
            len,
            limit: max_len,
        });
    }
    if buf.len() < len {
        return Ok(Parsed::Incomplete);
    }
    if local {
        // Spec §2.2: LOCAL ignores the address block (health checks from the balancer).
        return Ok(Parsed::Complete {
            len,
            addrs: ProxiedAddrs::Local,
        });
    }
    let a = &buf[V2_FIXED_LEN..len];
    let addrs = match fam {
        // AF_UNSPEC: the receiver uses the real connection endpoints.
        0x00 => ProxiedAddrs::Local,
        // TCP over IPv4: 4 + 4 + 2 + 2 bytes.
        0x11 if a.len() >= 12 => {
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            ProxiedAddrs::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }
        // TCP over IPv6: 16 + 16 + 2 + 2 bytes.
        0x21 if a.len() >= 36 => {
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            ProxiedAddrs::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        // UDP, UNIX sockets, or a block too short for its family: not a SIP stream client.
        _ => return Err(HeaderError::BadV2Address),
    };
    Ok(Parsed::Complete { len, addrs })
}

/// Version must be 2; command LOCAL (0) or PROXY (1). Returns true for LOCAL.
fn check_version_command(vc: u8) -> Result<bool, HeaderError> {
    match vc {
        0x20 => Ok(true),
        0x21 => Ok(false),
        _ => Err(HeaderError::BadV2Version),
    }
}

#[cfg(test)]
mod tests;
