//! Stamping a received request's top Via: `received` (RFC 3261 §18.2.1) and `rport`
//! (RFC 3581 §4). Edits the bytes once and shifts the index; nothing is parsed again.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::Message;

/// Returns the request with its top Via stamped for a request that arrived from `source`:
/// - `received=<source ip>` when the sent-by host is not that IP (or is a name), and always
///   when `rport` is present (RFC 3581 §4);
/// - a valueless `rport` filled with the source port.
///
/// Responses, and requests without a parsable top Via, are returned unchanged: the transport
/// still delivers them and the application decides (a stateless server answers 400).
pub fn stamp_received(msg: &Message, source: SocketAddr) -> Message {
    if !msg.is_request() {
        return msg.clone();
    }
    let Ok(via) = msg.top_via() else {
        return msg.clone();
    };
    let src_ip = source.ip().to_canonical();
    let rport = via.rport();
    let host_matches = via.host_ip().map(|ip| ip.to_canonical()) == Some(src_ip);
    let need_received = rport.is_some() || !host_matches;
    let already = via.received().map(|ip| ip.to_canonical()) == Some(src_ip);

    let mut port_text = String::new();
    let mut recv_text = String::new();
    let mut edits: Vec<(usize, usize, &[u8])> = Vec::with_capacity(2);
    if let Some(at) = via.rport_bare_end {
        let _ = write!(port_text, "={}", source.port());
        edits.push((at, at, port_text.as_bytes()));
    }
    if need_received && !already {
        match (via.received_value, via.received_bare_end) {
            (Some((s, e)), _) => {
                let _ = write!(recv_text, "{src_ip}");
                edits.push((s, e, recv_text.as_bytes()));
            }
            (None, Some(at)) => {
                let _ = write!(recv_text, "={src_ip}");
                edits.push((at, at, recv_text.as_bytes()));
            }
            (None, None) => {
                let _ = write!(recv_text, ";received={src_ip}");
                edits.push((via.element_end, via.element_end, recv_text.as_bytes()));
            }
        }
    }
    if edits.is_empty() {
        return msg.clone();
    }
    edits.sort_by_key(|e| (e.0, e.1));
    msg.splice(&edits)
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
