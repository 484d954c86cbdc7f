//! `Message`: one framed SIP message over `Bytes`, with an index of spans.
//!
//! This is a transport-level view, not a SIP grammar: it finds the start line, every header
//! (name and raw value, folded lines joined), and the body, and reads the few headers the
//! transport layer needs (Via, Call-ID, CSeq, Content-Length). It rejects only what cannot be
//! framed or routed. Parsing allocates one index vector; header values are never copied.

mod build;
mod header;
mod parse;
mod scan;
mod via;

use bytes::Bytes;

pub use header::{Header, compact_of, expand_compact, names_match};
use header::{HeaderId, classify};
pub(crate) use parse::{find_head_end, parse_head_prefix};
pub use via::{Via, parse_ip_host};

use crate::{Error, Limits, Result};

/// A byte range inside the message buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        // Messages are bounded by `Limits` far below 4 GiB; the codec checks sizes first.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    pub(crate) fn shifted(self, f: &impl Fn(usize) -> usize) -> Span {
        Span::new(f(self.start as usize), f(self.end as usize))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderEntry {
    pub(crate) name: Span,
    /// The raw value: from just after the colon to the end of the header's last line, with
    /// the whitespace (and folds) around the value. [`HeaderEntry::value`] trims it.
    pub(crate) value: Span,
    pub(crate) id: HeaderId,
}

impl HeaderEntry {
    /// The value without the whitespace around it. The parser leaves this trim to the reader,
    /// since most values of a message are never read.
    #[inline]
    pub(crate) fn value(&self, buf: &[u8]) -> Span {
        trim_lws(buf, self.value)
    }
}

/// `s` without the whitespace around the value: SP and HTAB, and folds (RFC 3261 LWS). In a
/// raw value every CRLF is a fold, since a CRLF inside a line would have ended it; a CR or LF
/// on its own is part of the value and stays. The usual `": value"` shape takes the fast path.
#[inline]
fn trim_lws(buf: &[u8], s: Span) -> Span {
    let ws = |b: u8| matches!(b, b' ' | b'\t');
    let (mut start, mut end) = (s.start as usize, s.end as usize);
    let Some(v) = buf.get(start..end) else {
        return s;
    };
    let plain = |b: u8| !matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    // One space, then the value, which ends the line: only the space goes.
    if let [b' ', second, .., last] = v
        && plain(*second)
        && plain(*last)
    {
        return Span::new(start + 1, end);
    }
    loop {
        while start < end && ws(buf[start]) {
            start += 1;
        }
        // A fold: CRLF, then whitespace.
        match buf.get(start..end) {
            Some([b'\r', b'\n', b' ' | b'\t', ..]) => start += 2,
            _ => break,
        }
    }
    loop {
        while end > start && ws(buf[end - 1]) {
            end -= 1;
        }
        // A whitespace-only line folded on: its CRLF goes too.
        match buf.get(start..end) {
            Some([.., b'\r', b'\n']) => end -= 2,
            _ => break,
        }
    }
    Span::new(start, end)
}

/// What the start line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request {
        method: Span,
        uri: Span,
        version: Span,
    },
    Response {
        version: Span,
        code: u16,
        reason: Span,
    },
}

/// The parsed head of a message: everything but the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<HeaderEntry>,
    /// Offset of the first body byte (just after the empty line).
    pub(crate) body_start: usize,
    pub(crate) content_length: Option<u64>,
    pub(crate) top_via: Option<u16>,
}

/// A framed SIP request or response.
///
/// Cloning is cheap for the bytes (reference counted) and copies the small index.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    buf: Bytes,
    head: Head,
    body_end: usize,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.buf.split(|b| *b == b'\r').next().unwrap_or_default();
        f.debug_struct("Message")
            .field("start_line", &String::from_utf8_lossy(first))
            .field("len", &self.buf.len())
            .finish()
    }
}

/// A request's CSeq: sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (RFC 3261 §8.1.1.5: less than 2**31; any u32 is accepted here).
    pub seq: u32,
    /// The method.
    pub method: &'a str,
}

impl Message {
    /// Parses one complete message with default limits. If Content-Length is present the body
    /// must be exactly that long; without it, everything after the header block is the body.
    /// For bytes off the wire use [`crate::StreamDecoder`] or [`crate::decode_datagram`].
    pub fn parse(buf: Bytes) -> Result<Message> {
        Self::parse_with(buf, &Limits::default())
    }

    /// Like [`Message::parse`] with explicit limits.
    pub fn parse_with(buf: Bytes, limits: &Limits) -> Result<Message> {
        if buf.len() > limits.max_message_size {
            return Err(Error::MessageTooLarge {
                size: buf.len(),
                limit: limits.max_message_size,
            });
        }
        let head = parse_head_prefix(&buf, limits)?.ok_or_else(|| Error::Malformed {
            reason: "no empty line after the header block",
        })?;
        let body_len = buf.len() - head.body_start;
        if let Some(cl) = head.content_length {
            if cl > limits.max_body_size as u64 {
                return Err(Error::BodyTooLarge {
                    size: cl,
                    limit: limits.max_body_size,
                });
            }
            if cl > body_len as u64 {
                return Err(Error::Truncated {
                    expected: usize::try_from(cl).unwrap_or(usize::MAX),
                    actual: body_len,
                });
            }
            if cl < body_len as u64 {
                return Err(Error::Malformed {
                    reason: "bytes after the Content-Length body",
                });
            }
        } else if body_len > limits.max_body_size {
            return Err(Error::BodyTooLarge {
                size: body_len as u64,
                limit: limits.max_body_size,
            });
        }
        let end = buf.len();
        Ok(Message::from_head(buf, head, end))
    }

    pub(crate) fn from_head(buf: Bytes, head: Head, body_end: usize) -> Message {
        Message {
            buf,
            head,
            body_end,
        }
    }

    fn slice(&self, s: Span) -> &[u8] {
        &self.buf[s.range()]
    }

    fn text(&self, s: Span) -> &str {
        std::str::from_utf8(self.slice(s)).unwrap_or("")
    }

    /// The whole message as sent on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// Consumes the message, returning its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.buf
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Always false: a message has at least a start line.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.head.start, StartLine::Request { .. })
    }

    /// True for responses.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The request method (`INVITE`, ...), for requests.
    pub fn method(&self) -> Option<&str> {
        match self.head.start {
            StartLine::Request { method, .. } => Some(self.text(method)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as written, for requests.
    pub fn request_uri(&self) -> Option<&str> {
        match self.head.start {
            StartLine::Request { uri, .. } => Some(self.text(uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The SIP version token of the start line (`SIP/2.0`; RFC 4475 has `SIP/7.0`).
    pub fn version(&self) -> &str {
        match self.head.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => {
                self.text(version)
            }
        }
    }

    /// The status code, for responses.
    pub fn status_code(&self) -> Option<u16> {
        match self.head.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase, for responses (may be empty, may be non-ASCII UTF-8).
    pub fn reason_phrase(&self) -> Option<&str> {
        match self.head.start {
            StartLine::Response { reason, .. } => {
                Some(std::str::from_utf8(self.slice(reason)).unwrap_or(""))
            }
            StartLine::Request { .. } => None,
        }
    }

    /// Iterates every header in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.head.headers.iter().map(|e| self.entry(e))
    }

    fn entry(&self, e: &HeaderEntry) -> Header<'_> {
        Header {
            name: self.slice(e.name),
            value: self.slice(e.value(&self.buf)),
        }
    }

    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.head.headers.len()
    }

    /// The first header with this name (case-insensitive, compact forms understood).
    pub fn header(&self, name: &str) -> Option<Header<'_>> {
        let id = classify(name.as_bytes());
        self.head
            .headers
            .iter()
            .find(|e| self.entry_is(e, id, name))
            .map(|e| self.entry(e))
    }

    fn entry_is(&self, e: &HeaderEntry, id: HeaderId, name: &str) -> bool {
        if id == HeaderId::Other {
            e.id == HeaderId::Other && header::names_match(self.slice(e.name), name.as_bytes())
        } else {
            e.id == id
        }
    }

    /// Every header with this name, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Header<'a>> + 'a {
        let id = classify(name.as_bytes());
        self.head
            .headers
            .iter()
            .filter(move |e| self.entry_is(e, id, name))
            .map(|e| self.entry(e))
    }

    fn first_value(&self, id: HeaderId) -> Option<&[u8]> {
        self.head
            .headers
            .iter()
            .find(|e| e.id == id)
            .map(|e| self.slice(e.value(&self.buf)))
    }

    /// The Content-Length value, if the header is present.
    pub fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    /// The body (a zero-copy slice of the message bytes).
    pub fn body(&self) -> Bytes {
        self.buf.slice(self.head.body_start..self.body_end)
    }

    /// Offset of the body in [`Message::as_bytes`].
    pub fn body_offset(&self) -> usize {
        self.head.body_start
    }

    /// The first Call-ID value.
    pub fn call_id(&self) -> Option<&str> {
        self.first_value(HeaderId::CallId)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first From value (raw).
    pub fn from_header(&self) -> Option<&[u8]> {
        self.first_value(HeaderId::From)
    }

    /// The first To value (raw).
    pub fn to_header(&self) -> Option<&[u8]> {
        self.first_value(HeaderId::To)
    }

    /// The CSeq, if present and well formed (`None` for overlarge numbers, RFC 4475 §3.1.2.4).
    pub fn cseq(&self) -> Option<CSeq<'_>> {
        let v = std::str::from_utf8(self.first_value(HeaderId::CSeq)?).ok()?;
        let mut it = v.split_ascii_whitespace();
        let seq = it.next()?;
        if seq.len() > 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq = u32::try_from(seq.parse::<u64>().ok()?).ok()?;
        let method = it.next()?;
        it.next().is_none().then_some(CSeq { seq, method })
    }

    /// The first Via value (the top Via), parsed.
    pub fn top_via(&self) -> Result<Via<'_>> {
        let idx = self.head.top_via.ok_or_else(|| Error::Malformed {
            reason: "no Via header",
        })?;
        let v = self.head.headers[usize::from(idx)].value(&self.buf);
        Via::parse(&self.buf, v.start as usize, v.end as usize)
    }

    /// Every Via value in order, across all Via headers (comma-separated ones split). Values that
    /// do not parse are yielded as errors.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>>> + '_ {
        self.head
            .headers
            .iter()
            .filter(|e| e.id == HeaderId::Via)
            .flat_map(move |e| {
                comma_spans(&self.buf, e.value(&self.buf).range())
                    .map(move |(s, end)| Via::parse(&self.buf, s, end))
            })
    }

    /// Replaces byte ranges (sorted, non-overlapping `(start, end, replacement)`) and returns the
    /// new message with the index shifted in place, without parsing again.
    pub(crate) fn splice_owned(self, edits: &[(usize, usize, &[u8])]) -> Message {
        let added: usize = edits.iter().map(|e| e.2.len()).sum();
        let mut out = Vec::with_capacity(self.buf.len() + added);
        let mut pos = 0;
        for &(s, e, r) in edits {
            out.extend_from_slice(&self.buf[pos..s]);
            out.extend_from_slice(r);
            pos = e;
        }
        out.extend_from_slice(&self.buf[pos..]);
        let map = |o: usize| {
            let mut n = o as isize;
            for &(s, e, r) in edits {
                if e <= o {
                    n += r.len() as isize - (e - s) as isize;
                }
            }
            n as usize
        };
        let shift = |s: Span| s.shifted(&map);
        let Message {
            mut head, body_end, ..
        } = self;
        head.start = match head.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => StartLine::Request {
                method: shift(method),
                uri: shift(uri),
                version: shift(version),
            },
            StartLine::Response {
                version,
                code,
                reason,
            } => StartLine::Response {
                version: shift(version),
                code,
                reason: shift(reason),
            },
        };
        for h in &mut head.headers {
            // A value that ends exactly where text is inserted grows to include it.
            h.name = shift(h.name);
            h.value = shift(h.value);
        }
        head.body_start = map(head.body_start);
        Message {
            buf: Bytes::from(out),
            head,
            body_end: map(body_end),
        }
    }
}

/// Splits a header value into comma-separated element spans, outside quotes and brackets.
fn comma_spans(
    buf: &[u8],
    range: std::ops::Range<usize>,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    let end = range.end;
    let mut pos = range.start;
    let mut done = range.start >= end;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = pos;
        let mut quoted = false;
        let mut bracket = false;
        while pos < end {
            match buf[pos] {
                b'\\' if quoted => pos += 1,
                b'"' => quoted = !quoted,
                b'[' if !quoted => bracket = true,
                b']' if !quoted => bracket = false,
                b',' if !quoted && !bracket => {
                    let piece = (start, pos);
                    pos += 1;
                    return Some(piece);
                }
                _ => {}
            }
            pos += 1;
        }
        done = true;
        Some((start, end.min(buf.len())))
    })
}

#[cfg(test)]
mod tests;
