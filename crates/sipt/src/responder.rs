//! The stateless responder behind `sipt serve`: builds the final response to a request as
//! RFC 3261 §8.2.6 says. Pure: message in, message out; sending is the caller's job (§18.2.2).
//!
//! Not a UAS: no transactions, no dialogs. ACK gets nothing (§17.1.1.3 ACKs are end-to-end).

use sip_transport::Message;

/// What to send back.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A response to send.
    Respond(Message),
    /// Nothing to send (ACK, or a response that arrived).
    Absorb,
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

/// Decides and builds the reply to `msg`: `code` for a well-formed request, 400 when a
/// mandatory header is missing or the Request-URI has whitespace in it (RFC 4475 §3.1.2.8),
/// 505 for a version other than SIP/2.0 (RFC 4475 §3.1.2.16).
pub(crate) fn reply(msg: &Message, code: u16) -> Reply {
    let Some(method) = msg.method() else {
        return Reply::Absorb;
    };
    if method == "ACK" {
        return Reply::Absorb;
    }
    let missing = msg.header("Via").is_none()
        || msg.from_header().is_none()
        || msg.to_header().is_none()
        || msg.call_id().is_none()
        || msg.cseq().is_none();
    let code = if missing
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
    match build(msg, code) {
        Some(m) => Reply::Respond(m),
        None => Reply::Absorb,
    }
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

fn build(msg: &Message, code: u16) -> Option<Message> {
    // The To tag: 16 hex digits of the request's identity (the same for a retransmission).
    let tag = tag_for(msg);
    let mut hex = [0u8; 16];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[(tag >> ((15 - i) * 4)) as usize & 0xf];
    }
    let tag = std::str::from_utf8(&hex).ok()?;
    msg.response(code, reason_phrase(code), Some(tag), &[("Server", "sipt")])
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

    fn respond(m: &Message, code: u16) -> Message {
        match reply(m, code) {
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
        assert!(matches!(reply(&req(&ack), 200), Reply::Absorb));
        let resp = respond(&req(OPTS), 200);
        assert!(matches!(reply(&resp, 200), Reply::Absorb));
    }
}
