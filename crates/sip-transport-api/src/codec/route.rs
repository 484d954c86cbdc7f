//! Where a response goes: RFC 3261 §18.2.2 with RFC 3581 §4.
//!
//! Pure: it reads the top Via of the response and returns an address or a host name (for
//! RFC 3263 §5). Trying the request's flow first is the transport's job, not this function's.

use std::net::{IpAddr, SocketAddr};

use crate::message::parse_ip_host;
use crate::{Error, Message, Result, TransportKind};

/// The host a response is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseHost {
    /// An address: send there directly.
    Ip(IpAddr),
    /// A name: resolve it per RFC 3263 §5.
    Name(String),
}

/// The result of [`response_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseTarget {
    /// Where to send.
    pub host: ResponseHost,
    /// The port.
    pub port: u16,
    /// The transport named in the Via.
    pub transport: TransportKind,
    /// Multicast TTL when the response goes to a `maddr` (RFC 3261 §18.2.2).
    pub ttl: Option<u8>,
}

impl ResponseTarget {
    /// The socket address, when the host is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            ResponseHost::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            ResponseHost::Name(_) => None,
        }
    }
}

/// Computes where a response goes when there is no open flow to send it on:
/// - reliable transports: `received` (or the sent-by host) and the sent-by port (§18.2.2);
/// - `maddr`: that address with the sent-by port;
/// - unreliable with `received`: that address, and the `rport` port when filled (RFC 3581 §4),
///   else the sent-by port;
/// - otherwise the sent-by host and port.
///
/// Missing ports default per transport (5060, 5061 for TLS). Broadcast and unspecified
/// addresses are refused (RFC 4475 §3.3.10: never answer to a broadcast Via).
pub fn response_target(response: &Message) -> Result<ResponseTarget> {
    let via = response.top_via()?;
    let transport = via
        .transport_kind()
        .ok_or_else(|| Error::InvalidDestination {
            reason: format!("unsupported transport {:?} in Via", via.transport()),
        })?;
    let sent_by_port = via.port().unwrap_or(transport.default_port());
    let (host, port, ttl) = if transport.is_reliable() {
        let host = via
            .received()
            .map(ResponseHost::Ip)
            .unwrap_or_else(|| host_of(via.host()));
        (host, sent_by_port, None)
    } else if let Some(maddr) = via.maddr() {
        (host_of(maddr), sent_by_port, Some(via.ttl().unwrap_or(1)))
    } else if let Some(received) = via.received() {
        let port = via.rport().flatten().unwrap_or(sent_by_port);
        (ResponseHost::Ip(received), port, None)
    } else {
        (host_of(via.host()), sent_by_port, None)
    };
    if port == 0 {
        return Err(Error::InvalidDestination {
            reason: "port 0 in Via".to_owned(),
        });
    }
    if let ResponseHost::Ip(ip) = host {
        // Canonical first: `::ffff:255.255.255.255` is the IPv4 broadcast address too.
        let canonical = ip.to_canonical();
        let broadcast = matches!(canonical, IpAddr::V4(v4) if v4.is_broadcast());
        if broadcast || canonical.is_unspecified() {
            return Err(Error::InvalidDestination {
                reason: format!("refusing to send a response to {ip}:{port}"),
            });
        }
    }
    Ok(ResponseTarget {
        host,
        port,
        transport,
        ttl,
    })
}

fn host_of(h: &str) -> ResponseHost {
    match parse_ip_host(h) {
        Some(ip) => ResponseHost::Ip(ip),
        None => ResponseHost::Name(h.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn resp(via: &str) -> Message {
        Message::parse(Bytes::from(format!(
            "SIP/2.0 200 OK\r\nVia: {via}\r\nContent-Length: 0\r\n\r\n"
        )))
        .expect("parses")
    }

    fn target(via: &str) -> Result<ResponseTarget> {
        response_target(&resp(via))
    }

    fn addr(s: &str) -> Option<SocketAddr> {
        s.parse().ok()
    }

    #[test]
    fn udp_rules() {
        let t = target("SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bK")
            .expect("ok");
        assert_eq!(t.socket_addr(), addr("192.0.2.1:9988"));
        let t = target("SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;branch=z9hG4bK").expect("ok");
        assert_eq!(t.socket_addr(), addr("192.0.2.1:4540"));
        let t = target("SIP/2.0/UDP 10.1.1.1;branch=z9hG4bK").expect("ok");
        assert_eq!(t.socket_addr(), addr("10.1.1.1:5060"));
        let t = target("SIP/2.0/UDP pc.Example.com:5070;branch=z9hG4bK").expect("ok");
        assert_eq!(t.host, ResponseHost::Name("pc.example.com".into()));
        assert_eq!(t.port, 5070);
        let t = target("SIP/2.0/UDP h:5080;maddr=224.2.0.1;ttl=4;received=1.2.3.4").expect("ok");
        assert_eq!(t.socket_addr(), addr("224.2.0.1:5080"));
        assert_eq!(t.ttl, Some(4));
    }

    #[test]
    fn reliable_rules() {
        let t = target("SIP/2.0/TCP 10.1.1.1:5070;received=192.0.2.1;rport=40000").expect("ok");
        assert_eq!(t.socket_addr(), addr("192.0.2.1:5070"));
        assert_eq!(t.transport, TransportKind::Tcp);
        let t = target("SIP/2.0/TLS [2001:db8::1]").expect("ok");
        assert_eq!(t.socket_addr(), addr("[2001:db8::1]:5061"));
    }

    #[test]
    fn refusals() {
        assert!(target("SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK").is_err());
        assert!(target("SIP/2.0/UDP 0.0.0.0").is_err());
        // The same addresses written as IPv4-mapped IPv6 (review finding).
        assert!(target("SIP/2.0/UDP h;maddr=[::ffff:255.255.255.255]").is_err());
        assert!(target("SIP/2.0/UDP h;maddr=::ffff:0.0.0.0").is_err());
        assert!(target("SIP/2.0/UDP [::ffff:255.255.255.255]").is_err());
        assert!(target("SIP/2.0/SCTP h").is_err());
        let e = target("SIP/2.0/UDP h:0").expect_err("port 0");
        assert!(!e.is_recoverable());
    }
}
