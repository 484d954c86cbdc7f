//! What the transport layer reads from a SIP URI ([`TargetUri`]) or a Via header
//! ([`SentBy`]): the input of the factory, the manager and RFC 3263 server location.
//!
//! Only the parts transport selection needs: scheme (sip or sips), host, port, the `transport`
//! and `maddr` parameters. [`TargetUri::parse`] is a small parser for exactly those parts,
//! not a general SIP URI parser: user info, other parameters and headers are skipped.
//! Compiled with every feature set (the factory needs it without `dns`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use sip_transport_api::{Error, Result, TransportKind, Via};

/// Lower case, without the trailing dot: the one form names are compared and cached in.
/// The root name (`.`) becomes the empty string.
pub fn normalize_name(name: &str) -> String {
    name.trim()
        .strip_suffix('.')
        .unwrap_or(name.trim())
        .to_ascii_lowercase()
}

/// A host: a numeric address or a domain name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A numeric IPv4 or IPv6 address: no DNS (RFC 3263 §4.1, §4.2).
    Ip(IpAddr),
    /// A domain name, lower case, without a trailing dot.
    Name(String),
}

impl Host {
    /// Parses `host`, `1.2.3.4`, `[::1]` or `::1`. Names are checked for the characters
    /// RFC 3261 §25.1 allows in a hostname (letters, digits, `-`, `.`).
    pub fn parse(s: &str) -> Result<Host> {
        let t = s.trim();
        let inner = t
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(t);
        if let Ok(ip) = inner.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let name = normalize_name(t);
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if valid {
            Ok(Host::Name(name))
        } else {
            Err(bad(format!("invalid host {t:?}")))
        }
    }

    /// The name, when the host is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl FromStr for Host {
    type Err = Error;
    fn from_str(s: &str) -> Result<Host> {
        Host::parse(s)
    }
}

/// The parts of a SIP or SIPS URI that RFC 3263 §4 uses to locate the server. Build it with
/// [`TargetUri::parse`] or [`TargetUri::new`] and the `with_*` setters (`#[non_exhaustive]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TargetUri {
    /// True for a `sips:` URI: only secure transports may be used, all the way (RFC 3261
    /// §26.2.2; RFC 3263 §4.1 discards non-SIPS NAPTR services for it).
    pub secure: bool,
    /// The host part.
    pub host: Host,
    /// The port, when the URI has one.
    pub port: Option<u16>,
    /// The `transport` parameter, when present. `tcp` and `ws` on a SIPS URI mean TLS and
    /// WSS; see [`TargetUri::transport_kind`].
    pub transport: Option<TransportKind>,
    /// The `maddr` parameter: when present it, not the host, is the TARGET (RFC 3263 §4).
    pub maddr: Option<Host>,
    /// The `ttl` parameter (RFC 3261 §19.1.1, 0-255): the TTL of a request sent to a
    /// multicast `maddr` (1 when absent, as the UDP transport defaults).
    pub ttl: Option<u8>,
}

impl TargetUri {
    /// A URI with only a scheme and host (`sip:host` or `sips:host`).
    pub fn new(secure: bool, host: Host) -> Self {
        TargetUri {
            secure,
            host,
            port: None,
            transport: None,
            maddr: None,
            ttl: None,
        }
    }

    /// Sets the port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the transport parameter.
    pub fn with_transport(mut self, transport: TransportKind) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Sets the maddr parameter.
    pub fn with_maddr(mut self, maddr: Host) -> Self {
        self.maddr = Some(maddr);
        self
    }

    /// Sets the ttl parameter.
    pub fn with_ttl(mut self, ttl: u8) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Parses `sip:[user@]host[:port][;params][?headers]` or the same with `sips:`, reading
    /// the `transport`, `maddr` and `ttl` parameters. A transport this crate does not implement
    /// (e.g. `sctp`) is an error rather than silently another transport, and so is
    /// `transport=udp` on a SIPS URI (a downgrade). Errors are [`Error::InvalidUri`].
    pub fn parse(uri: &str) -> Result<TargetUri> {
        Self::parse_parts(uri.trim()).map_err(|reason| invalid_uri(uri, reason))
    }

    fn parse_parts(uri: &str) -> std::result::Result<TargetUri, String> {
        let (scheme, rest) = uri
            .split_once(':')
            .ok_or_else(|| "not a SIP URI (no scheme)".to_owned())?;
        let secure = if scheme.eq_ignore_ascii_case("sips") {
            true
        } else if scheme.eq_ignore_ascii_case("sip") {
            false
        } else {
            return Err(format!("unsupported URI scheme {scheme:?}"));
        };
        // '@' is never unescaped outside the user info (RFC 3261 §25.1).
        let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let mut parts = rest.split(';');
        let hostport = parts.next().unwrap_or_default();
        let (host, port) = split_host_port(hostport)?;
        let mut target = TargetUri::new(secure, host);
        target.port = port;
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if name.trim().eq_ignore_ascii_case("transport") {
                target.transport = Some(TransportKind::from_token(value).ok_or_else(|| {
                    format!("unsupported transport parameter {:?}", value.trim())
                })?);
            } else if name.trim().eq_ignore_ascii_case("maddr") {
                target.maddr = Some(host_of(value)?);
            } else if name.trim().eq_ignore_ascii_case("ttl") {
                // RFC 3261 §25.1: ttl = 1*3(DIGIT) ; 0 to 255
                let v = value.trim();
                target.ttl = Some(
                    v.parse::<u8>()
                        .ok()
                        .filter(|_| (1..=3).contains(&v.len()))
                        .ok_or_else(|| format!("ttl parameter {v:?} is not 0 to 255"))?,
                );
            }
        }
        // A SIPS URI with transport=udp can never be honoured: refuse it at parse time.
        target
            .transport_kind()
            .map_err(|_| UDP_ON_SIPS.to_owned())?;
        Ok(target)
    }

    /// The TARGET of RFC 3263 §4: the maddr parameter if present, else the host.
    pub fn target(&self) -> &Host {
        self.maddr.as_ref().unwrap_or(&self.host)
    }

    /// The name to verify a TLS certificate against and send as SNI: the URI's domain
    /// (RFC 5922 §4: the SIP domain, not the SRV target). `None` when the host is numeric
    /// (then the maddr name, if any).
    pub fn server_name(&self) -> Option<&str> {
        self.host
            .name()
            .or_else(|| self.maddr.as_ref().and_then(Host::name))
    }

    /// The transport the `transport` parameter asks for, read with the scheme: on a SIPS URI
    /// `tcp` (and the deprecated `tls`) means TLS and `ws` means WSS, and `udp` is an error
    /// ([`Error::InvalidUri`]; [`TargetUri::parse`] refuses such a URI already):
    /// a SIPS URI asks for TLS on every hop (RFC 3261 §26.2.2), and an insecure transport
    /// would be a downgrade.
    pub fn transport_kind(&self) -> Result<Option<TransportKind>> {
        let Some(t) = self.transport else {
            return Ok(None);
        };
        if !self.secure {
            return Ok(Some(t));
        }
        match t {
            TransportKind::Tcp | TransportKind::Tls => Ok(Some(TransportKind::Tls)),
            TransportKind::Ws | TransportKind::Wss => Ok(Some(TransportKind::Wss)),
            TransportKind::Udp => Err(invalid_uri(&self.to_string(), UDP_ON_SIPS.to_owned())),
        }
    }
}

impl FromStr for TargetUri {
    type Err = Error;
    fn from_str(s: &str) -> Result<TargetUri> {
        TargetUri::parse(s)
    }
}

impl fmt::Display for TargetUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(t) = self.transport {
            write!(f, ";transport={t}")?;
        }
        if let Some(m) = &self.maddr {
            write!(f, ";maddr={m}")?;
        }
        if let Some(t) = self.ttl {
            write!(f, ";ttl={t}")?;
        }
        Ok(())
    }
}

/// The sent-by of a response's top Via: where RFC 3263 §5 sends a response when the
/// request's connection is gone and there is no `received` address to use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentBy {
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port, when present.
    pub port: Option<u16>,
    /// The Via's transport.
    pub transport: TransportKind,
}

impl SentBy {
    /// Reads the sent-by and transport of a Via. Errors for transports this crate does not
    /// implement and for an unparsable host.
    pub fn from_via(via: &Via<'_>) -> Result<SentBy> {
        let transport = via.transport_kind().ok_or_else(|| {
            bad(format!(
                "unsupported transport {:?} in Via",
                via.transport()
            ))
        })?;
        Ok(SentBy {
            host: Host::parse(via.host())?,
            port: via.port(),
            transport,
        })
    }
}

fn split_host_port(hostport: &str) -> std::result::Result<(Host, Option<u16>), String> {
    let hp = hostport.trim();
    let (host, port) = if let Some(r) = hp.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| format!("unterminated IPv6 reference in {hp:?}"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("junk after IPv6 reference in {hp:?}"))?,
            ),
        };
        // Only an IPv6 address may be bracketed (RFC 3261 §25.1 IPv6reference).
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("invalid IPv6 reference in {hp:?}"));
        }
        (h, port)
    } else {
        match hp.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 => Some(n),
            _ => return Err(format!("invalid port {p:?}")),
        },
    };
    Ok((host_of(host)?, port))
}

fn host_of(s: &str) -> std::result::Result<Host, String> {
    Host::parse(s).map_err(|_| format!("invalid host {:?}", s.trim()))
}

const UDP_ON_SIPS: &str =
    "a SIPS URI cannot use transport=udp: it asks for TLS on every hop (RFC 3261 §26.2.2)";

/// The URI is kept to 256 bytes in the error (it came from the network, perhaps).
fn invalid_uri(uri: &str, reason: String) -> Error {
    let mut end = uri.len().min(256);
    while !uri.is_char_boundary(end) {
        end -= 1;
    }
    Error::InvalidUri {
        uri: uri[..end].to_owned(),
        reason,
    }
}

fn bad(reason: String) -> Error {
    Error::InvalidDestination { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> TargetUri {
        TargetUri::parse(s).expect("valid URI")
    }

    #[test]
    fn parses_the_parts_rfc_3263_uses() {
        let u = parse(
            "sips:alice;day=tue@Example.COM:5071;lr;Transport=TCP;maddr=proxy.example.com?subject=x",
        );
        assert!(u.secure);
        assert_eq!(u.host, Host::Name("example.com".into()));
        assert_eq!(u.port, Some(5071));
        assert_eq!(u.transport, Some(TransportKind::Tcp));
        assert_eq!(u.transport_kind().ok(), Some(Some(TransportKind::Tls)));
        assert_eq!(u.maddr, Some(Host::Name("proxy.example.com".into())));
        assert_eq!(u.target(), &Host::Name("proxy.example.com".into()));
        assert_eq!(u.server_name(), Some("example.com"));

        let v6 = parse("sip:[2001:db8::1]:5062");
        assert_eq!(v6.host, Host::Ip("2001:db8::1".parse().expect("ip")));
        assert_eq!(v6.port, Some(5062));
        assert_eq!(v6.server_name(), None);
        assert_eq!(parse("sip:[::1]").port, None);
        assert_eq!(parse("SIP:192.0.2.1").host, Host::Ip([192, 0, 2, 1].into()));
        assert_eq!(
            parse("sip:example.com.").host,
            Host::Name("example.com".into())
        );
    }

    #[test]
    fn sips_maps_transports_and_refuses_udp() {
        let k = |s: &str| parse(s).transport_kind();
        assert_eq!(
            k("sips:a.example;transport=ws").ok(),
            Some(Some(TransportKind::Wss))
        );
        assert_eq!(
            k("sip:a.example;transport=ws").ok(),
            Some(Some(TransportKind::Ws))
        );
        assert_eq!(k("sip:a.example").ok(), Some(None));
        assert!(matches!(
            TargetUri::parse("sips:a.example;transport=udp"),
            Err(Error::InvalidUri { .. })
        ));
        let mut downgraded = parse("sips:a.example");
        downgraded.transport = Some(TransportKind::Udp);
        assert!(matches!(
            downgraded.transport_kind(),
            Err(Error::InvalidUri { .. })
        ));
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for s in [
            "http://example.com",
            "example.com",
            "sip:",
            "sip:exa mple.com",
            "sip:example.com:0",
            "sip:example.com:70000",
            "sip:[::1",
            "sip:[::1]x",
            "sip:[example.com]",
            "sips:example.com;transport=udp",
            "sip:example.com;transport=sctp",
            "sip:a..b",
            "sip:239.255.255.1;maddr=239.255.255.1;ttl=256",
            "sip:239.255.255.1;ttl=-1",
            "sip:239.255.255.1;ttl=",
            "sip:239.255.255.1;ttl=0001",
        ] {
            assert!(
                matches!(TargetUri::parse(s), Err(Error::InvalidUri { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn sent_by_from_via() {
        let msg = sip_transport_api::Message::parse(sip_transport_api::bytes::Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS Client.Example.COM;branch=z9hG4bK1\r\n\
              Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n",
        ))
        .expect("valid response");
        let s = SentBy::from_via(&msg.top_via().expect("via")).expect("sent-by");
        assert_eq!(
            s,
            SentBy {
                host: Host::Name("client.example.com".into()),
                port: None,
                transport: TransportKind::Tls,
            }
        );
        let sctp = sip_transport_api::Message::parse(sip_transport_api::bytes::Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/SCTP h.example.com;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
        ))
        .expect("valid response");
        assert!(SentBy::from_via(&sctp.top_via().expect("via")).is_err());
    }

    #[test]
    fn the_ttl_parameter_is_read() {
        assert_eq!(parse("sip:h;maddr=239.1.1.1;TTL=0").ttl, Some(0));
        assert_eq!(parse("sip:h;maddr=239.1.1.1;ttl=255").ttl, Some(255));
        assert_eq!(parse("sip:h;maddr=239.1.1.1").ttl, None);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "sip:example.com",
            "sips:[::1]:5061;transport=tls",
            "sip:192.0.2.1:5080;transport=tcp;maddr=239.255.255.1",
            "sip:192.0.2.1;transport=udp;maddr=239.255.255.1;ttl=16",
        ] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
    }
}
