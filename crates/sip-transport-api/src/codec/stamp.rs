//! Stamping a received request's top Via: `received` (RFC 3261 §18.2.1) and `rport`
//! (RFC 3581 §4). Edits the bytes once and shifts the index; nothing is parsed again.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::Message;

/// Returns the request with its top Via stamped for a request that arrived from `source`:
/// - `received=<source ip>` when the sent-by host is not that IP (or is a name), and always
///   when `rport` is present (RFC 3581 §4); a `received` the request already carries is set
///   to the source IP too, whatever the sent-by host;
/// - `rport` set to the source port: a valueless one filled, one the request already carries
///   with another value (or none that parses) replaced, as Kamailio does. RFC 3581 §4 has the
///   server put the source port there, and the response follows it (§4, RFC 3261 §18.2.2):
///   a value of the sender's choosing would send it to another port of the source host.
///
/// Responses, and requests without a parsable top Via, are returned unchanged: the transport
/// still delivers them and the application decides (a stateless server answers 400).
///
/// [`stamp_received_owned`] does the same without copying the index when the caller owns
/// the message, as a transport does.
pub fn stamp_received(msg: &Message, source: SocketAddr) -> Message {
    stamp_received_owned(msg.clone(), source)
}

/// [`stamp_received`] for a message the caller owns: an unchanged message is returned as is,
/// a stamped one reuses the index (shifted in place) and copies the bytes once.
pub fn stamp_received_owned(msg: Message, source: SocketAddr) -> Message {
    if !msg.is_request() {
        return msg;
    }
    let Ok(via) = msg.top_via() else {
        return msg;
    };
    let src_ip = source.ip().to_canonical();
    let rport = via.rport();
    let host_matches = via.host_ip().map(|ip| ip.to_canonical()) == Some(src_ip);
    // A `received` the request already carries must say the source too (§18.2.1: it "MUST
    // contain the source address"), or the response would follow it (§18.2.2) to an address
    // of the sender's choosing.
    let has_received = via.received_value.is_some() || via.received_bare_end.is_some();
    let need_received = rport.is_some() || !host_matches || has_received;
    let already = via.received().map(|ip| ip.to_canonical()) == Some(src_ip);

    // Formatted on the stack: `;received=` and the longest IPv6 text fit in 64 bytes.
    let mut port_text = Text::default();
    let port_span = match (via.rport_bare_end, via.rport_value) {
        (Some(at), _) => {
            let _ = write!(port_text, "={}", source.port());
            Some((at, at))
        }
        (None, Some(span)) if rport != Some(Some(source.port())) => {
            let _ = write!(port_text, "{}", source.port());
            Some(span)
        }
        _ => None,
    };
    let mut recv_text = Text::default();
    let recv_span = (need_received && !already).then(|| {
        let (span, prefix) = match (via.received_value, via.received_bare_end) {
            (Some(span), _) => (span, ""),
            (None, Some(at)) => ((at, at), "="),
            (None, None) => ((via.element_end, via.element_end), ";received="),
        };
        let _ = write!(recv_text, "{prefix}{src_ip}");
        span
    });
    let port = port_span.map(|(s, e)| (s, e, port_text.as_bytes()));
    let recv = recv_span.map(|(s, e)| (s, e, recv_text.as_bytes()));
    match (port, recv) {
        (None, None) => msg,
        (Some(one), None) | (None, Some(one)) => msg.splice_owned(&[one]),
        // In buffer order; at the same spot the rport value goes first.
        (Some(p), Some(r)) if (r.0, r.1) < (p.0, p.1) => msg.splice_owned(&[r, p]),
        (Some(p), Some(r)) => msg.splice_owned(&[p, r]),
    }
}

/// A small stack buffer that `write!` formats into.
struct Text {
    buf: [u8; 64],
    len: usize,
}

impl Default for Text {
    fn default() -> Self {
        Text {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl Text {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn req(via: &str) -> Message {
        let s = format!(
            "OPTIONS sip:x SIP/2.0\r\nVia: {via}\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(s)).expect("parses")
    }

    /// A 200 to `m`, carrying its Vias, as a stateless server would answer it.
    fn response_to(m: &Message) -> Message {
        let via = m.header("Via").and_then(|h| h.value()).expect("via");
        Message::parse(Bytes::from(format!(
            "SIP/2.0 200 OK\r\nVia: {via}\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n"
        )))
        .expect("parses")
    }

    fn top(m: &Message) -> String {
        m.header("Via")
            .and_then(|h| h.value())
            .expect("via")
            .to_owned()
    }

    #[test]
    fn same_ip_no_rport_is_unchanged() {
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");
        let s = stamp_received(&m, "192.0.2.1:5060".parse().expect("addr"));
        assert_eq!(s, m);
    }

    #[test]
    fn host_name_gets_received() {
        let m = req("SIP/2.0/UDP pc.example.com;branch=z9hG4bK1");
        let s = stamp_received(&m, "192.0.2.4:3456".parse().expect("addr"));
        assert_eq!(
            top(&s),
            "SIP/2.0/UDP pc.example.com;branch=z9hG4bK1;received=192.0.2.4"
        );
        assert_eq!(s.call_id(), Some("c"));
    }

    #[test]
    fn rport_filled_and_received_added_even_if_same_ip() {
        // RFC 3581 §4 example.
        let m = req("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bK1");
        let s = stamp_received(&m, "10.1.1.1:9988".parse().expect("addr"));
        assert_eq!(
            top(&s),
            "SIP/2.0/UDP 10.1.1.1:4540;rport=9988;branch=z9hG4bK1;received=10.1.1.1"
        );
        let v = s.top_via().expect("via");
        assert_eq!(v.rport(), Some(Some(9988)));
        assert_eq!(v.received(), Some("10.1.1.1".parse().expect("ip")));
        // The stamped bytes parse to the same index.
        assert_eq!(Message::parse(s.as_bytes().clone()).expect("reparse"), s);
    }

    /// A request cannot choose the port its responses go to either: an `rport` value it
    /// carries is replaced by the source port (RFC 3581 §4), a right one is left alone.
    #[test]
    fn supplied_rport_value_is_replaced_by_the_source_port() {
        let src = "192.0.2.1:40000".parse().expect("addr");
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;rport=6000;branch=z9hG4bK1");
        let s = stamp_received(&m, src);
        assert_eq!(
            top(&s),
            "SIP/2.0/UDP 192.0.2.1:5060;rport=40000;branch=z9hG4bK1;received=192.0.2.1"
        );
        let v = s.top_via().expect("via");
        assert_eq!(v.rport(), Some(Some(40000)));
        assert_eq!(Message::parse(s.as_bytes().clone()).expect("reparse"), s);
        let t = crate::codec::response_target(&response_to(&s)).expect("target");
        assert_eq!(t.socket_addr(), Some(src));
        // Unparsable or empty values are replaced too; the second rport is not the one read.
        for (via, want) in [
            (
                "SIP/2.0/UDP h;rport=x;branch=z9hG4bK1",
                "SIP/2.0/UDP h;rport=40000;branch=z9hG4bK1;received=192.0.2.1",
            ),
            (
                "SIP/2.0/UDP h;rport=;received=1.1.1.1",
                "SIP/2.0/UDP h;rport=40000;received=192.0.2.1",
            ),
            (
                "SIP/2.0/UDP h;rport=99999;rport=5",
                "SIP/2.0/UDP h;rport=40000;rport=5;received=192.0.2.1",
            ),
        ] {
            let s = stamp_received(&req(via), src);
            assert_eq!(top(&s), want, "{via}");
            assert_eq!(Message::parse(s.as_bytes().clone()).expect("reparse"), s);
        }
        // Already right: nothing to change.
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;rport=40000;received=192.0.2.1");
        assert_eq!(stamp_received(&m, src), m);
    }

    #[test]
    fn rport_last_param_and_second_value_kept() {
        let m = req("SIP/2.0/UDP h;branch=z9hG4bK1;rport, SIP/2.0/UDP other");
        let s = stamp_received(&m, "[2001:db8::9]:7".parse().expect("addr"));
        assert_eq!(
            top(&s),
            "SIP/2.0/UDP h;branch=z9hG4bK1;rport=7;received=2001:db8::9, SIP/2.0/UDP other"
        );
        assert_eq!(s.vias().count(), 2);
    }

    #[test]
    fn wrong_received_is_replaced_and_mapped_v6_matches_v4() {
        let m = req("SIP/2.0/TCP 192.0.2.1;received=1.1.1.1;branch=z9hG4bK1");
        let s = stamp_received(&m, "192.0.2.9:5060".parse().expect("addr"));
        assert_eq!(
            top(&s),
            "SIP/2.0/TCP 192.0.2.1;received=192.0.2.9;branch=z9hG4bK1"
        );
        let m = req("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
        let s = stamp_received(&m, "[::ffff:192.0.2.1]:5060".parse().expect("addr"));
        assert_eq!(s, m);
    }

    /// A request cannot choose where its responses go: a `received` it carries is replaced
    /// by the source even when the sent-by host is the source.
    #[test]
    fn forged_received_is_replaced_when_the_host_matches() {
        let src = "192.0.2.1:5060".parse().expect("addr");
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;received=203.0.113.9;branch=z9hG4bK1");
        let s = stamp_received(&m, src);
        assert_eq!(
            top(&s),
            "SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;branch=z9hG4bK1"
        );
        assert_eq!(
            s.top_via().expect("via").received(),
            Some("192.0.2.1".parse().expect("ip"))
        );
        // A valueless one is filled; a right one is left alone.
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;received;branch=z9hG4bK1");
        assert_eq!(
            top(&stamp_received(&m, src)),
            "SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;branch=z9hG4bK1"
        );
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.1;branch=z9hG4bK1");
        assert_eq!(stamp_received(&m, src), m);
    }

    #[test]
    fn duplicate_or_valueless_params_stamp_the_first() {
        // The accessors read the first rport/received; stamping must write that one.
        let m = req("SIP/2.0/UDP h;rport;rport;received;received=1.2.3.4");
        let s = stamp_received(&m, "192.0.2.9:7000".parse().expect("addr"));
        assert_eq!(
            top(&s),
            "SIP/2.0/UDP h;rport=7000;rport;received=192.0.2.9;received=1.2.3.4"
        );
        let v = s.top_via().expect("via");
        assert_eq!(v.rport(), Some(Some(7000)));
        assert_eq!(v.received(), Some("192.0.2.9".parse().expect("ip")));
        assert_eq!(
            stamp_received(&s, "192.0.2.9:7000".parse().expect("addr")),
            s
        );
        assert_eq!(Message::parse(s.as_bytes().clone()).expect("reparse"), s);
    }

    #[test]
    fn owned_stamping_keeps_an_unchanged_message_and_matches_the_borrowed_one() {
        let m = req("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1");
        let ptr = m.as_bytes().as_ptr();
        let same = stamp_received_owned(m.clone(), "192.0.2.1:5060".parse().expect("addr"));
        assert_eq!(
            same.as_bytes().as_ptr(),
            ptr,
            "no copy when nothing changes"
        );
        for via in [
            "SIP/2.0/UDP h;rport;branch=z9hG4bK1",
            "SIP/2.0/UDP h;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP 10.0.0.1;received=1.1.1.1;rport",
            "SIP/2.0/UDP [2001:db8::1];rport;received",
        ] {
            let m = req(via);
            let src = "[2001:db8::ff]:9".parse().expect("addr");
            let owned = stamp_received_owned(m.clone(), src);
            assert_eq!(owned, stamp_received(&m, src), "{via}");
            assert_eq!(
                Message::parse(owned.as_bytes().clone()).expect("reparse"),
                owned,
                "{via}"
            );
            assert_eq!(
                owned.top_via().expect("via").rport(),
                Some(Some(9)),
                "{via}"
            );
        }
    }

    #[test]
    fn responses_and_bad_vias_untouched() {
        let r = Message::parse(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;rport\r\n\r\n",
        ))
        .expect("parses");
        assert_eq!(stamp_received(&r, "1.2.3.4:5".parse().expect("addr")), r);
        let m = req("garbage");
        assert_eq!(stamp_received(&m, "1.2.3.4:5".parse().expect("addr")), m);
    }
}
