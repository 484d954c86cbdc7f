//! The multicast TTL of a send: RFC 3261 §18.2.2 has a response to a Via `maddr` that is a
//! multicast address go out with the Via's `ttl`, or 1.
//!
//! Only the socket option step; the lock that keeps "set TTL, send" together on the shared
//! socket, and the send itself, are in `transport.rs`. Unicast sends never come here.

use std::io;
use std::net::SocketAddr;

use socket2::SockRef;
use tokio::net::UdpSocket;

use crate::send::canonical;

/// The TTL of a multicast send whose destination names none: the RFC's default for responses
/// (§18.2.2) and for the Via of requests (§18.1.1), and the OS default (Linux and the BSDs
/// for both `IP_MULTICAST_TTL` and `IPV6_MULTICAST_HOPS`, RFC 3493 §5.2). It is set on every
/// multicast send all the same: an earlier send may have left another value on the socket.
pub(crate) const DEFAULT_MULTICAST_TTL: u8 = 1;

/// True when `target` (as mapped onto the socket's family) is a multicast address, an
/// IPv4-mapped IPv6 one included. No syscall: the unicast path pays a few comparisons.
pub(crate) fn is_multicast(target: SocketAddr) -> bool {
    canonical(target).ip().is_multicast()
}

/// Sets the TTL that the next send to the multicast `target` goes out with: `IP_MULTICAST_TTL`
/// for an IPv4 group (also on a dual-stack IPv6 socket, which sends IPv4 with its IPv4
/// options), `IPV6_MULTICAST_HOPS` for an IPv6 group.
pub(crate) fn set_multicast_ttl(socket: &UdpSocket, target: SocketAddr, ttl: u8) -> io::Result<()> {
    let socket = SockRef::from(socket);
    match canonical(target) {
        SocketAddr::V4(_) => socket.set_multicast_ttl_v4(u32::from(ttl)),
        SocketAddr::V6(_) => socket.set_multicast_hops_v6(u32::from(ttl)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn multicast_detection() {
        for m in [
            "224.0.1.75:5060",
            "239.255.0.1:1",
            "[::ffff:224.0.1.75]:5060",
            "[ff02::1]:5060",
            "[ff05::fb]:5060",
        ] {
            assert!(is_multicast(addr(m)), "{m}");
        }
        for u in [
            "127.0.0.1:5060",
            "223.255.255.255:1",
            "[::ffff:192.0.2.1]:5060",
            "[::1]:5060",
            "[2001:db8::1]:5060",
        ] {
            assert!(!is_multicast(addr(u)), "{u}");
        }
    }

    async fn socket(bind: &str) -> UdpSocket {
        UdpSocket::bind(addr(bind)).await.expect("bind")
    }

    #[tokio::test]
    async fn sets_the_option_of_the_target_family() {
        let v4 = socket("127.0.0.1:0").await;
        assert_eq!(
            SockRef::from(&v4).multicast_ttl_v4().ok(),
            Some(1),
            "OS default"
        );
        set_multicast_ttl(&v4, addr("239.255.0.1:5060"), 9).expect("set");
        assert_eq!(SockRef::from(&v4).multicast_ttl_v4().ok(), Some(9));

        let v6 = socket("[::1]:0").await;
        assert_eq!(
            SockRef::from(&v6).multicast_hops_v6().ok(),
            Some(1),
            "OS default"
        );
        set_multicast_ttl(&v6, addr("[ff05::1]:5060"), 7).expect("set");
        assert_eq!(SockRef::from(&v6).multicast_hops_v6().ok(), Some(7));
    }

    // A dual-stack socket sends IPv4 groups with the IPv4 option and leaves the hop limit alone.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn dual_stack_uses_the_ipv4_option_for_mapped_groups() {
        let socket2 = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)
            .expect("socket");
        socket2.set_only_v6(false).expect("dual stack");
        socket2.set_nonblocking(true).expect("nonblocking");
        socket2.bind(&addr("[::]:0").into()).expect("bind");
        let dual = UdpSocket::from_std(socket2.into()).expect("tokio");
        set_multicast_ttl(&dual, addr("[::ffff:239.255.0.1]:5060"), 5).expect("set");
        assert_eq!(SockRef::from(&dual).multicast_ttl_v4().ok(), Some(5));
        assert_eq!(SockRef::from(&dual).multicast_hops_v6().ok(), Some(1));
    }
}
