//! Building a response to a request (RFC 3261 §8.2.6) with its index written alongside the
//! bytes, so the result is a [`Message`] without parsing it again.

use bytes::{BufMut, BytesMut};

use super::header::{HeaderId, classify};
use super::parse::is_token;
use super::{Head, HeaderEntry, Message, Span, StartLine};
use crate::{Error, Result};

/// Headers a response copies from its request (RFC 3261 §8.2.6.2), in the request's order.
fn copied(id: HeaderId) -> bool {
    matches!(
        id,
        HeaderId::Via | HeaderId::From | HeaderId::To | HeaderId::CallId | HeaderId::CSeq
    )
}

/// True when a To/From value carries a `tag` header parameter: after the name-addr's `<...>`
/// (or after the addr-spec when there are no brackets), outside quoted strings (RFC 3261
/// §25.1: a display name or a parameter value may be quoted and hold `;`, `>` or `tag=`).
fn has_tag(value: &[u8]) -> bool {
    let is_tag = |p: &[u8]| {
        let p = p.trim_ascii();
        p.len() >= 3
            && p[..3].eq_ignore_ascii_case(b"tag")
            && p[3..].trim_ascii_start().first() == Some(&b'=')
    };
    let (mut quoted, mut escaped, mut in_angle) = (false, false, false);
    // Start of the header parameter being read, once past a `;` outside quotes and brackets.
    let mut param = None;
    for (i, &b) in value.iter().enumerate() {
        if quoted {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'<' if param.is_none() => in_angle = true,
            b'>' => in_angle = false,
            b';' if !in_angle => {
                if param.is_some_and(|s| is_tag(&value[s..i])) {
                    return true;
                }
                param = Some(i + 1);
            }
            _ => {}
        }
    }
    param.is_some_and(|s| is_tag(&value[s..]))
}

fn bad(reason: &'static str) -> Error {
    Error::Malformed { reason }
}

/// A header value or reason phrase must not break the framing.
fn no_line_break(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

impl Message {
    /// Builds the response to this request that RFC 3261 §8.2.6 describes: the status line
    /// `SIP/2.0 <code> <reason>`; the request's Via, From, To, Call-ID and CSeq headers copied
    /// in order and as written (compact names and folding kept); `;tag=<to_tag>` added to To
    /// when the request's To has no tag and `to_tag` is given (§8.2.6.2; a 100 Trying needs
    /// none); then `extra` headers; then `Content-Length: 0`.
    ///
    /// The index is written with the bytes: no parse, and the result equals what
    /// [`Message::parse`] of the same bytes gives. `Error::Malformed` for a response (only
    /// requests are answered), a code outside 100..=699, or a reason, tag or extra header that
    /// would break the framing (CR, LF or NUL; a name that is not a token).
    pub fn response(
        &self,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<Message> {
        if !self.is_request() {
            return Err(bad("only a request can be answered"));
        }
        if !(100..=699).contains(&code) {
            return Err(bad("status code outside 100..=699"));
        }
        if !no_line_break(reason) || !to_tag.is_none_or(no_line_break) {
            return Err(bad("line break in the reason phrase or To tag"));
        }
        for (name, value) in extra {
            if !is_token(name.as_bytes()) || !no_line_break(value) {
                return Err(bad("extra header with a bad name or a line break"));
            }
            // The response frames itself (its own Content-Length) and carries exactly the
            // request's Vias (§8.2.6.2): neither may come in as an extra.
            if matches!(
                classify(name.as_bytes()),
                HeaderId::ContentLength | HeaderId::Via
            ) {
                return Err(bad("Content-Length or Via as an extra header"));
            }
        }
        let mut out = BytesMut::with_capacity(self.len().min(2048) + 128);
        let mut headers = Vec::with_capacity(self.head.headers.len() + extra.len() + 1);
        let mut top_via = None;
        // Status line.
        out.put_slice(b"SIP/2.0 ");
        out.put_slice(&[
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ]);
        out.put_u8(b' ');
        let reason_start = out.len();
        out.put_slice(reason.as_bytes());
        let start = StartLine::Response {
            version: Span::new(0, 7),
            code,
            reason: Span::new(reason_start, out.len()),
        };
        out.put_slice(b"\r\n");
        let mut push = |out: &mut BytesMut, name: &[u8], value: &[&[u8]], id: HeaderId| {
            if id == HeaderId::Via && top_via.is_none() {
                top_via = u16::try_from(headers.len()).ok();
            }
            let name_start = out.len();
            out.put_slice(name);
            let name_end = out.len();
            out.put_slice(b":");
            // The raw value span starts after the colon, as the parser records it.
            let value_start = out.len();
            out.put_slice(b" ");
            for part in value {
                out.put_slice(part);
            }
            headers.push(HeaderEntry {
                name: Span::new(name_start, name_end),
                value: Span::new(value_start, out.len()),
                id,
            });
            out.put_slice(b"\r\n");
        };
        for e in self.head.headers.iter().filter(|e| copied(e.id)) {
            let value = self.slice(e.value(&self.buf));
            let tag = to_tag.filter(|_| e.id == HeaderId::To && !has_tag(value));
            match tag {
                Some(tag) => push(
                    &mut out,
                    self.slice(e.name),
                    &[value, b";tag=", tag.as_bytes()],
                    e.id,
                ),
                None => push(&mut out, self.slice(e.name), &[value], e.id),
            }
        }
        for (name, value) in extra {
            let value = value.trim_matches([' ', '\t']);
            push(
                &mut out,
                name.as_bytes(),
                &[value.as_bytes()],
                classify(name.as_bytes()),
            );
        }
        push(
            &mut out,
            b"Content-Length",
            &[b"0"],
            HeaderId::ContentLength,
        );
        out.put_slice(b"\r\n");
        if headers.len() > usize::from(u16::MAX) {
            return Err(bad("too many headers"));
        }
        let body_start = out.len();
        let head = Head {
            start,
            headers,
            body_start,
            content_length: Some(0),
            top_via,
        };
        Ok(Message::from_head(out.freeze(), head, body_start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const REQ: &str = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1;received=127.0.0.1;rport=5062\r\n\
        v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n\
        Max-Forwards: 70\r\n\
        f: <sip:a@b>;tag=f1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: abc\r\n\
        CSeq: 7 OPTIONS\r\nSubject: folded\r\n  value\r\nContent-Length: 0\r\n\r\n";

    fn req(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).expect("parses")
    }

    /// The built index is the one a parse of the same bytes gives.
    fn check(m: &Message) {
        let parsed = Message::parse(m.as_bytes().clone()).expect("response parses");
        assert_eq!(&parsed, m, "{}", String::from_utf8_lossy(m.as_bytes()));
    }

    #[test]
    fn copies_the_dialog_headers_and_adds_the_tag() {
        let r = req(REQ)
            .response(200, "OK", Some("t1"), &[("Server", "sipt")])
            .expect("builds");
        check(&r);
        assert_eq!(r.status_code(), Some(200));
        assert_eq!(r.reason_phrase(), Some("OK"));
        assert_eq!(r.vias().count(), 2);
        assert_eq!(r.top_via().expect("via").rport(), Some(Some(5062)));
        assert_eq!(r.from_header(), Some(&b"<sip:a@b>;tag=f1"[..]));
        assert_eq!(r.to_header(), Some(&b"<sip:x@127.0.0.1>;tag=t1"[..]));
        assert_eq!(r.call_id(), Some("abc"));
        assert_eq!(r.cseq().map(|c| (c.seq, c.method)), Some((7, "OPTIONS")));
        assert!(r.header("Max-Forwards").is_none());
        assert!(r.header("Subject").is_none());
        assert_eq!(r.header("Server").and_then(|h| h.value()), Some("sipt"));
        assert_eq!(r.content_length(), Some(0));
        assert!(r.body().is_empty());
    }

    #[test]
    fn keeps_an_existing_tag_and_checks_its_input() {
        let s = REQ.replace(
            "To: <sip:x@127.0.0.1>",
            "t: <sip:x@127.0.0.1;tag=inuri>;tag=t9",
        );
        let m = req(&s);
        let r = m
            .response(486, "Busy Here", Some("new"), &[])
            .expect("builds");
        check(&r);
        assert_eq!(
            r.to_header(),
            Some(&b"<sip:x@127.0.0.1;tag=inuri>;tag=t9"[..])
        );
        // A tag inside the URI only does not count.
        let s = REQ.replace("To: <sip:x@127.0.0.1>", "To: <sip:x@127.0.0.1;tag=inuri>");
        let r = req(&s).response(100, "Trying", None, &[]).expect("builds");
        check(&r);
        assert_eq!(r.to_header(), Some(&b"<sip:x@127.0.0.1;tag=inuri>"[..]));
        for bad in [
            m.response(99, "x", None, &[]),
            m.response(700, "x", None, &[]),
            m.response(200, "O\r\nK", None, &[]),
            m.response(200, "OK", Some("a\nb"), &[]),
            m.response(200, "OK", None, &[("X Y", "v")]),
            m.response(200, "OK", None, &[("X", "v\r\nInjected: 1")]),
            // A second Content-Length would unframe it; a Via the request lacked is forged.
            m.response(200, "OK", None, &[("Content-Length", "5")]),
            m.response(200, "OK", None, &[("l", "5")]),
            m.response(200, "OK", None, &[("v", "SIP/2.0/UDP h")]),
            r.response(200, "OK", None, &[]),
        ] {
            assert!(matches!(bad, Err(Error::Malformed { .. })), "{bad:?}");
        }
    }

    #[test]
    fn every_torture_request_answers_with_a_reparsable_response() {
        // Requests without Via or with odd spellings still give a response whose index
        // matches its parse.
        for s in [
            "INVITE sip:a SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
            "MESSAGE sip:a SIP/2.0\r\nVIA : SIP/2.0/TCP h\r\ni:x\r\nl: 0\r\n\r\n",
            "BYE sip:a SIP/2.0\r\nTo:\r\nFrom: <sip:é@b>\r\nContent-Length: 0\r\n\r\n",
        ] {
            let r = req(s)
                .response(481, "Call/Transaction Does Not Exist", Some("x"), &[])
                .expect("builds");
            check(&r);
        }
    }

    #[test]
    fn has_tag_reads_parameters_outside_the_brackets() {
        assert!(has_tag(b"<sip:a@b>;tag=1"));
        assert!(has_tag(b"sip:a@b ; TAG = 1"));
        assert!(!has_tag(b"<sip:a@b;tag=1>"));
        assert!(!has_tag(b"<sip:a@b>;tagx=1"));
        assert!(!has_tag(b"<sip:a@b>"));
        // Quoted strings hide `;`, `>` and `tag=` (review finding).
        assert!(!has_tag(br#"<sip:b@x>;p="a;tag=b""#));
        assert!(has_tag(br#"<sip:b@x>;tag=1;p="y>""#));
        assert!(has_tag(br#""A;tag=\"x>" <sip:b@x>;tag=1"#));
        assert!(!has_tag(br#""A;tag=1" <sip:b@x;tag=2>"#));
    }
}
