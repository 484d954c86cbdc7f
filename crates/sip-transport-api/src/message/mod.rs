//! `Message`: one framed SIP message over `Bytes`, with an index of spans.
//!
//! This is a transport-level view, not a SIP grammar: it finds the start line, every header
//! (name and raw value, folded lines joined), and the body, and reads the few headers the
//! transport layer needs (Via, Call-ID, CSeq, Content-Length). It rejects only what cannot be
//! framed or routed. Parsing allocates one index vector; header values are never copied.

mod header;
mod via;

use bytes::Bytes;
use memchr::memmem;

pub use header::{Header, compact_of, expand_compact, names_match};
use header::{HeaderId, classify};
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
    pub(crate) value: Span,
    pub(crate) id: HeaderId,
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
        let head_end = find_head_end(&buf).ok_or(Error::Malformed {
            reason: "no empty line after the header block",
        })?;
        let head = parse_head(&buf[..head_end], limits)?;
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
            value: self.slice(e.value),
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
            .map(|e| self.slice(e.value))
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
        let idx = self.head.top_via.ok_or(Error::Malformed {
            reason: "no Via header",
        })?;
        let e = self.head.headers[usize::from(idx)];
        Via::parse(&self.buf, e.value.start as usize, e.value.end as usize)
    }

    /// Every Via value in order, across all Via headers (comma-separated ones split). Values that
    /// do not parse are yielded as errors.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>>> + '_ {
        self.head
            .headers
            .iter()
            .filter(|e| e.id == HeaderId::Via)
            .flat_map(move |e| {
                comma_spans(&self.buf, e.value.range())
                    .map(move |(s, end)| Via::parse(&self.buf, s, end))
            })
    }

    /// Replaces byte ranges (sorted, non-overlapping `(start, end, replacement)`) and returns the
    /// new message with the index shifted, without parsing again.
    pub(crate) fn splice(&self, edits: &[(usize, usize, &[u8])]) -> Message {
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
        let mut head = self.head.clone();
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
        let body_end = map(self.body_end);
        Message {
            buf: Bytes::from(out),
            head,
            body_end,
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

/// Offset just past the `\r\n\r\n` that ends the header block, if present.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    memmem::find(buf, b"\r\n\r\n").map(|p| p + 4)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Parses a header block: `buf` runs from the start line through the empty line (`\r\n\r\n`).
pub(crate) fn parse_head(buf: &[u8], limits: &Limits) -> Result<Head> {
    let body_start = buf.len();
    if body_start < 4 || &buf[body_start - 4..] != b"\r\n\r\n" {
        return Err(Error::Malformed {
            reason: "header block does not end with an empty line",
        });
    }
    if body_start > limits.max_header_size {
        return Err(Error::HeadersTooLarge {
            limit: limits.max_header_size,
        });
    }
    let block = &buf[..body_start - 2]; // every line, each ending in CRLF
    let finder = memmem::Finder::new(b"\r\n");
    let mut lines = finder.find_iter(block);
    let first_end = lines.next().ok_or(Error::Malformed {
        reason: "empty message",
    })?;
    if first_end > limits.max_line_length {
        return Err(Error::LineTooLong {
            limit: limits.max_line_length,
        });
    }
    let start = parse_start_line(&buf[..first_end])?;

    // Rough header count for one allocation: CRLFs are about one per header.
    let mut headers: Vec<HeaderEntry> = Vec::with_capacity(16);
    let mut line_start = first_end + 2;
    let mut content_length: Option<u64> = None;
    let mut top_via = None;
    for line_end in lines {
        if line_end - line_start > limits.max_line_length {
            return Err(Error::LineTooLong {
                limit: limits.max_line_length,
            });
        }
        let line = &buf[line_start..line_end];
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // RFC 3261 §7.3.1: a continuation line extends the previous value.
            let last = headers.last_mut().ok_or(Error::Malformed {
                reason: "continuation line before the first header",
            })?;
            if line.iter().any(|b| !matches!(b, b' ' | b'\t')) {
                let trimmed = trim_end(buf, line_start, line_end);
                if last.value.start == last.value.end {
                    let lead = line
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t'))
                        .count();
                    last.value.start = (line_start + lead) as u32;
                }
                last.value.end = trimmed as u32;
            }
        } else {
            let colon = memchr::memchr(b':', line).ok_or(Error::Malformed {
                reason: "header line without a colon",
            })?;
            let name_end = line_start + trim_end_ws(&line[..colon]);
            let name = &buf[line_start..name_end];
            if name.is_empty() || !name.iter().all(|b| is_token_byte(*b)) {
                return Err(Error::Malformed {
                    reason: "invalid header name",
                });
            }
            let mut vs = line_start + colon + 1;
            while vs < line_end && matches!(buf[vs], b' ' | b'\t') {
                vs += 1;
            }
            let ve = trim_end(buf, vs, line_end);
            let id = classify(name);
            if id == HeaderId::Via && top_via.is_none() {
                top_via = Some(u16::try_from(headers.len()).map_err(|_| Error::Malformed {
                    reason: "too many headers",
                })?);
            }
            headers.push(HeaderEntry {
                name: Span::new(line_start, name_end),
                value: Span::new(vs, ve),
                id,
            });
        }
        line_start = line_end + 2;
    }
    if headers.len() > usize::from(u16::MAX) {
        return Err(Error::Malformed {
            reason: "too many headers",
        });
    }
    for h in headers.iter().filter(|h| h.id == HeaderId::ContentLength) {
        let v = parse_content_length(&buf[h.value.range()])?;
        if let Some(first) = content_length {
            return Err(Error::DuplicateContentLength { first, second: v });
        }
        content_length = Some(v);
    }
    Ok(Head {
        start,
        headers,
        body_start,
        content_length,
        top_via,
    })
}

fn trim_end_ws(s: &[u8]) -> usize {
    let mut e = s.len();
    while e > 0 && matches!(s[e - 1], b' ' | b'\t') {
        e -= 1;
    }
    e
}

fn trim_end(buf: &[u8], start: usize, end: usize) -> usize {
    start + trim_end_ws(&buf[start..end])
}

fn parse_content_length(v: &[u8]) -> Result<u64> {
    let invalid = || Error::InvalidContentLength {
        value: String::from_utf8_lossy(&v[..v.len().min(64)]).into_owned(),
    };
    // Folded whitespace may surround the number.
    let t: &[u8] = {
        let s = v
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(v.len());
        let e = v
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(s, |p| p + 1);
        &v[s..e]
    };
    if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    // RFC 4475 §3.1.2.3: never let a hostile value wrap. An overlarge number saturates, so
    // the body limit (not a wrapped small value) decides.
    Ok(t.iter().fold(0u64, |a, d| {
        a.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn parse_start_line(line: &[u8]) -> Result<StartLine> {
    const BAD: Error = Error::Malformed {
        reason: "invalid start line",
    };
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2)
        let sp = memchr::memchr(b' ', line).ok_or(BAD)?;
        let rest = &line[sp + 1..];
        let code_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if code_len != 3 || (rest.len() > 3 && rest[3] != b' ') {
            return Err(Error::Malformed {
                reason: "status code is not three digits",
            });
        }
        let code = rest[..3]
            .iter()
            .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(Error::Malformed {
                reason: "status code out of range",
            });
        }
        let reason_start = (sp + 1 + 4).min(line.len());
        return Ok(StartLine::Response {
            version: Span::new(0, sp),
            code,
            reason: Span::new(reason_start, line.len()),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §7.1). Extra spaces are
    // tolerated (RFC 4475 §3.1.2.9/10); whether the URI is acceptable is for the application.
    let m_end = memchr::memchr(b' ', line).ok_or(BAD)?;
    if m_end == 0 || !line[..m_end].iter().all(|b| is_token_byte(*b)) {
        return Err(Error::Malformed {
            reason: "invalid request method",
        });
    }
    let end = trim_end_ws(line);
    let v_start = memchr::memrchr(b' ', &line[..end]).ok_or(BAD)? + 1;
    if v_start <= m_end + 1 {
        return Err(Error::Malformed {
            reason: "request line has no SIP version",
        });
    }
    let version = &line[v_start..end];
    if version.len() < 5 || !version[..4].eq_ignore_ascii_case(b"SIP/") {
        return Err(Error::Malformed {
            reason: "request line has no SIP version",
        });
    }
    let mut us = m_end + 1;
    while line[us] == b' ' {
        us += 1;
    }
    let ue = us + trim_end_ws(&line[us..v_start]);
    if ue <= us || std::str::from_utf8(&line[us..ue]).is_err() {
        return Err(Error::Malformed {
            reason: "invalid Request-URI",
        });
    }
    Ok(StartLine::Request {
        method: Span::new(0, m_end),
        uri: Span::new(us, ue),
        version: Span::new(v_start, end),
    })
}

#[cfg(test)]
mod tests;
