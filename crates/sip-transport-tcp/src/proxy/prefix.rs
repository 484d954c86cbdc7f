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
        IpPrefix {
            addr,
            len: len.min(max),
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
        Ok(IpPrefix::new(addr.to_canonical(), len))
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
