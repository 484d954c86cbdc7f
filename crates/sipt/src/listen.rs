//! `--listen PROTO:IP:PORT` specs for `sipt serve`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use sip_transport::TransportKind;

/// One listener to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenSpec {
    pub(crate) kind: TransportKind,
    pub(crate) addr: SocketAddr,
}

impl FromStr for ListenSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (proto, rest) = s.split_once(':').ok_or_else(|| {
            format!("{s:?}: expected PROTO:IP:PORT, e.g. udp:127.0.0.1:5060 or tcp:[::1]:5060")
        })?;
        let kind: TransportKind = proto.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let addr: SocketAddr = rest.parse().map_err(|_| {
            format!("{s:?}: {rest:?} is not IP:PORT (IPv6 goes in brackets: [::1]:5060)")
        })?;
        Ok(ListenSpec { kind, addr })
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.addr)
    }
}

/// The listeners `sipt serve` opens when no `--listen` is given.
pub(crate) fn default_listeners() -> Vec<ListenSpec> {
    [
        "udp:127.0.0.1:5060",
        "tcp:127.0.0.1:5060",
        "tls:127.0.0.1:5061",
        "ws:127.0.0.1:8080",
        "wss:127.0.0.1:8443",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let l: ListenSpec = "tcp:[::1]:5060".parse().expect("ok");
        assert_eq!(l.kind, TransportKind::Tcp);
        assert_eq!(l.addr, "[::1]:5060".parse().expect("addr"));
        assert_eq!(l.to_string(), "tcp [::1]:5060");
        assert!("sctp:127.0.0.1:1".parse::<ListenSpec>().is_err());
        assert!("udp:127.0.0.1".parse::<ListenSpec>().is_err());
        assert!("udp".parse::<ListenSpec>().is_err());
        assert_eq!(default_listeners().len(), 5);
    }
}
