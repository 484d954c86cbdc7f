//! The header-block parser behind every framing path: finds the end of the header block and
//! builds the `Head` index (start line, header spans, Content-Length, top Via) in one pass.
//!
//! Hot code: every received message goes through it once. It walks each line once, allocates
//! one vector, and leaves UTF-8 checks, trimming values and parsing them to the accessors.
//! Not a SIP grammar: it rejects only what cannot be framed or indexed.

use memchr::memmem;

use super::header::{HeaderId, classify, classify_words};
use super::scan::{LineEnds, LineStart, space_mask16};
use super::{Head, HeaderEntry, Span, StartLine};
use crate::{Error, Limits, Result};

/// Offset just past the `\r\n\r\n` that ends the header block, if present.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    // Built once: constructing a searcher costs about as much as searching a whole head.
    static FINDER: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b"\r\n\r\n"));
    FINDER.find(buf).map(|p| p + 4)
}

/// RFC 3261 §25.1 `token` characters.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// True when `s` is a non-empty run of token bytes. Branch-free over the bytes: names are
/// short and their lengths vary, so a loop that exits early mispredicts more than it saves.
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().fold(true, |ok, b| ok & TOKEN[usize::from(*b)])
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// Finds and parses the header block at the start of `buf` in one pass: the start line, then
/// header lines up to the first empty one. `Ok(None)` when `buf` holds no complete header
/// block (no `\r\n\r\n`); what that means (wait, or malformed) is the caller's call. Errors
/// are only reported for a complete block, the one of the earliest line first, except that a
/// block over `max_header_size` is always `HeadersTooLarge`.
pub(crate) fn parse_head_prefix(buf: &[u8], limits: &Limits) -> Result<Option<Head>> {
    // Lines are looked for only where a block within the limit can have them: a head whose
    // empty line ends past `max_header_size` is too large, so no line past it matters.
    let window = buf.len().min(limits.max_header_size);
    // No empty line inside the window: wait for more, or, when the buffer goes past the
    // window, a block that is too large if it is complete.
    let ran_out = || {
        if window < buf.len() {
            incomplete_or(buf, limits, headers_too_large(limits))
        } else {
            Ok(None)
        }
    };
    let mut lines = LineEnds::new(&buf[..window]);
    let Some(first_end) = lines.next_line_end() else {
        return ran_out();
    };
    if first_end > limits.max_line_length {
        return incomplete_or(buf, limits, line_too_long(limits));
    }
    let start = match parse_start_line(&buf[..first_end]) {
        Ok(s) => s,
        Err(e) => return incomplete_or(buf, limits, e),
    };
    // One allocation for typical messages: a header line is rarely shorter than ~30 bytes.
    let mut headers: Vec<HeaderEntry> = Vec::with_capacity(buf.len().min(8192) / 32 + 8);
    let mut top_via = None;
    // The Content-Length headers seen: how many, and the index of the last.
    let mut cl_count = 0usize;
    let mut cl_at = 0usize;
    let mut line_start = first_end + 2;
    loop {
        let Some(end) = lines.next_line_end() else {
            return ran_out();
        };
        if end == line_start {
            break; // the empty line
        }
        if end - line_start > limits.max_line_length {
            return incomplete_or(buf, limits, line_too_long(limits));
        }
        match header_line(buf, line_start, end, &mut headers) {
            Ok(HeaderId::Via) if top_via.is_none() => top_via = Some(headers.len() - 1),
            Ok(HeaderId::ContentLength) => {
                cl_count += 1;
                cl_at = headers.len() - 1;
            }
            Ok(_) => {}
            Err(e) => return incomplete_or(buf, limits, e),
        }
        line_start = end + 2;
    }
    let body_start = line_start + 2;
    if body_start > limits.max_header_size {
        return Err(headers_too_large(limits));
    }
    if headers.len() > usize::from(u16::MAX) {
        return Err(too_many_headers());
    }
    // Below the header count, so it fits.
    let top_via = top_via.map(|i| i as u16);
    let content_length = match cl_count {
        0 => None,
        1 => Some(parse_content_length(
            &buf[headers[cl_at].value(buf).range()],
        )?),
        _ => return Err(duplicate_content_length(buf, &headers)),
    };
    Ok(Some(Head {
        start,
        headers,
        body_start,
        content_length,
        top_via,
    }))
}

/// The error for a block with more than one Content-Length: the first invalid value, or the
/// first two values.
#[cold]
fn duplicate_content_length(buf: &[u8], headers: &[HeaderEntry]) -> Error {
    let mut values = headers
        .iter()
        .filter(|h| h.id == HeaderId::ContentLength)
        .map(|h| parse_content_length(&buf[h.value(buf).range()]));
    match (values.next(), values.next()) {
        (Some(Ok(first)), Some(Ok(second))) => Error::DuplicateContentLength { first, second },
        (Some(Err(e)), _) | (_, Some(Err(e))) => e,
        _ => Error::Malformed {
            reason: "duplicate Content-Length",
        },
    }
}

/// An error found in a header block counts only once the block is complete; a block over the
/// header limit is that, whatever else is wrong with it.
#[cold]
fn incomplete_or(buf: &[u8], limits: &Limits, e: Error) -> Result<Option<Head>> {
    match find_head_end(buf) {
        None => Ok(None),
        Some(end) if end > limits.max_header_size => Err(headers_too_large(limits)),
        Some(_) => Err(e),
    }
}

#[cold]
fn headers_too_large(limits: &Limits) -> Error {
    Error::HeadersTooLarge {
        limit: limits.max_header_size,
    }
}

#[cold]
fn line_too_long(limits: &Limits) -> Error {
    Error::LineTooLong {
        limit: limits.max_line_length,
    }
}

/// Indexes the header line `buf[line_start..line_end]` (without its CRLF, not empty) and
/// returns the id of the header it adds (`Other` for a continuation line, which adds none).
#[inline]
fn header_line(
    buf: &[u8],
    line_start: usize,
    line_end: usize,
    headers: &mut Vec<HeaderEntry>,
) -> Result<HeaderId> {
    let len = line_end - line_start;
    let m = LineStart::at(buf, line_start);
    if m.ws & 1 != 0 {
        // RFC 3261 §7.3.1: a continuation line extends the previous value.
        return continuation(line_end, headers).map(|()| HeaderId::Other);
    }
    // header-name *(SP / HTAB) ":" (RFC 3261 §7.3.1): the name ends at the first colon.
    let c = m.colon.trailing_zeros() as usize; // 32 when the 16 bytes hold no colon
    let (name_len, colon, id) = if c < 16 && c < len && c > 0 && (m.ws >> (c - 1)) & 1 == 0 {
        // The usual case: a name of up to 15 bytes right before the colon. `classify_words`
        // recognises only exact token spellings, so only other names need the check.
        (c, c, classify_words(m.words, c))
    } else {
        unusual_name(&buf[line_start..line_end], m)?
    };
    if id == HeaderId::Other && !is_token(&buf[line_start..line_start + name_len]) {
        return Err(invalid_name());
    }
    // The raw value, up to the line end; readers trim it (`HeaderEntry::value`).
    let vs = line_start + colon + 1;
    let ve = line_end;
    headers.push(HeaderEntry {
        name: Span::new(line_start, line_start + name_len),
        value: Span::new(vs, ve),
        id,
    });
    Ok(id)
}

/// Name length, colon offset and id for a line the fast path does not take: whitespace
/// before the colon, an empty name, or no colon in the first 16 bytes.
#[cold]
fn unusual_name(line: &[u8], m: LineStart) -> Result<(usize, usize, HeaderId)> {
    let (name_len, colon) = if m.colon != 0 {
        let c = m.colon.trailing_zeros() as usize;
        if c >= line.len() {
            return Err(no_colon());
        }
        (trim_end_ws(&line[..c]), c)
    } else {
        long_name(line)?
    };
    Ok((name_len, colon, classify(&line[..name_len])))
}

/// Name length and colon offset of a line whose first 16 bytes hold no colon.
#[cold]
fn long_name(line: &[u8]) -> Result<(usize, usize)> {
    let colon = memchr::memchr(b':', line).ok_or_else(no_colon)?;
    let name = trim_end_ws(&line[..colon]);
    Ok((name, colon))
}

fn continuation(line_end: usize, headers: &mut [HeaderEntry]) -> Result<()> {
    let Some(last) = headers.last_mut() else {
        return Err(Error::Malformed {
            reason: "continuation line before the first header",
        });
    };
    // The raw value runs on to the end of this line; the reader's trim drops the fold when
    // it leads or trails.
    last.value.end = line_end as u32;
    Ok(())
}

#[cold]
fn invalid_name() -> Error {
    Error::Malformed {
        reason: "invalid header name",
    }
}

#[cold]
fn no_colon() -> Error {
    Error::Malformed {
        reason: "header line without a colon",
    }
}

#[cold]
fn too_many_headers() -> Error {
    Error::Malformed {
        reason: "too many headers",
    }
}

fn trim_end_ws(s: &[u8]) -> usize {
    let mut e = s.len();
    while e > 0 && matches!(s[e - 1], b' ' | b'\t') {
        e -= 1;
    }
    e
}

#[inline]
fn parse_content_length(v: &[u8]) -> Result<u64> {
    // The usual value: up to 9 digits (no overflow), nothing around them.
    if (1..=9).contains(&v.len()) {
        let mut n = 0u64;
        let mut digits = true;
        for d in v {
            digits &= d.is_ascii_digit();
            n = n * 10 + u64::from(d.wrapping_sub(b'0'));
        }
        if digits {
            return Ok(n);
        }
    }
    parse_content_length_general(v)
}

#[cold]
#[inline(never)]
fn parse_content_length_general(v: &[u8]) -> Result<u64> {
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

/// The first space in `line`: it ends a method or a SIP version, a few bytes in, where a
/// plain loop beats a vectorised search's set-up.
#[inline]
fn first_space(line: &[u8]) -> Option<usize> {
    line.iter().position(|b| *b == b' ')
}

/// True when every byte of `w` is an ASCII capital letter (a subset of `token`).
#[inline]
fn all_capitals(w: u64) -> bool {
    const H: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Per byte, with the top bit set aside so nothing borrows across bytes: the top bit of
    // `ge` is set iff the byte is at least 'A', of `le` iff it is at most 'Z'.
    let ge = (w | H) - ONES * u64::from(b'A');
    let le = ((ONES * u64::from(b'Z')) | H) - (w & !H);
    ge & le & !w & H == H
}

/// The start line as almost every message writes it: `METHOD SP URI SP SIP/2.0` with a
/// capital-letter method of up to 15 bytes and single spaces, or `SIP/2.0 SP ddd SP reason`.
/// `None` sends anything else (and anything invalid) to [`parse_start_line`]'s general path.
#[inline]
fn start_line_fast(line: &[u8]) -> Option<StartLine> {
    const SIP_2_0_SP: u64 = u64::from_le_bytes(*b"SIP/2.0 ");
    const SP_SIP_2_0: u64 = u64::from_le_bytes(*b" SIP/2.0");
    let chunk = line.first_chunk::<16>()?;
    let [lo, hi] = super::header::words_of(chunk);
    if lo == SIP_2_0_SP {
        let digits = &line[8..11];
        if !digits.iter().all(u8::is_ascii_digit) || line.get(11).is_some_and(|b| *b != b' ') {
            return None;
        }
        let code = digits
            .iter()
            .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
        return (100..=699).contains(&code).then(|| StartLine::Response {
            version: Span::new(0, 7),
            code,
            reason: Span::new(12.min(line.len()), line.len()),
        });
    }
    let sp = space_mask16(chunk).trailing_zeros() as usize;
    // The URI starts right after the one space (a line may end at the space).
    if sp == 0 || sp >= 16 || line.get(sp + 1).is_none_or(|b| *b == b' ') {
        return None;
    }
    // The method's bytes, the rest of the 16 filled with capitals.
    let fill = |w: u64, n: usize| match n {
        0 => u64::from_le_bytes(*b"AAAAAAAA"),
        8.. => w,
        n => {
            let keep = (1u64 << (8 * n)) - 1;
            w & keep | u64::from_le_bytes(*b"AAAAAAAA") & !keep
        }
    };
    let end = line.len();
    let v_start = end.checked_sub(8)?;
    let method_ok = all_capitals(fill(lo, sp)) && (sp <= 8 || all_capitals(fill(hi, sp - 8)));
    if !method_ok
        || line.last_chunk::<8>().map(|w| u64::from_le_bytes(*w)) != Some(SP_SIP_2_0)
        || v_start <= sp + 1
        || is_ws(line[v_start - 1])
    {
        return None;
    }
    let uri = &line[sp + 1..v_start];
    if !(uri.is_ascii() || std::str::from_utf8(uri).is_ok()) {
        return None;
    }
    Some(StartLine::Request {
        method: Span::new(0, sp),
        uri: Span::new(sp + 1, v_start),
        version: Span::new(v_start + 1, end),
    })
}

fn parse_start_line(line: &[u8]) -> Result<StartLine> {
    match start_line_fast(line) {
        Some(start) => Ok(start),
        None => parse_start_line_general(line),
    }
}

fn parse_start_line_general(line: &[u8]) -> Result<StartLine> {
    const BAD: Error = Error::Malformed {
        reason: "invalid start line",
    };
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2)
        let Some(sp) = first_space(line) else {
            return Err(BAD);
        };
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
    let Some(m_end) = first_space(line) else {
        return Err(BAD);
    };
    if !is_token(&line[..m_end]) {
        return Err(Error::Malformed {
            reason: "invalid request method",
        });
    }
    let end = trim_end_ws(line);
    // Almost always " SIP/2.0" ends the line: no search then.
    let v_start = if line[..end].ends_with(b" SIP/2.0") {
        end - 7
    } else {
        let Some(v) = memchr::memrchr(b' ', &line[..end]).map(|p| p + 1) else {
            return Err(BAD);
        };
        v
    };
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
    let uri = &line[us..ue];
    if ue <= us || !(uri.is_ascii() || std::str::from_utf8(uri).is_ok()) {
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
mod tests {
    use super::*;

    /// The fast start-line path either declines or says exactly what the general path says,
    /// for common lines and for every one-byte change to them.
    #[test]
    fn fast_start_line_agrees_with_the_general_path() {
        let lines: &[&[u8]] = &[
            b"INVITE sip:bob@biloxi.example.com SIP/2.0",
            b"SUBSCRIBE sip:x@example.com SIP/2.0",
            b"REGISTER sip:registrar.example.com SIP/2.0",
            b"ABCDEFGHIJKLMNO sip:x@example.com SIP/2.0",
            b"OPTIONS sip:\xc3\xa9@example.com SIP/2.0",
            b"SIP/2.0 200 OK and some",
            b"SIP/2.0 180 Ringing",
            b"SIP/2.0 699 x\xc3\xa9x 12345",
            b"SIP/2.0 100 0123456",
            // Sixteen bytes with the first space last (fuzzing found the index past it).
            b"ABCDEFGHIJKLMNO ",
            b".&..)........S \r",
        ];
        let bytes = [
            b' ', b'\t', b'a', b'A', b'Z', b'[', b'@', b'0', b'9', b'/', b':', 0x80, 0xc3, 0xff,
        ];
        let mut checked = 0;
        let mut fast = 0;
        for line in lines {
            let mut variants = vec![line.to_vec()];
            for i in 0..line.len() {
                for b in bytes {
                    let mut v = line.to_vec();
                    v[i] = b;
                    variants.push(v);
                }
                variants.push([&line[..i], &line[i + 1..]].concat());
            }
            for v in variants {
                let general = parse_start_line_general(&v).ok();
                if let Some(f) = start_line_fast(&v) {
                    assert_eq!(Some(f), general, "{:?}", String::from_utf8_lossy(&v));
                    fast += 1;
                }
                checked += 1;
            }
        }
        // The fast path must take the ordinary lines, or this test proves nothing.
        assert!(lines[..9].iter().all(|l| start_line_fast(l).is_some()));
        assert!(fast > checked / 4, "{fast} of {checked}");
    }

    #[test]
    fn content_length_fast_path_agrees() {
        for v in [
            "0",
            "7",
            "123456789",
            "1234567890",
            "99999999999999999999999",
            " 12",
            "12 ",
            "1 2",
            "+1",
            "-1",
            "0x1",
            "",
            " ",
            "\r\n 5",
            "5\t",
            "１",
            "12a",
        ] {
            let fast = parse_content_length(v.as_bytes());
            let general = parse_content_length_general(v.as_bytes());
            assert_eq!(fast.ok(), general.ok(), "{v:?}");
        }
        assert_eq!(parse_content_length(b"123456789").ok(), Some(123_456_789));
        assert_eq!(
            parse_content_length(b"99999999999999999999999").ok(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn capitals() {
        assert!(all_capitals(u64::from_le_bytes(*b"INVITEAA")));
        for b in 0..=255u8 {
            let mut w = *b"AAAAAAAA";
            for i in 0..8 {
                w[i] = b;
                assert_eq!(
                    all_capitals(u64::from_le_bytes(w)),
                    b.is_ascii_uppercase(),
                    "{b} at {i}"
                );
                w[i] = b'Z';
            }
        }
    }
}
