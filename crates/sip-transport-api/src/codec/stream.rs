//! `StreamDecoder`: incremental framing of SIP over a byte stream (TCP, TLS).
//!
//! Feed it bytes in any split; it yields whole messages, RFC 5626 §3.5.1 keepalive pings
//! (`CRLFCRLF`) and pongs (`CRLF`), or a typed error after which the connection must close
//! (RFC 3261 §18.3: Content-Length is mandatory and the next boundary is otherwise unknown).
//! Other line-end bytes between messages (bare LFs, CRs without LF) are dropped, so a peer
//! cannot fill the buffer with bytes that are neither a keepalive nor a message.
//! It owns the read buffer so that reads land in it and messages leave it without a copy.

use bytes::BytesMut;

use crate::message::{Head, find_head_end, parse_head_prefix};
use crate::{Error, Limits, Message, Result};

/// One unit decoded from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete SIP message.
    Message(Message),
    /// A keepalive ping (`CRLFCRLF`); the receiver should answer with a pong (`CRLF`).
    Ping,
    /// A keepalive pong (`CRLF`), or a stray CRLF between messages.
    Pong,
}

/// Incremental stream framer. See the module docs.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: BytesMut,
    limits: Limits,
    /// Where the search for the end of the header block resumes.
    scan_from: usize,
    /// Start of the header line being received (for the line-length limit).
    line_start: usize,
    /// The parsed head of a message whose body has not fully arrived, and its total length.
    pending: Option<(Head, usize)>,
    awaiting_pong: bool,
    failed: bool,
}

const INITIAL_CAPACITY: usize = 4096;

impl StreamDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        StreamDecoder {
            buf: BytesMut::with_capacity(INITIAL_CAPACITY),
            limits,
            scan_from: 0,
            line_start: 0,
            pending: None,
            awaiting_pong: false,
            failed: false,
        }
    }

    /// The read buffer: read socket data straight into it (`AsyncReadExt::read_buf`), then call
    /// [`StreamDecoder::decode`] until it returns `Ok(None)`.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends bytes (for callers that do not read into [`StreamDecoder::buffer_mut`]).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Tells the decoder that we sent a ping, so a lone `CRLF` is the pong and not the first
    /// half of a ping from the peer.
    pub fn ping_sent(&mut self) {
        self.awaiting_pong = true;
    }

    /// True while part of a header block has arrived but not its end: the window the
    /// header-read (slowloris) timeout applies to.
    pub fn is_reading_headers(&self) -> bool {
        self.pending.is_none() && self.buf.iter().any(|b| !matches!(b, b'\r' | b'\n'))
    }

    /// True while any part of a message is buffered (headers or body).
    pub fn is_mid_message(&self) -> bool {
        self.pending.is_some() || self.is_reading_headers()
    }

    /// Makes sure at least `n` bytes can be read without reallocating, keeping the buffer
    /// small for idle connections.
    pub fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }

    /// Frees the buffer's memory when nothing is buffered (for idle connections).
    pub fn shrink_if_idle(&mut self) {
        if self.buf.is_empty() && self.pending.is_none() && self.buf.capacity() > INITIAL_CAPACITY {
            self.buf = BytesMut::new();
        }
    }

    /// Decodes the next frame, `Ok(None)` if more bytes are needed. After an error the decoder
    /// is unusable: close the connection.
    pub fn decode(&mut self) -> Result<Option<Frame>> {
        if self.failed {
            return Err(Error::Malformed {
                reason: "stream decoder already failed",
            });
        }
        let r = self.decode_inner();
        if r.is_err() {
            self.failed = true;
            self.pending = None;
            self.buf.clear();
        }
        r
    }

    fn decode_inner(&mut self) -> Result<Option<Frame>> {
        if self.pending.is_none() {
            self.skip_stray_line_ends();
            // Keepalive at a message boundary (RFC 5626 §3.5.1).
            if self.buf.starts_with(b"\r\n") {
                if self.awaiting_pong {
                    self.awaiting_pong = false;
                    let _ = self.buf.split_to(2);
                    return Ok(Some(Frame::Pong));
                }
                if self.buf.starts_with(b"\r\n\r\n") {
                    let _ = self.buf.split_to(4);
                    return Ok(Some(Frame::Ping));
                }
                if self.buf.len() < 4 && self.buf[2..].iter().all(|b| *b == b'\r') {
                    return Ok(None); // could still become a ping
                }
                let _ = self.buf.split_to(2);
                return Ok(Some(Frame::Pong));
            }
            let limit = self.limits.max_header_size;
            let from = self.scan_from.min(self.buf.len());
            let head = if from == 0 {
                // Usually the whole header block is here: find its end while parsing it.
                parse_head_prefix(&self.buf, &self.limits)?
            } else {
                // Part of it came earlier: look for the end in the new bytes only.
                match find_head_end(&self.buf[from..]) {
                    Some(e) => parse_head_prefix(&self.buf[..from + e], &self.limits)?,
                    None => None,
                }
            };
            let Some(head) = head else {
                if self.buf.len() > limit {
                    return Err(Error::HeadersTooLarge { limit });
                }
                // Every line completed since the last scan, then the open one, against the
                // line limit, so that the outcome does not depend on how reads split the
                // bytes. Lines end in CRLF, as parse_head_prefix sees them; a bare LF is content.
                let max_line = self.limits.max_line_length;
                let too_long = Error::LineTooLong { limit: max_line };
                for p in memchr::memchr_iter(b'\n', &self.buf[from..]).map(|p| p + from) {
                    if p > self.line_start && self.buf[p - 1] == b'\r' {
                        if p - 1 - self.line_start > max_line {
                            return Err(too_long);
                        }
                        self.line_start = p + 1;
                    }
                }
                // A trailing CR may be the first half of the CRLF that ends the line, not
                // part of it: a line of exactly the limit must pass whatever the split.
                let open_cr = usize::from(self.buf.last() == Some(&b'\r'));
                if self.buf.len() - self.line_start - open_cr > max_line {
                    return Err(too_long);
                }
                self.scan_from = self.buf.len().saturating_sub(3);
                return Ok(None);
            };
            let end = head.body_start;
            let cl = head
                .content_length
                .ok_or_else(|| Error::MissingContentLength)?;
            if cl > self.limits.max_body_size as u64 {
                return Err(Error::BodyTooLarge {
                    size: cl,
                    limit: self.limits.max_body_size,
                });
            }
            // cl fits in usize: it is at most max_body_size.
            let total = end + cl as usize;
            if total > self.limits.max_message_size {
                return Err(Error::MessageTooLarge {
                    size: total,
                    limit: self.limits.max_message_size,
                });
            }
            self.scan_from = 0;
            self.line_start = 0;
            if self.buf.len() >= total {
                // Usually the body is here too: no detour through `pending`.
                let bytes = self.buf.split_to(total).freeze();
                return Ok(Some(Frame::Message(Message::from_head(bytes, head, total))));
            }
            self.pending = Some((head, total));
        }
        let total = self.pending.as_ref().map_or(0, |p| p.1);
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let Some((head, total)) = self.pending.take() else {
            return Ok(None);
        };
        let bytes = self.buf.split_to(total).freeze();
        Ok(Some(Frame::Message(Message::from_head(bytes, head, total))))
    }

    /// At a message boundary, drops the bare LFs and the CRs not followed by LF: they are
    /// neither a ping (`CRLFCRLF`) nor a pong (`CRLF`) nor part of a message (RFC 3261 §7.5:
    /// line ends before the start line are ignored). Kept, they would pile up to the header
    /// limit and, being only line ends, never start the header-read timer. A trailing CR
    /// stays: it may be the start of a CRLF.
    fn skip_stray_line_ends(&mut self) {
        if self.scan_from != 0 || self.line_start != 0 {
            return; // a header block has started
        }
        let mut stray = 0;
        while let Some(&b) = self.buf.get(stray) {
            match (b, self.buf.get(stray + 1)) {
                (b'\n', _) => stray += 1,
                (b'\r', Some(&next)) if next != b'\n' => stray += 1,
                _ => break,
            }
        }
        if stray > 0 {
            let _ = self.buf.split_to(stray);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const OPT: &[u8] = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 3\r\n\r\nabc";

    fn drain(d: &mut StreamDecoder) -> Vec<Frame> {
        let mut out = vec![];
        while let Some(f) = d.decode().expect("decodes") {
            out.push(f);
        }
        out
    }

    #[test]
    fn byte_by_byte() {
        let mut d = StreamDecoder::new(Limits::default());
        let mut got = vec![];
        let stream: Vec<u8> = [OPT, OPT].concat();
        for b in &stream {
            d.extend_from_slice(&[*b]);
            got.extend(drain(&mut d));
        }
        assert_eq!(got.len(), 2);
        for f in got {
            let Frame::Message(m) = f else {
                panic!("not a message")
            };
            assert_eq!(m.as_bytes(), &Bytes::from_static(OPT));
            assert_eq!(&m.body()[..], b"abc");
        }
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn keepalive() {
        let mut d = StreamDecoder::new(Limits::default());
        d.extend_from_slice(b"\r\n\r\n");
        assert_eq!(drain(&mut d), vec![Frame::Ping]);
        // A ping split in two is still one ping.
        d.extend_from_slice(b"\r\n");
        assert_eq!(drain(&mut d), vec![]);
        d.extend_from_slice(b"\r\n");
        assert_eq!(drain(&mut d), vec![Frame::Ping]);
        // After we pinged, a lone CRLF is the pong.
        d.ping_sent();
        d.extend_from_slice(b"\r\n");
        assert_eq!(drain(&mut d), vec![Frame::Pong]);
        // A stray CRLF before a message is reported and skipped (RFC 3261 §7.5).
        d.extend_from_slice(b"\r\n");
        d.extend_from_slice(OPT);
        let f = drain(&mut d);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0], Frame::Pong);
        assert!(matches!(f[1], Frame::Message(_)));
    }

    #[test]
    fn stray_line_ends_do_not_accumulate() {
        // Neither pings nor pongs nor a message: bare LFs around CRLFs, lone CRs. They must
        // not pile up (up to the header limit, with no header-read timer running).
        let mut d = StreamDecoder::new(Limits::default());
        for _ in 0..5000 {
            d.extend_from_slice(b"\n\r\n");
            let _ = drain(&mut d);
            assert!(d.buffered() <= 3, "{} bytes buffered", d.buffered());
        }
        let mut d = StreamDecoder::new(Limits::default());
        d.extend_from_slice(&b"\n\r\n".repeat(5000));
        let _ = drain(&mut d);
        assert!(d.buffered() <= 3, "{} bytes buffered", d.buffered());
        assert!(!d.is_mid_message());
        let mut d = StreamDecoder::new(Limits::default());
        for _ in 0..5000 {
            d.extend_from_slice(b"\r");
            assert_eq!(drain(&mut d), vec![]);
        }
        assert_eq!(d.buffered(), 1, "only a CR that may start a CRLF stays");
        // Keepalives and messages around them still decode (RFC 5626 §3.5.1).
        let mut d = StreamDecoder::new(Limits::default());
        d.extend_from_slice(b"\n\r\r\n\r\n\n\n");
        d.extend_from_slice(OPT);
        d.extend_from_slice(b"\r\r\n");
        let f = drain(&mut d);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0], Frame::Ping);
        assert!(matches!(f[1], Frame::Message(_)));
        assert_eq!(d.buffered(), 2, "a CRLF that may become a ping");
        d.extend_from_slice(b"\r\n");
        assert_eq!(drain(&mut d), vec![Frame::Ping]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn missing_content_length_is_an_error() {
        let mut d = StreamDecoder::new(Limits::default());
        d.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert!(matches!(d.decode(), Err(Error::MissingContentLength)));
        // Poisoned afterwards.
        assert!(d.decode().is_err());
    }

    #[test]
    fn header_limit_without_end() {
        let l = Limits::default()
            .with_max_header_size(100)
            .with_max_line_length(1000);
        let mut d = StreamDecoder::new(l);
        d.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\n");
        assert_eq!(d.decode().expect("ok"), None);
        assert!(d.is_reading_headers());
        d.extend_from_slice(&[b'a'; 100]);
        assert!(matches!(
            d.decode(),
            Err(Error::HeadersTooLarge { limit: 100 })
        ));
    }

    #[test]
    fn line_limit_without_end() {
        let l = Limits::default().with_max_line_length(50);
        let mut d = StreamDecoder::new(l);
        d.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\nX: ");
        assert_eq!(d.decode().expect("ok"), None);
        d.extend_from_slice(&[b'a'; 60]);
        assert!(matches!(d.decode(), Err(Error::LineTooLong { limit: 50 })));
    }

    #[test]
    fn line_of_exactly_the_limit_passes_whatever_the_split() {
        let l = Limits::default().with_max_line_length(50);
        let line = format!("X: {}", "a".repeat(47));
        let msg = format!("OPTIONS sip:x SIP/2.0\r\n{line}\r\nContent-Length: 0\r\n\r\n");
        let cut = msg.find(&line).expect("line") + line.len() + 1; // just after the CR
        let mut d = StreamDecoder::new(l.clone());
        d.extend_from_slice(&msg.as_bytes()[..cut]);
        assert_eq!(d.decode().expect("not too long"), None);
        d.extend_from_slice(&msg.as_bytes()[cut..]);
        assert!(matches!(d.decode(), Ok(Some(Frame::Message(_)))));
        // One byte more is too long, split there or not.
        let msg = msg.replace(&line, &format!("{line}a"));
        let mut d = StreamDecoder::new(l);
        d.extend_from_slice(&msg.as_bytes()[..cut + 1]);
        assert!(matches!(d.decode(), Err(Error::LineTooLong { limit: 50 })));
    }

    #[test]
    fn long_line_found_whether_or_not_it_is_the_last_read() {
        // The long line is complete but not the last one buffered; one read or many, the
        // stream fails the same way (before, only the last line of a read was measured).
        let l = Limits::default().with_max_line_length(50);
        let head = format!("OPTIONS sip:x SIP/2.0\r\nX: {}\r\nY: 1\r\n", "a".repeat(60));
        let mut whole = StreamDecoder::new(l.clone());
        whole.extend_from_slice(head.as_bytes());
        assert!(matches!(
            whole.decode(),
            Err(Error::LineTooLong { limit: 50 })
        ));
        let mut bytewise = StreamDecoder::new(l);
        let mut got = Ok(None);
        for b in head.as_bytes() {
            bytewise.extend_from_slice(&[*b]);
            got = bytewise.decode();
            if got.is_err() {
                break;
            }
        }
        assert!(matches!(got, Err(Error::LineTooLong { limit: 50 })));
        // A bare LF does not end a line.
        let l = Limits::default().with_max_line_length(20);
        let mut d = StreamDecoder::new(l);
        d.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\nX: 0123456789\n0123456789\r\nY:");
        assert!(matches!(d.decode(), Err(Error::LineTooLong { limit: 20 })));
    }

    #[test]
    fn body_limits() {
        let l = Limits::default().with_max_body_size(10);
        let mut d = StreamDecoder::new(l);
        d.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 11\r\n\r\n");
        assert!(matches!(
            d.decode(),
            Err(Error::BodyTooLarge {
                size: 11,
                limit: 10
            })
        ));
        let l = Limits::default().with_max_message_size(40);
        let mut d = StreamDecoder::new(l);
        d.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 11\r\n\r\n");
        assert!(matches!(d.decode(), Err(Error::MessageTooLarge { .. })));
        let mut d = StreamDecoder::new(Limits::default());
        d.extend_from_slice(
            b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\n",
        );
        assert!(matches!(d.decode(), Err(Error::BodyTooLarge { .. })));
    }

    #[test]
    fn waits_for_body_and_tracks_state() {
        let mut d = StreamDecoder::new(Limits::default());
        d.extend_from_slice(&OPT[..OPT.len() - 1]);
        assert_eq!(d.decode().expect("ok"), None);
        assert!(!d.is_reading_headers());
        assert!(d.is_mid_message());
        d.extend_from_slice(&OPT[OPT.len() - 1..]);
        assert!(matches!(d.decode().expect("ok"), Some(Frame::Message(_))));
        assert!(!d.is_mid_message());
    }
}
