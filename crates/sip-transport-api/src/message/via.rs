//! The top Via of a message, parsed on demand from the header index.
//!
//! Only what the transport layer needs (RFC 3261 §18.2 and RFC 3581): protocol, transport,
//! sent-by, and the `branch`, `received`, `rport`, `maddr` and `ttl` parameters. It also keeps
//! the byte positions that received/rport stamping edits.

use std::net::IpAddr;

use super::header::{Pattern, low, matches, pattern};
use crate::{Error, Result};

/// The first value of the first Via header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// The value's text (checked UTF-8); the spans below are relative to it, so building a
    /// `Via` copies offsets, not slices.
    text: &'a str,
    protocol: Rel,
    transport: Rel,
    host: Rel,
    port: Option<u16>,
    params: Rel,
    /// `branch`, `received`, `rport`, `maddr` and `ttl` (in [`Known`] order) as
    /// [`Via::param`] finds them (the first of each name): `Some(None)` when valueless.
    known: [Option<Option<Rel>>; 5],
    /// Absolute offset just after the last byte of this Via value (before any `,`).
    pub(crate) element_end: usize,
    /// Absolute offset just after a valueless `rport` parameter name.
    pub(crate) rport_bare_end: Option<usize>,
    /// Absolute span of the `rport` parameter's value, when it has one.
    pub(crate) rport_value: Option<(usize, usize)>,
    /// Absolute span of the `received` parameter's value.
    pub(crate) received_value: Option<(usize, usize)>,
    /// Absolute offset just after a valueless `received` parameter name.
    pub(crate) received_bare_end: Option<usize>,
}

/// A span relative to [`Via::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Rel {
    start: u32,
    end: u32,
}

/// Which of the known parameters a name is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Branch,
    Received,
    Rport,
    Maddr,
    Ttl,
}

/// The known parameter named `buf[s..e]`, compared a word at a time (names are ASCII and
/// case-insensitive). The eight bytes from `s` are read when the buffer has them, which it
/// almost always does: a Via is followed by at least the rest of the header block.
fn known_param(buf: &[u8], s: usize, e: usize) -> Option<Known> {
    const TTL: Pattern = pattern(b"ttl");
    const RPORT: Pattern = pattern(b"rport");
    const MADDR: Pattern = pattern(b"maddr");
    const BRANCH: Pattern = pattern(b"branch");
    const RECEIVED: Pattern = pattern(b"received");
    let len = e - s;
    if !matches!(len, 3 | 5 | 6 | 8) {
        return None;
    }
    let w = match buf.get(s..s + 8).and_then(|b| b.first_chunk::<8>()) {
        Some(b) => u64::from_le_bytes(*b),
        None => {
            let mut b = [0u8; 8];
            b[..len].copy_from_slice(&buf[s..e]);
            u64::from_le_bytes(b)
        }
    };
    let w = if len == 8 { w } else { low(w, len as u32) };
    let is = |p: Pattern| matches(w, p);
    match len {
        3 if is(TTL) => Some(Known::Ttl),
        5 if is(RPORT) => Some(Known::Rport),
        5 if is(MADDR) => Some(Known::Maddr),
        6 if is(BRANCH) => Some(Known::Branch),
        8 if is(RECEIVED) => Some(Known::Received),
        _ => None,
    }
}

/// Byte classes for the Via scanner: LWS, and the separators a field can stop at.
const LWS: u8 = 1;
const SLASH: u8 = 2;
const SEMI: u8 = 4;
const COMMA: u8 = 8;
const COLON: u8 = 16;
const LBRACKET: u8 = 32;
const EQUALS: u8 = 64;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = LWS;
    t[b'\t' as usize] = LWS;
    t[b'\r' as usize] = LWS;
    t[b'\n' as usize] = LWS;
    t[b'/' as usize] = SLASH;
    t[b';' as usize] = SEMI;
    t[b',' as usize] = COMMA;
    t[b':' as usize] = COLON;
    t[b'[' as usize] = LBRACKET;
    t[b'=' as usize] = EQUALS;
    t
};

fn is_lws(b: u8) -> bool {
    CLASS[usize::from(b)] & LWS != 0
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn skip_lws(&mut self) {
        while self.pos < self.end && is_lws(self.buf[self.pos]) {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.buf[self.pos])
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    /// Takes bytes until one in the classes `stop` or LWS; returns the span.
    #[inline]
    fn take_until(&mut self, stop: u8) -> (usize, usize) {
        let s = self.pos;
        let stop = stop | LWS;
        let rest = &self.buf[self.pos..self.end];
        self.pos += rest
            .iter()
            .position(|b| CLASS[usize::from(*b)] & stop != 0)
            .unwrap_or(rest.len());
        (s, self.pos)
    }
    /// Skips to just after the byte `close` (for `"..."` with `\` escapes, or `[...]`).
    fn close(&mut self, close: u8, escapes: bool) -> Result<()> {
        while self.pos < self.end && self.buf[self.pos] != close {
            if escapes && self.buf[self.pos] == b'\\' {
                self.pos += 1;
            }
            self.pos += 1;
        }
        if self.eat(close) {
            Ok(())
        } else {
            Err(BAD_VIA)
        }
    }
}

const BAD_VIA: Error = Error::Malformed {
    reason: "malformed Via header",
};

const NOT_UTF8: Error = Error::Malformed {
    reason: "Via is not valid UTF-8",
};

impl<'a> Via<'a> {
    /// Parses the first Via value found in `buf[start..end]` (the raw header value): one pass
    /// over the bytes, one UTF-8 check of the value.
    pub(crate) fn parse(buf: &'a [u8], start: usize, end: usize) -> Result<Via<'a>> {
        let mut c = Cursor {
            buf,
            pos: start,
            end,
        };
        c.skip_lws();
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, with LWS
        // allowed around the slashes; almost always written `SIP/2.0/`.
        // `SIP/2.0/` in any case, compared as one word.
        const SIP_2_0: Pattern = pattern(b"sip/2.0/");
        let word = buf.get(c.pos..c.pos + 8).and_then(|p| p.first_chunk::<8>());
        let (name, version) = match word.map(|p| u64::from_le_bytes(*p)) {
            Some(w) if matches(w, SIP_2_0) => {
                let at = c.pos;
                c.pos += 8;
                ((at, at + 3), (at + 4, at + 7))
            }
            _ => {
                let name = c.take_until(SLASH);
                c.skip_lws();
                if !c.eat(b'/') {
                    return Err(BAD_VIA);
                }
                c.skip_lws();
                let version = c.take_until(SLASH);
                c.skip_lws();
                if !c.eat(b'/') || name.0 == name.1 || version.0 == version.1 {
                    return Err(BAD_VIA);
                }
                (name, version)
            }
        };
        c.skip_lws();
        let transport = c.take_until(SEMI | COMMA | COLON | LBRACKET);
        if transport.0 == transport.1 {
            return Err(BAD_VIA);
        }
        c.skip_lws();
        // sent-by = host [ COLON port ]; an IPv6 reference is bracketed (RFC 3261 §25.1).
        let host = if c.peek() == Some(b'[') {
            let s = c.pos;
            c.close(b']', false)?;
            (s, c.pos)
        } else {
            c.take_until(COLON | SEMI | COMMA)
        };
        if host.0 == host.1 {
            return Err(BAD_VIA);
        }
        let mut last_end = host.1;
        c.skip_lws();
        let mut port = None;
        if c.eat(b':') {
            c.skip_lws();
            let p = c.take_until(SEMI | COMMA);
            let Some(n) = parse_port(&buf[p.0..p.1]) else {
                return Err(BAD_VIA);
            };
            port = Some(n);
            last_end = p.1;
        }
        let mut params_start = None;
        // Spans of the known parameters' values: `Some(None)` when valueless.
        let mut known: [Option<Option<Rel>>; 5] = [None; 5];
        let rel = |(s, e): (usize, usize)| Rel {
            start: (s - start) as u32,
            end: (e - start) as u32,
        };
        // Only the first `rport` and `received` count, as for `Via::param`: stamping edits the
        // parameter that is read back.
        let mut rport_bare_end = None;
        let mut rport_value = None;
        let mut received_value = None;
        let mut received_bare_end = None;
        loop {
            c.skip_lws();
            match c.peek() {
                None | Some(b',') => break,
                Some(b';') => {
                    params_start.get_or_insert(c.pos);
                    c.pos += 1;
                    c.skip_lws();
                    let pname = c.take_until(EQUALS | SEMI | COMMA);
                    let name_end = c.pos;
                    last_end = c.pos;
                    // The first of each known name only.
                    let first =
                        known_param(buf, pname.0, pname.1).filter(|k| known[*k as usize].is_none());
                    c.skip_lws();
                    let value = if c.eat(b'=') {
                        c.skip_lws();
                        let s = c.pos;
                        match c.peek() {
                            Some(b'"') => {
                                c.pos += 1;
                                c.close(b'"', true)?;
                            }
                            Some(b'[') => c.close(b']', false)?,
                            _ => {
                                c.take_until(SEMI | COMMA);
                            }
                        }
                        last_end = c.pos;
                        Some((s, c.pos))
                    } else {
                        None
                    };
                    if let Some(k) = first {
                        known[k as usize] = Some(value.map(rel));
                        match (k, value) {
                            (Known::Rport, None) => rport_bare_end = Some(name_end),
                            (Known::Rport, Some(v)) => rport_value = Some(v),
                            (Known::Received, None) => received_bare_end = Some(name_end),
                            (Known::Received, Some(v)) => received_value = Some(v),
                            _ => {}
                        }
                    }
                }
                Some(_) => return Err(BAD_VIA),
            }
        }
        // One UTF-8 check for the whole value; every span starts and ends next to an ASCII
        // separator, so it cannot split a character (and `str::get` would refuse if it did).
        let text = std::str::from_utf8(&buf[start..last_end]).map_err(|_| NOT_UTF8)?;
        Ok(Via {
            text,
            protocol: rel((name.0, version.1)),
            transport: rel(transport),
            host: rel(host),
            port,
            params: params_start.map_or_else(Rel::default, |s| rel((s, last_end))),
            known,
            element_end: last_end,
            rport_bare_end,
            rport_value,
            received_value,
            received_bare_end,
        })
    }

    fn str(&self, r: Rel) -> &'a str {
        self.text
            .get(r.start as usize..r.end as usize)
            .unwrap_or_default()
    }

    fn known(&self, k: Known) -> Option<Option<&'a str>> {
        self.known[k as usize].map(|v| v.map(|r| self.str(r)))
    }

    /// The protocol as written, e.g. `SIP / 2.0` or `SIP/2.0`.
    pub fn protocol(&self) -> &'a str {
        self.str(self.protocol)
    }

    /// The transport token as written (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`, or unknown).
    pub fn transport(&self) -> &'a str {
        self.str(self.transport)
    }

    /// The transport as a [`crate::TransportKind`], if it is one this crate implements.
    pub fn transport_kind(&self) -> Option<crate::TransportKind> {
        crate::TransportKind::from_token(self.transport())
    }

    /// The sent-by host as written: a name, an IPv4 address or a bracketed IPv6 reference.
    pub fn host(&self) -> &'a str {
        self.str(self.host)
    }

    /// The sent-by host as an IP address, if it is one (brackets removed).
    pub fn host_ip(&self) -> Option<IpAddr> {
        parse_ip_host(self.host())
    }

    /// The sent-by port, if given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The raw parameter string, starting at the first `;` (empty if none).
    pub fn params(&self) -> &'a str {
        self.str(self.params)
    }

    /// Looks up a parameter: `None` if absent, `Some(None)` if present without a value,
    /// `Some(Some(v))` otherwise. Names compare case-insensitively.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        param_iter(self.params())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.known(Known::Branch).flatten()
    }

    /// The `received` parameter, as an IP address (bracketed or not, RFC 5118 §4.5).
    pub fn received(&self) -> Option<IpAddr> {
        self.known(Known::Received)
            .flatten()
            .and_then(parse_ip_host)
    }

    /// The `rport` parameter: `None` if absent, `Some(None)` when requested but not filled,
    /// `Some(Some(port))` when filled (RFC 3581).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.known(Known::Rport)
            .map(|v| v.and_then(|v| parse_port(v.as_bytes())))
    }

    /// The `maddr` parameter (RFC 3261 §18.2.2).
    pub fn maddr(&self) -> Option<&'a str> {
        self.known(Known::Maddr).flatten()
    }

    /// The `ttl` parameter for multicast (RFC 3261 §18.1.1).
    pub fn ttl(&self) -> Option<u8> {
        self.known(Known::Ttl)
            .flatten()
            .and_then(|v| v.parse().ok())
    }
}

/// Iterates `;name[=value]` pairs of a parameter string.
///
/// Tokenizes exactly as [`Via::parse`] does (a quoted string or `[...]` only as a whole value,
/// LWS around `=` and `;`), so a parameter read back here is the one stamping edited; a quote
/// elsewhere (RFC 3261 forbids it in a token) must not swallow the parameters after it.
fn param_iter(params: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let b = params.as_bytes();
    let mut pos = 0;
    let skip_lws = |pos: &mut usize| {
        while *pos < b.len() && is_lws(b[*pos]) {
            *pos += 1;
        }
    };
    std::iter::from_fn(move || {
        while pos < b.len() && (b[pos] == b';' || is_lws(b[pos])) {
            pos += 1;
        }
        if pos >= b.len() {
            return None;
        }
        let name_start = pos;
        while pos < b.len() && !matches!(b[pos], b'=' | b';') && !is_lws(b[pos]) {
            pos += 1;
        }
        let name = &params[name_start..pos];
        skip_lws(&mut pos);
        if pos >= b.len() || b[pos] != b'=' {
            return Some((name, None));
        }
        pos += 1;
        skip_lws(&mut pos);
        let value_start = pos;
        match b.get(pos) {
            Some(b'"') => {
                pos += 1;
                while pos < b.len() && b[pos] != b'"' {
                    pos += if b[pos] == b'\\' { 2 } else { 1 };
                }
                pos = (pos + 1).min(b.len());
            }
            Some(b'[') => {
                while pos < b.len() && b[pos] != b']' {
                    pos += 1;
                }
                pos = (pos + 1).min(b.len());
            }
            _ => {
                while pos < b.len() && b[pos] != b';' && !is_lws(b[pos]) {
                    pos += 1;
                }
            }
        }
        // Every end above is just after an ASCII byte or at the end: a char boundary.
        Some((name, Some(&params[value_start..pos])))
    })
}

/// Parses a decimal port (1 to 5 digits, at most 65535).
pub(crate) fn parse_port(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    let mut v: u32 = 0;
    for d in b {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        v = v * 10 + u32::from(digit);
    }
    u16::try_from(v).ok()
}

/// Parses an IP host: IPv4, bare IPv6, or a bracketed IPv6 reference.
pub fn parse_ip_host(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(s: &str) -> Via<'_> {
        Via::parse(s.as_bytes(), 0, s.len()).expect("parses")
    }

    #[test]
    fn simple() {
        let v = via("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK776;rport");
        assert_eq!(v.transport(), "UDP");
        assert_eq!(v.host(), "192.0.2.1");
        assert_eq!(v.port(), Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bK776"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.rport_bare_end, Some(50));
        assert_eq!(v.element_end, 50);
    }

    #[test]
    fn lws_everywhere_and_second_value_ignored() {
        let s = "SIP / 2.0 / TCP\r\n  host.example.com ; branch = z9hG4bK1 ; received=10.0.0.1 , SIP/2.0/UDP other";
        let v = via(s);
        assert_eq!(v.transport(), "TCP");
        assert_eq!(v.host(), "host.example.com");
        assert_eq!(v.port(), None);
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.received(), Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(&s[v.element_end..v.element_end + 2], " ,");
    }

    #[test]
    fn known_names_in_any_case_and_only_exactly() {
        let v = via("sIp/2.0/udp h;BRANCH=a;RPort;MAddr=m;TTL=2;Received=192.0.2.9");
        assert_eq!(v.protocol(), "sIp/2.0");
        assert_eq!(v.branch(), Some("a"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.maddr(), Some("m"));
        assert_eq!(v.ttl(), Some(2));
        assert_eq!(v.received(), Some("192.0.2.9".parse().expect("ip")));
        // Near-misses are other parameters; the last one ends the buffer (a short read).
        let v = via("SIP/2.0/UDP h;branchx=a;rpor;t;ttl2=1;receivedx=1;maddrr=x");
        assert_eq!(v.branch(), None);
        assert_eq!(v.rport(), None);
        assert_eq!(v.ttl(), None);
        assert_eq!(v.received(), None);
        assert_eq!(v.maddr(), None);
        assert_eq!(via("SIP/2.0/UDP h;x;rport").rport(), Some(None));
        // `SIP/2.0/` with a non-letter where a letter folds is not the fast path's, and the
        // general path takes it as another protocol name.
        let v = via("SI\x10/2.0/UDP h");
        assert_eq!(v.protocol(), "SI\x10/2.0");
    }

    #[test]
    fn ipv6() {
        let v = via("SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111");
        assert_eq!(v.host(), "[2001:db8::9:1]");
        assert_eq!(v.host_ip(), Some("2001:db8::9:1".parse().expect("ip")));
        assert_eq!(v.port(), Some(6050));
        let v = via("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bK");
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().expect("ip")));
        let v = via("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bK");
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().expect("ip")));
        assert_eq!(v.branch(), Some("z9hG4bK"));
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "SIP/2.0",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP host:notaport",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP host junk",
        ] {
            assert!(Via::parse(s.as_bytes(), 0, s.len()).is_err(), "{s:?}");
        }
    }

    #[test]
    fn first_rport_and_received_are_the_ones_recorded() {
        let s = "SIP/2.0/UDP h;rport=5;rport;received=1.2.3.4;received=5.6.7.8";
        let v = via(s);
        assert_eq!(v.rport_bare_end, None);
        assert_eq!(v.received_value, Some((37, 44)));
        let s = "SIP/2.0/UDP h;rport;rport;received;received=1.2.3.4";
        let v = via(s);
        assert_eq!(v.rport_bare_end, Some(19));
        assert_eq!(v.received_value, None);
        assert_eq!(v.received_bare_end, Some(34));
    }

    #[test]
    fn params_read_as_the_parser_sees_them() {
        // A stray quote in a parameter name must not hide the parameters after it.
        let v = via(r#"SIP/2.0/UDP h;x"y;received=1.2.3.4;branch = "a;b\"c" ;rport"#);
        assert_eq!(v.received(), Some("1.2.3.4".parse().expect("ip")));
        assert_eq!(v.branch(), Some(r#""a;b\"c""#));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.param("x\"y"), Some(None));
        let v = via("SIP/2.0/UDP h;received=[2001:db8::1];maddr = 224.0.0.1");
        assert_eq!(v.received(), Some("2001:db8::1".parse().expect("ip")));
        assert_eq!(v.maddr(), Some("224.0.0.1"));
    }

    #[test]
    fn recorded_params_agree_with_param_lookup() {
        for s in [
            "SIP/2.0/UDP h;branch=z9hG4bK1;rport;received=1.2.3.4;maddr=224.0.0.1;ttl=3",
            "SIP/2.0/UDP h;BRANCH=a;Branch=b;RPORT=9;rport;Received=[::1];TTL=x",
            "SIP/2.0/UDP h ; branch = \"q;x\" ; maddr ; ttl = 200 ; received",
            "SIP/2.0/UDP h;x=1;y;branchx=2;rportt;maddr=[2001:db8::1]",
            "SIP/2.0/UDP h",
        ] {
            let v = via(s);
            for name in ["branch", "received", "rport", "maddr", "ttl"] {
                let recorded = v.known(match name {
                    "branch" => Known::Branch,
                    "received" => Known::Received,
                    "rport" => Known::Rport,
                    "maddr" => Known::Maddr,
                    _ => Known::Ttl,
                });
                assert_eq!(recorded, v.param(name), "{s} {name}");
            }
        }
        // Non-UTF-8 anywhere in the value is refused; in a second value it does not matter.
        let mut b = b"SIP/2.0/UDP h;branch=z9hG4bK\xff".to_vec();
        assert!(Via::parse(&b, 0, b.len()).is_err());
        b = b"SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP \xff".to_vec();
        assert_eq!(
            Via::parse(&b, 0, b.len()).expect("first value").branch(),
            Some("z9hG4bK1")
        );
    }

    #[test]
    fn params_and_ports() {
        let v = via("SIP/2.0/WSS abc.invalid;branch=z9hG4bK;maddr=224.2.0.1;ttl=16;rport=7");
        assert_eq!(v.transport_kind(), Some(crate::TransportKind::Wss));
        assert_eq!(v.maddr(), Some("224.2.0.1"));
        assert_eq!(v.ttl(), Some(16));
        assert_eq!(v.rport(), Some(Some(7)));
        assert_eq!(parse_port(b"65535"), Some(65535));
        assert_eq!(parse_port(b"65536"), None);
        assert_eq!(parse_port(b"0005060"), None);
    }
}
