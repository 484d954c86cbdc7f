//! The stateless responder behind `sipt serve`: builds the final response to a request as
//! RFC 3261 §8.2.6 says, behaving as the stateless UAS of §8.2.7. Pure: message in, message
//! out; sending is the caller's job (§18.2.2).
//!
//! Not a UAS with state: no transactions, no dialogs. ACK and CANCEL get nothing (§8.2.7: a
//! stateless UAS ignores both). A 2xx to INVITE carries a Contact naming the listener that
//! received it (§12.1.1, §13.3.1.4), so the dialog it would set up has a remote target.

use std::net::SocketAddr;

use sip_transport::{Message, TransportKind};

/// What to send back.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A response to send.
    Respond(Message),
    /// Nothing to send (ACK, CANCEL, or a response that arrived).
    Absorb,
}

/// The listener a request arrived on: its address (an IP the client can reach, not an
/// unspecified one) and transport, for the Contact of a 2xx to INVITE.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    pub(crate) kind: TransportKind,
}

/// The reason phrase for the codes `sipt` uses (RFC 3261 §21).
pub(crate) fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        600 => "Busy Everywhere",
        603 => "Decline",
        c if c < 200 => "Provisional",
        c if c < 300 => "Success",
        c if c < 400 => "Redirection",
        c if c < 500 => "Client Error",
        c if c < 600 => "Server Error",
        _ => "Global Failure",
    }
}

/// Decides and builds the reply to `msg`, which arrived on `here`: `code` for a well-formed
/// request; 400 when a mandatory header is missing, when Call-ID, From, To or CSeq appears
/// more than once (RFC 4475 §3.3.8), when the CSeq method is not the request's (RFC 3261
/// §8.1.1.5, RFC 4475 §3.1.2.17-18) or when the Request-URI has whitespace in it (RFC 4475
/// §3.1.2.8); 505 for a version other than SIP/2.0 (RFC 4475 §3.1.2.16).
pub(crate) fn reply(msg: &Message, code: u16, here: Listener) -> Reply {
    let Some(method) = msg.method() else {
        return Reply::Absorb;
    };
    // RFC 3261 §8.2.7: a stateless UAS ignores ACK and CANCEL.
    if method == "ACK" || method == "CANCEL" {
        return Reply::Absorb;
    }
    let cseq = msg.cseq();
    let missing = msg.header("Via").is_none()
        || msg.from_header().is_none()
        || msg.to_header().is_none()
        || msg.call_id().is_none()
        || cseq.is_none();
    // RFC 3261 §7.3.1: these take one value; two of them leave the request ambiguous.
    let repeated = ["Call-ID", "From", "To", "CSeq"]
        .iter()
        .any(|name| msg.headers_named(name).nth(1).is_some());
    // RFC 3261 §8.1.1.5: the CSeq method matches the request's (methods are case-sensitive).
    let mismatched = cseq.is_some_and(|c| c.method != method);
    let code = if missing
        || repeated
        || mismatched
        || msg.top_via().is_err()
        || msg
            .request_uri()
            .is_some_and(|u| u.bytes().any(|b| b == b' ' || b == b'\t'))
    {
        400
    } else if !msg.version().eq_ignore_ascii_case("SIP/2.0") {
        505
    } else {
        code
    };
    // RFC 3261 §12.1.1, §13.3.1.4: a 2xx to INVITE MUST carry a Contact. Only a 2xx: in a
    // 3xx a Contact is where to redirect to, and this server is not somewhere else.
    let contact = (method == "INVITE" && (200..300).contains(&code)).then(|| contact(msg, here));
    match build(msg, code, contact.as_deref()) {
        Some(m) => Reply::Respond(m),
        None => Reply::Absorb,
    }
}

/// `<sip:IP:PORT;transport=T>` for `here`. A SIPS URI when the dialog needs one (RFC 3261
/// §12.1.1: the Request-URI, else the top Record-Route, else the Contact is SIPS) and the
/// listener is secure; a SIPS URI over udp or tcp could not be reached, so those listeners
/// always give a SIP URI.
fn contact(msg: &Message, here: Listener) -> String {
    let addr = here.addr;
    match here.kind {
        TransportKind::Tls if wants_sips(msg) => format!("<sips:{addr}>"),
        // RFC 7118 §5.2: sips with transport=ws is WebSocket over TLS.
        TransportKind::Wss if wants_sips(msg) => format!("<sips:{addr};transport=ws>"),
        kind => format!("<sip:{addr};transport={}>", kind.uri_param()),
    }
}

/// RFC 3261 §12.1.1: the Request-URI, or the top Record-Route if there is one, else the
/// Contact, is a SIPS URI.
fn wants_sips(msg: &Message) -> bool {
    fn is_sips(v: &str) -> bool {
        let uri = v.find('<').map_or(v, |i| &v[i + 1..]).trim_start();
        uri.get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
    }
    if msg.request_uri().is_some_and(is_sips) {
        return true;
    }
    let route_or_contact = msg.header("Record-Route").or_else(|| msg.header("Contact"));
    route_or_contact
        .and_then(|h| h.value())
        .is_some_and(|v| is_sips(v.trim_start()))
}

/// FNV-1a over the request's identity, so retransmissions get the same To tag.
fn tag_for(msg: &Message) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [
        msg.call_id().map(str::as_bytes).unwrap_or_default(),
        msg.from_header().unwrap_or_default(),
    ];
    for p in parts {
        for b in p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn build(msg: &Message, code: u16, contact: Option<&str>) -> Option<Message> {
    // The To tag: 16 hex digits of the request's identity (the same for a retransmission).
    let tag = tag_for(msg);
    let mut hex = [0u8; 16];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[(tag >> ((15 - i) * 4)) as usize & 0xf];
    }
    let tag = std::str::from_utf8(&hex).ok()?;
    let server = ("Server", "sipt");
    match contact {
        Some(c) => {
            // RFC 3261 §12.1.1: a response that sets up a dialog copies every Record-Route
            // value of the request, in order.
            let routes: Vec<_> = msg
                .headers_named("Record-Route")
                .map(|h| h.value_unfolded())
                .collect();
            let mut extra = vec![("Contact", c)];
            extra.extend(routes.iter().map(|r| ("Record-Route", r.as_ref())));
            extra.push(server);
            msg.response(code, reason_phrase(code), Some(tag), &extra)
        }
        None => msg.response(code, reason_phrase(code), Some(tag), &[server]),
    }
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn req(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).expect("parses")
    }

    const OPTS: &str = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1;received=127.0.0.1;rport=5062\r\n\
        v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n\
        From: <sip:a@b>;tag=f1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: abc\r\nCSeq: 7 OPTIONS\r\n\
        Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    fn udp_here() -> Listener {
        Listener {
            addr: "127.0.0.1:5060".parse().expect("addr"),
            kind: TransportKind::Udp,
        }
    }

    fn respond(m: &Message, code: u16) -> Message {
        respond_on(m, code, udp_here())
    }

    fn respond_on(m: &Message, code: u16, here: Listener) -> Message {
        match reply(m, code, here) {
            Reply::Respond(r) => r,
            Reply::Absorb => panic!("absorbed"),
        }
    }

    #[test]
    fn ok_copies_headers_and_adds_tag() {
        let r = respond(&req(OPTS), 200);
        assert_eq!(r.status_code(), Some(200));
        assert_eq!(r.reason_phrase(), Some("OK"));
        assert_eq!(r.headers_named("Via").count(), 2);
        assert_eq!(r.top_via().expect("via").rport(), Some(Some(5062)));
        assert_eq!(r.call_id(), Some("abc"));
        assert_eq!(r.cseq().map(|c| (c.seq, c.method)), Some((7, "OPTIONS")));
        let to = String::from_utf8_lossy(r.to_header().expect("to")).into_owned();
        assert!(to.starts_with("<sip:x@127.0.0.1>;tag="), "{to}");
        assert!(r.header("Max-Forwards").is_none());
        assert_eq!(r.content_length(), Some(0));
        // Same tag for a retransmission.
        let r2 = respond(&req(OPTS), 200);
        assert_eq!(r.to_header(), r2.to_header());
    }

    #[test]
    fn existing_tag_kept_and_code_used() {
        let s = OPTS.replace(
            "To: <sip:x@127.0.0.1>",
            "To: <sip:x@127.0.0.1;tag=inuri>;tag=t9",
        );
        let r = respond(&req(&s), 486);
        assert_eq!(r.status_code(), Some(486));
        assert_eq!(
            r.to_header(),
            Some(&b"<sip:x@127.0.0.1;tag=inuri>;tag=t9"[..])
        );
        // A tag inside the URI only does not count.
        let s = OPTS.replace("To: <sip:x@127.0.0.1>", "To: <sip:x@127.0.0.1;tag=inuri>");
        let r = respond(&req(&s), 200);
        assert!(
            r.to_header()
                .expect("to")
                .windows(5)
                .filter(|w| w == b";tag=")
                .count()
                == 2
        );
    }

    #[test]
    fn bad_requests() {
        let no_callid = OPTS.replace("Call-ID: abc\r\n", "");
        assert_eq!(respond(&req(&no_callid), 200).status_code(), Some(400));
        let no_cseq = OPTS.replace("CSeq: 7 OPTIONS\r\n", "");
        assert_eq!(respond(&req(&no_cseq), 200).status_code(), Some(400));
        let v7 = OPTS.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
        assert_eq!(respond(&req(&v7), 200).status_code(), Some(505));
        let lws = OPTS.replace("sip:x@127.0.0.1 SIP", "sip:x@127.0.0.1; lr SIP");
        assert_eq!(respond(&req(&lws), 200).status_code(), Some(400));
        // RFC 4475 §3.1.2.17 (mismatch01): the CSeq method is not the request's.
        let mismatch = OPTS.replace("7 OPTIONS", "7 INVITE");
        assert_eq!(respond(&req(&mismatch), 200).status_code(), Some(400));
        let lower = OPTS.replace("7 OPTIONS", "7 options");
        assert_eq!(respond(&req(&lower), 200).status_code(), Some(400));
        // RFC 4475 §3.3.8 (multi01): one of the single-valued headers twice.
        for dup in [
            "Call-ID: abc\r\n",
            "i: abd\r\n",
            "From: <sip:a@c>;tag=f2\r\n",
            "t: <sip:y@127.0.0.1>\r\n",
            "CSeq: 8 OPTIONS\r\n",
        ] {
            let twice = OPTS.replace("Max-Forwards", &format!("{dup}Max-Forwards"));
            assert_eq!(respond(&req(&twice), 200).status_code(), Some(400), "{dup}");
        }
        // Two Vias (and other multi-valued headers) are fine: OPTS has two.
        assert_eq!(respond(&req(OPTS), 200).status_code(), Some(200));
        let no_via = OPTS
            .replace(
                "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1;received=127.0.0.1;rport=5062\r\n",
                "",
            )
            .replace("v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n", "");
        // Still answered (over the flow or to the UDP source), though it has no Via to copy.
        let r = respond(&req(&no_via), 200);
        assert_eq!(r.status_code(), Some(400));
        assert!(r.header("Via").is_none());
    }

    #[test]
    fn ack_and_responses_absorbed() {
        let ack = OPTS
            .replace("OPTIONS sip", "ACK sip")
            .replace("7 OPTIONS", "7 ACK");
        assert!(matches!(reply(&req(&ack), 200, udp_here()), Reply::Absorb));
        let resp = respond(&req(OPTS), 200);
        assert!(matches!(reply(&resp, 200, udp_here()), Reply::Absorb));
    }

    #[test]
    fn cancel_ignored() {
        // RFC 3261 §8.2.7, whatever the code asked for and even when malformed.
        let cancel = OPTS
            .replace("OPTIONS sip", "CANCEL sip")
            .replace("7 OPTIONS", "7 CANCEL");
        for code in [200, 486] {
            assert!(matches!(
                reply(&req(&cancel), code, udp_here()),
                Reply::Absorb
            ));
        }
        let no_callid = cancel.replace("Call-ID: abc\r\n", "");
        assert!(matches!(
            reply(&req(&no_callid), 200, udp_here()),
            Reply::Absorb
        ));
    }

    fn invite(uri: &str) -> Message {
        req(&OPTS
            .replace("OPTIONS sip:x@127.0.0.1", &format!("INVITE {uri}"))
            .replace("7 OPTIONS", "7 INVITE"))
    }

    fn contact_of(r: &Message) -> Option<String> {
        r.header("Contact").map(|h| h.value_unfolded().into_owned())
    }

    #[test]
    fn invite_2xx_has_the_listeners_contact() {
        let r = respond(&invite("sip:x@127.0.0.1"), 200);
        assert_eq!(
            contact_of(&r).as_deref(),
            Some("<sip:127.0.0.1:5060;transport=udp>")
        );
        let tcp6 = Listener {
            addr: "[::1]:5070".parse().expect("addr"),
            kind: TransportKind::Tcp,
        };
        let r = respond_on(&invite("sip:x@[::1]"), 202, tcp6);
        assert_eq!(
            contact_of(&r).as_deref(),
            Some("<sip:[::1]:5070;transport=tcp>")
        );
        let tls = Listener {
            addr: "127.0.0.1:5061".parse().expect("addr"),
            kind: TransportKind::Tls,
        };
        let r = respond_on(&invite("sip:x@127.0.0.1"), 200, tls);
        assert_eq!(
            contact_of(&r).as_deref(),
            Some("<sip:127.0.0.1:5061;transport=tls>")
        );
        // RFC 3261 §12.1.1: a SIPS Request-URI asks for a SIPS Contact.
        let r = respond_on(&invite("sips:x@127.0.0.1"), 200, tls);
        assert_eq!(contact_of(&r).as_deref(), Some("<sips:127.0.0.1:5061>"));
        let wss = Listener {
            addr: "127.0.0.1:8443".parse().expect("addr"),
            kind: TransportKind::Wss,
        };
        let r = respond_on(&invite("sip:x@127.0.0.1"), 200, wss);
        assert_eq!(
            contact_of(&r).as_deref(),
            Some("<sip:127.0.0.1:8443;transport=wss>")
        );
        let rr = req(&OPTS
            .replace("OPTIONS sip:x@127.0.0.1", "INVITE sip:x@127.0.0.1")
            .replace("7 OPTIONS", "7 INVITE")
            .replace(
                "Max-Forwards",
                "Record-Route: <sips:p.example;lr>\r\nMax-Forwards",
            ));
        let r = respond_on(&rr, 200, wss);
        assert_eq!(
            contact_of(&r).as_deref(),
            Some("<sips:127.0.0.1:8443;transport=ws>")
        );
        // The response still parses as one message with the headers in place.
        assert_eq!(r.cseq().map(|c| c.method), Some("INVITE"));
        assert_eq!(r.content_length(), Some(0));
    }

    #[test]
    fn contact_only_on_2xx_to_invite() {
        for code in [302, 486, 603] {
            assert!(contact_of(&respond(&invite("sip:x@127.0.0.1"), code)).is_none());
        }
        assert!(contact_of(&respond(&req(OPTS), 200)).is_none());
        // A malformed INVITE gets a 400, without one.
        let bad = invite("sip:x@127.0.0.1");
        let bad = req(&String::from_utf8_lossy(bad.as_bytes()).replace("Call-ID: abc\r\n", ""));
        let r = respond(&bad, 200);
        assert_eq!(r.status_code(), Some(400));
        assert!(contact_of(&r).is_none());
    }

    /// RFC 3261 §12.1.1: the 2xx to INVITE copies every Record-Route value, in order; other
    /// responses do not.
    #[test]
    fn invite_2xx_copies_the_record_routes_in_order() {
        let m = invite("sip:x@127.0.0.1");
        let with_routes = String::from_utf8_lossy(m.as_bytes()).replace(
            "Max-Forwards: 70\r\n",
            "Record-Route: <sip:p1.example.com;lr>\r\nMax-Forwards: 70\r\n\
             Record-Route: <sip:p2.example.com;lr>;x=1, <sip:p3.example.com;lr>\r\n",
        );
        let m = req(&with_routes);
        let routes = |r: &Message| -> Vec<String> {
            r.headers_named("Record-Route")
                .map(|h| h.value_unfolded().into_owned())
                .collect()
        };
        let r = respond(&m, 200);
        assert_eq!(
            routes(&r),
            [
                "<sip:p1.example.com;lr>",
                "<sip:p2.example.com;lr>;x=1, <sip:p3.example.com;lr>"
            ]
        );
        assert!(routes(&respond(&m, 486)).is_empty());
    }
}
