//! The URI that `sipt ping` and `sipt bench` aim at: `sip:`/`sips:` URIs with an optional
//! `transport` parameter (RFC 3261 §19.1), and `ws://`/`wss://` URLs (RFC 7118).

use std::fmt;
use std::net::IpAddr;

use sip_transport::{TransportKind, parse_ip_host};

/// A parsed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `sip` or `sips` (for the Request-URI).
    pub(crate) scheme: &'static str,
    /// The host as written (IPv6 without brackets).
    pub(crate) host: String,
    /// The port, if given.
    pub(crate) port: Option<u16>,
    /// The transport; `None` when the URI leaves it to RFC 3263.
    pub(crate) transport: Option<TransportKind>,
    /// WebSocket resource path.
    pub(crate) resource: Option<String>,
}

impl Target {
    /// The host as an IP address, if it is one.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        parse_ip_host(&self.host)
    }

    /// The host as written in a URI (IPv6 bracketed).
    pub(crate) fn uri_host(&self) -> String {
        match self.ip() {
            Some(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        }
    }

    /// The transport when the URI does not name one and the host is numeric (RFC 3263 §4.1:
    /// UDP for sip, TLS for sips).
    pub(crate) fn transport_or_default(&self) -> TransportKind {
        self.transport.unwrap_or(if self.scheme == "sips" {
            TransportKind::Tls
        } else {
            TransportKind::Udp
        })
    }

    /// The Request-URI for requests to this target.
    pub(crate) fn request_uri(&self) -> String {
        let mut s = format!("{}:{}", self.scheme, self.uri_host());
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        if let Some(t) = self.transport
            && !(self.scheme == "sips" && t == TransportKind::Tls)
        {
            let t = if t == TransportKind::Wss {
                TransportKind::Ws
            } else {
                t
            };
            s.push_str(&format!(";transport={t}"));
        }
        s
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.request_uri())
    }
}

/// Parses `sip:HOST[:PORT][;params]`, `sips:...`, `ws://HOST[:PORT][/path]`, `wss://...`.
pub(crate) fn parse_target(s: &str) -> Result<Target, String> {
    let bad = |why: &str| format!("bad URI {s:?}: {why}");
    if let Some((scheme, rest)) = s.split_once("://") {
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "ws" => TransportKind::Ws,
            "wss" => TransportKind::Wss,
            _ => return Err(bad("expected sip:, sips:, ws:// or wss://")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(rest[i..].to_owned())),
            None => (rest, None),
        };
        let (host, port) = split_host_port(authority).map_err(|e| bad(&e))?;
        return Ok(Target {
            scheme: if kind == TransportKind::Wss {
                "sips"
            } else {
                "sip"
            },
            host,
            port: Some(port.unwrap_or(kind.default_port())),
            transport: Some(kind),
            resource: path,
        });
    }
    let (scheme, rest) = s.split_once(':').ok_or_else(|| bad("no scheme"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "sip" => "sip",
        "sips" => "sips",
        _ => return Err(bad("expected sip:, sips:, ws:// or wss://")),
    };
    // Drop a user part and URI headers; keep parameters.
    let rest = rest.split('?').next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let mut parts = rest.split(';');
    let hostport = parts.next().unwrap_or("");
    let (host, port) = split_host_port(hostport).map_err(|e| bad(&e))?;
    let mut transport = None;
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if k.trim().eq_ignore_ascii_case("transport") {
            let t: TransportKind = v.parse().map_err(|e| bad(&format!("{e}")))?;
            transport = Some(t);
        }
    }
    if scheme == "sips" {
        // RFC 3261 §26.2.2 / RFC 5630: sips never goes over an insecure hop.
        transport = match transport {
            None | Some(TransportKind::Tls) | Some(TransportKind::Tcp) => Some(TransportKind::Tls),
            Some(TransportKind::Ws) | Some(TransportKind::Wss) => Some(TransportKind::Wss),
            Some(TransportKind::Udp) => return Err(bad("sips: cannot use transport=udp")),
        };
    }
    Ok(Target {
        scheme,
        host,
        port,
        transport,
        resource: None,
    })
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    if s.is_empty() {
        return Err("no host".into());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed IPv6 bracket")?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{h:?} is not an IPv6 address"));
        }
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
            None if after.is_empty() => None,
            None => return Err(format!("junk after IPv6 reference: {after:?}")),
        };
        return Ok((h.to_owned(), port));
    }
    if s.matches(':').count() > 1 {
        return Err("IPv6 addresses must be bracketed (RFC 5118 §4.2)".into());
    }
    match s.split_once(':') {
        Some((h, p)) => {
            let port = p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?;
            Ok((h.to_owned(), Some(port)))
        }
        None => Ok((s.to_owned(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uris() {
        let t = parse_target("sip:127.0.0.1:5070;transport=tcp").expect("ok");
        assert_eq!(
            (t.host.as_str(), t.port, t.transport),
            ("127.0.0.1", Some(5070), Some(TransportKind::Tcp))
        );
        assert_eq!(t.request_uri(), "sip:127.0.0.1:5070;transport=tcp");
        let t = parse_target("sip:alice@[::1]").expect("ok");
        assert_eq!((t.host.as_str(), t.port, t.transport), ("::1", None, None));
        assert_eq!(t.transport_or_default(), TransportKind::Udp);
        assert_eq!(t.request_uri(), "sip:[::1]");
        let t = parse_target("sips:example.com").expect("ok");
        assert_eq!(t.transport, Some(TransportKind::Tls));
        assert_eq!(t.request_uri(), "sips:example.com");
        let t = parse_target("sips:example.com;transport=ws").expect("ok");
        assert_eq!(t.transport, Some(TransportKind::Wss));
        assert!(parse_target("sips:h;transport=udp").is_err());
        assert!(parse_target("sip:2001:db8::1").is_err());
        assert!(parse_target("http://x").is_err());
        assert!(parse_target("sip:h:99999").is_err());
        assert!(parse_target("sip:").is_err());
    }

    #[test]
    fn ws_urls() {
        let t = parse_target("ws://127.0.0.1:8080/sip").expect("ok");
        assert_eq!(t.transport, Some(TransportKind::Ws));
        assert_eq!(t.resource.as_deref(), Some("/sip"));
        assert_eq!(t.port, Some(8080));
        let t = parse_target("wss://localhost").expect("ok");
        assert_eq!(
            (t.port, t.transport, t.scheme),
            (Some(443), Some(TransportKind::Wss), "sips")
        );
    }
}
