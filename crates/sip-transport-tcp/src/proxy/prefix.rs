//! `IpPrefix`: an address or a CIDR prefix (`10.0.0.0/8`, `::1`, `fd00::/8`), for the list
//! of load balancers trusted to send a PROXY header. Pure data and matching.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP prefix: the addresses whose first `len` bits equal `addr`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// A prefix; `len` above the family's width (32 or 128) is clamped to it.
    pub fn new(addr: IpAddr, len: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.min(max);
        // An IPv4-mapped prefix (`::ffff:10.0.0.0/104`) is the IPv4 one it maps (10.0.0.0/8):
        // addresses are compared in canonical form, so it would otherwise match nothing.
        match addr {
            IpAddr::V6(v6) if len >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => IpPrefix {
                    addr: IpAddr::V4(v4),
                    len: len - 96,
                },
                None => IpPrefix { addr, len },
            },
            _ => IpPrefix { addr, len },
        }
    }

    /// One address (a /32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        Self::new(addr, 128)
    }

    /// All of 127.0.0.0/8 and ::1: the default trusted set (a balancer on the same host).
    pub fn loopback() -> Vec<IpPrefix> {
        vec![
            IpPrefix::new(IpAddr::from([127, 0, 0, 0]), 8),
            IpPrefix::host(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
        ]
    }

    /// True when `ip` is in the prefix. IPv4-mapped IPv6 addresses match IPv4 prefixes.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(p) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpPrefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("{s:?}: expected IP or IP/PREFIX"))?;
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: prefix length must be 0..={max}")),
            },
        };
        Ok(IpPrefix::new(addr, len))
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn matching() {
        let p: IpPrefix = "10.1.0.0/16".parse().expect("prefix");
        assert!(p.contains(ip("10.1.200.3")));
        assert!(p.contains(ip("::ffff:10.1.0.9")));
        assert!(!p.contains(ip("10.2.0.1")));
        assert!(!p.contains(ip("::1")));
        let h: IpPrefix = "192.0.2.1".parse().expect("host");
        assert!(h.contains(ip("192.0.2.1")) && !h.contains(ip("192.0.2.2")));
        let all: IpPrefix = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("2001:db8::1")));
        let v6: IpPrefix = "2001:db8::/32".parse().expect("v6");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(
            IpPrefix::loopback()
                .iter()
                .any(|p| p.contains(ip("127.0.0.2")))
        );
        assert!(IpPrefix::loopback().iter().any(|p| p.contains(ip("::1"))));
        assert_eq!(h.to_string(), "192.0.2.1/32");
    }

    /// An IPv4-mapped prefix means the IPv4 prefix it maps, whether parsed or built (review
    /// finding: it shrank to a single address).
    #[test]
    fn mapped_prefixes_are_their_ipv4_prefix() {
        let p: IpPrefix = "::ffff:10.0.0.0/104".parse().expect("prefix");
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains(ip("10.0.0.5")) && p.contains(ip("::ffff:10.9.9.9")));
        assert!(!p.contains(ip("11.0.0.1")));
        let host: IpPrefix = "::ffff:192.0.2.1".parse().expect("host");
        assert_eq!(host.to_string(), "192.0.2.1/32");
        let built = IpPrefix::host(ip("::ffff:192.0.2.1"));
        assert!(built.contains(ip("192.0.2.1")));
        let all = IpPrefix::new(ip("::ffff:0.0.0.0"), 96);
        assert!(all.contains(ip("203.0.113.9")));
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "host/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "",
        ] {
            assert!(bad.parse::<IpPrefix>().is_err(), "{bad}");
        }
    }
}
