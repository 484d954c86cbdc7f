//! `TransportKind`: which of the five SIP transports a flow or listener uses.
//!
//! This is the only place that knows the per-transport facts (reliability, security, default
//! port, the Via token); it does not know how any transport is implemented.

use std::fmt;
use std::str::FromStr;

/// A SIP transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// Plain UDP (RFC 3261 §18).
    Udp,
    /// Plain TCP (RFC 3261 §18).
    Tcp,
    /// TLS over TCP (RFC 3261 §26.2).
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// WebSocket over TLS (RFC 7118).
    Wss,
}

impl TransportKind {
    /// All kinds, in a stable order.
    pub const ALL: [TransportKind; 5] = [Self::Udp, Self::Tcp, Self::Tls, Self::Ws, Self::Wss];

    /// Reliable transports deliver in order without loss, so no SIP retransmissions are needed
    /// (RFC 3261 §17.1.1.2 timer rules).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// Whether the transport encrypts (TLS or WSS).
    pub fn is_secure(self) -> bool {
        matches!(self, Self::Tls | Self::Wss)
    }

    /// Whether the transport is a byte stream that needs Content-Length framing (TCP, TLS).
    /// WebSocket is reliable but message-oriented, so it is not a stream here.
    pub fn is_stream(self) -> bool {
        matches!(self, Self::Tcp | Self::Tls)
    }

    /// Whether the transport runs over connections (everything but UDP).
    pub fn is_connection_oriented(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// The default port: 5060 for UDP/TCP, 5061 for TLS (RFC 3261 §19.1.2), 80 and 443 for
    /// WS and WSS (RFC 7118 §5.2 uses the HTTP defaults).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Udp | Self::Tcp => 5060,
            Self::Tls => 5061,
            Self::Ws => 80,
            Self::Wss => 443,
        }
    }

    /// The transport token as written in a Via header (`SIP/2.0/UDP`, RFC 7118 §5.1 for WS/WSS).
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Ws => "WS",
            Self::Wss => "WSS",
        }
    }

    /// The value of a URI `transport` parameter (lower case).
    pub fn uri_param(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// Parses a Via transport token or a URI transport parameter, case-insensitively.
    /// Returns `None` for transports this crate does not implement (SCTP, unknown tokens).
    pub fn from_token(token: &str) -> Option<Self> {
        let t = token.trim();
        Self::ALL
            .into_iter()
            .find(|k| t.eq_ignore_ascii_case(k.via_token()))
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri_param())
    }
}

/// Error for parsing an unknown transport name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SIP transport {0:?} (expected udp, tcp, tls, ws or wss)")]
pub struct UnknownTransport(pub String);

impl FromStr for TransportKind {
    type Err = UnknownTransport;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_token(s).ok_or_else(|| UnknownTransport(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties() {
        assert!(!TransportKind::Udp.is_reliable());
        assert!(TransportKind::Ws.is_reliable() && !TransportKind::Ws.is_stream());
        assert!(TransportKind::Tls.is_stream() && TransportKind::Tls.is_secure());
        assert!(TransportKind::Wss.is_secure() && !TransportKind::Tcp.is_secure());
        assert_eq!(TransportKind::Tls.default_port(), 5061);
        assert_eq!(TransportKind::Wss.default_port(), 443);
        assert_eq!(TransportKind::Udp.default_port(), 5060);
    }

    #[test]
    fn parse_tokens() {
        assert_eq!("WSS".parse::<TransportKind>(), Ok(TransportKind::Wss));
        assert_eq!(" tcp ".parse::<TransportKind>(), Ok(TransportKind::Tcp));
        assert!("sctp".parse::<TransportKind>().is_err());
        for k in TransportKind::ALL {
            assert_eq!(TransportKind::from_token(k.via_token()), Some(k));
            assert_eq!(k.to_string().parse::<TransportKind>(), Ok(k));
        }
    }
}
