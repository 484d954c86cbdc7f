//! What may be sent where over UDP: the size rules (RFC 3261 §18.1.1 and the datagram
//! maximum) and the address family mapping of a destination onto our socket.
//!
//! Pure functions, tested without sockets; the sending itself is in `transport.rs`.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use sip_transport_api::{Error, Limits, Message, Result, TransportKind};

/// Largest UDP payload over IPv4: 65,535 − 20 (IPv4 header) − 8 (UDP header).
pub const MAX_DATAGRAM_V4: usize = 65_507;
/// Largest UDP payload over IPv6 without jumbograms: 65,535 (payload length) − 8 (UDP header).
pub const MAX_DATAGRAM_V6: usize = 65_527;

/// Checks the size of `message` before it goes to `target` (already mapped by
/// [`map_destination`]).
pub(crate) fn check_size(
    message: &Message,
    target: SocketAddr,
    mtu_threshold: usize,
    limits: &Limits,
) -> Result<()> {
    let size = message.len();
    // RFC 3261 §18.1.1: a request larger than 1300 bytes (path MTU unknown) MUST go over a
    // congestion-controlled transport. Responses follow the request's transport (§18.2.2).
    if message.is_request() && size > mtu_threshold {
        return Err(Error::UdpMessageTooLarge {
            size,
            limit: mtu_threshold,
        });
    }
    if size > limits.max_message_size {
        return Err(Error::MessageTooLarge {
            size,
            limit: limits.max_message_size,
        });
    }
    let max = match canonical(target) {
        SocketAddr::V4(_) => MAX_DATAGRAM_V4,
        SocketAddr::V6(_) => MAX_DATAGRAM_V6,
    };
    if size > max {
        return Err(Error::DatagramTooLarge { size, limit: max });
    }
    Ok(())
}

/// Maps `dest` onto the family of a socket bound to `local`: an IPv4 destination goes out of
/// a dual-stack IPv6 socket as `::ffff:a.b.c.d`, an IPv4-mapped IPv6 destination out of an
/// IPv4 socket as plain IPv4. Refuses what the socket cannot reach, and the unspecified
/// address and port 0 (on Linux, sending to `0.0.0.0` reaches this host).
pub(crate) fn map_destination(
    local: SocketAddr,
    dual_stack: bool,
    dest: SocketAddr,
) -> Result<SocketAddr> {
    if dest.ip().is_unspecified() || dest.port() == 0 {
        return Err(Error::InvalidDestination {
            reason: format!("cannot send a datagram to {dest}"),
        });
    }
    let mismatch = || Error::AddressFamilyMismatch {
        transport: TransportKind::Udp,
        local,
        peer: dest,
    };
    match (local, canonical(dest)) {
        (SocketAddr::V4(_), SocketAddr::V4(v4)) => Ok(SocketAddr::V4(v4)),
        (SocketAddr::V4(_), SocketAddr::V6(_)) => Err(mismatch()),
        (SocketAddr::V6(_), SocketAddr::V6(_)) => Ok(dest),
        (SocketAddr::V6(_), SocketAddr::V4(v4)) if dual_stack => Ok(SocketAddr::V6(
            SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0),
        )),
        (SocketAddr::V6(_), SocketAddr::V4(_)) => Err(mismatch()),
    }
}

/// An IPv4-mapped IPv6 address (what a dual-stack socket reports for IPv4 peers) as plain
/// IPv4; anything else unchanged (scope ids of link-local IPv6 addresses are kept).
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    fn message(start: &str, body: usize) -> Message {
        let s = format!(
            "{start}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: {body}\r\n\r\n{}",
            "x".repeat(body)
        );
        let limits = Limits::default()
            .with_max_message_size(1 << 20)
            .with_max_body_size(1 << 20);
        Message::parse_with(Bytes::from(s), &limits).expect("parses")
    }

    #[test]
    fn request_threshold_applies_to_requests_only() {
        let l = Limits::default();
        let to = addr("192.0.2.1:5060");
        let req = message("OPTIONS sip:x SIP/2.0", 1300);
        let e = check_size(&req, to, 1300, &l).expect_err("too large");
        assert!(matches!(e, Error::UdpMessageTooLarge { limit: 1300, .. }));
        assert!(!e.is_recoverable());
        assert!(check_size(&req, to, 60_000, &l).is_ok());
        let small = message("OPTIONS sip:x SIP/2.0", 10);
        assert!(check_size(&small, to, 1300, &l).is_ok());
        let resp = message("SIP/2.0 200 OK", 5000);
        assert!(check_size(&resp, to, 1300, &l).is_ok());
    }

    #[test]
    fn datagram_maximum_per_family() {
        let l = Limits::default().with_max_message_size(1 << 20);
        let resp = message("SIP/2.0 200 OK", 65_440);
        let size = resp.len();
        assert!(size > MAX_DATAGRAM_V4 && size <= MAX_DATAGRAM_V6, "{size}");
        let e = check_size(&resp, addr("192.0.2.1:5060"), 1300, &l).expect_err("v4 max");
        assert!(matches!(e, Error::DatagramTooLarge { limit: 65_507, .. }));
        let e = check_size(&resp, addr("[::ffff:192.0.2.1]:5060"), 1300, &l).expect_err("mapped");
        assert!(matches!(e, Error::DatagramTooLarge { limit: 65_507, .. }));
        assert!(check_size(&resp, addr("[2001:db8::1]:5060"), 1300, &l).is_ok());
        let small = Limits::default().with_max_message_size(65_000);
        let e = check_size(&resp, addr("[2001:db8::1]:5060"), 1300, &small).expect_err("limit");
        assert!(matches!(e, Error::MessageTooLarge { limit: 65_000, .. }));
    }

    #[test]
    fn family_mapping() {
        let v4 = addr("127.0.0.1:5060");
        let v6 = addr("[::1]:5060");
        let any6 = addr("[::]:5060");
        assert_eq!(
            map_destination(v4, false, addr("10.0.0.1:1")).ok(),
            Some(addr("10.0.0.1:1"))
        );
        assert_eq!(
            map_destination(v4, false, addr("[::ffff:10.0.0.1]:1")).ok(),
            Some(addr("10.0.0.1:1"))
        );
        assert!(matches!(
            map_destination(v4, false, addr("[::1]:1")),
            Err(Error::AddressFamilyMismatch { .. })
        ));
        assert!(matches!(
            map_destination(v6, false, addr("10.0.0.1:1")),
            Err(Error::AddressFamilyMismatch { .. })
        ));
        assert_eq!(
            map_destination(any6, true, addr("10.0.0.1:1")).ok(),
            Some(addr("[::ffff:10.0.0.1]:1"))
        );
        assert_eq!(
            map_destination(v6, false, addr("[::1]:7")).ok(),
            Some(addr("[::1]:7"))
        );
        for bad in ["0.0.0.0:5060", "[::]:5060", "127.0.0.1:0"] {
            assert!(matches!(
                map_destination(any6, true, addr(bad)),
                Err(Error::InvalidDestination { .. })
            ));
        }
        let e = map_destination(v4, false, addr("[::1]:1")).expect_err("mismatch");
        assert!(!e.is_recoverable());
    }

    #[test]
    fn canonical_unmaps_only_v4_mapped() {
        assert_eq!(canonical(addr("[::ffff:1.2.3.4]:5")), addr("1.2.3.4:5"));
        assert_eq!(canonical(addr("[::1]:5")), addr("[::1]:5"));
        assert_eq!(canonical(addr("1.2.3.4:5")), addr("1.2.3.4:5"));
    }
}
