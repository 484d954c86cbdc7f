//! Header names: case-insensitive matching that knows the compact forms, and the small set of
//! headers the transport layer indexes up front.
//!
//! Not a header grammar: values stay raw bytes; only names are classified.

/// Compact forms (RFC 3261 §7.3.3 and the extensions that registered one) and their long names.
const COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'n', "Identity-Info"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// The long name for a one-letter compact form, if it has one.
pub fn expand_compact(name: &[u8]) -> Option<&'static str> {
    if name.len() != 1 {
        return None;
    }
    let c = name[0].to_ascii_lowercase();
    COMPACT.iter().find(|(k, _)| *k == c).map(|(_, long)| *long)
}

/// The compact letter for a long header name, if it has one.
pub fn compact_of(name: &[u8]) -> Option<u8> {
    COMPACT
        .iter()
        .find(|(_, long)| long.as_bytes().eq_ignore_ascii_case(name))
        .map(|(c, _)| *c)
}

/// True when two header names denote the same header (case-insensitive, compact-aware).
pub fn names_match(a: &[u8], b: &[u8]) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    match (a.len() == 1, b.len() == 1) {
        (true, false) => compact_of(b).is_some_and(|c| c == a[0].to_ascii_lowercase()),
        (false, true) => compact_of(a).is_some_and(|c| c == b[0].to_ascii_lowercase()),
        _ => false,
    }
}

/// Header names recognised while parsing: the ones the transport reads, and the most common
/// others, so a lookup compares ids instead of names and the parser skips the token check for
/// a spelling it recognised. Compact forms map to their header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderId {
    Via,
    CallId,
    CSeq,
    From,
    To,
    ContentLength,
    MaxForwards,
    Contact,
    ContentType,
    Route,
    RecordRoute,
    Expires,
    UserAgent,
    Allow,
    Supported,
    Event,
    Subject,
    Require,
    Other,
}

/// A header name to recognise, as a little-endian word of its lowercase bytes and the
/// case bits of its letters: a name matches when `word | case == lower`. Setting bit 5
/// lowercases a letter and turns no other byte into one, so non-letters must match exactly
/// and only exact token spellings are recognised.
#[derive(Clone, Copy)]
pub(crate) struct Pattern {
    lower: u64,
    case: u64,
}

/// The pattern of a name of up to 8 bytes (the Via parser uses it too).
pub(crate) const fn pattern(s: &[u8]) -> Pattern {
    let mut lower = 0u64;
    let mut case = 0u64;
    let mut i = 0;
    while i < s.len() {
        let b = s[i].to_ascii_lowercase();
        lower |= (b as u64) << (8 * i);
        if b.is_ascii_lowercase() {
            case |= 0x20 << (8 * i);
        }
        i += 1;
    }
    Pattern { lower, case }
}

/// Bytes 0..8 and 8..16 of `name` as little-endian words, zero-padded.
#[inline]
fn words(name: &[u8]) -> [u64; 2] {
    let mut w = [0u8; 16];
    let n = name.len().min(16);
    w[..n].copy_from_slice(&name[..n]);
    words_of(&w)
}

/// Bytes 0..8 and 8..16 of `chunk` as little-endian words.
#[inline]
pub(crate) fn words_of(chunk: &[u8; 16]) -> [u64; 2] {
    let (lo, hi) = chunk.split_at(8);
    let word = |h: &[u8]| h.first_chunk::<8>().map_or(0, |b| u64::from_le_bytes(*b));
    [word(lo), word(hi)]
}

/// True when the word `w` (the name's bytes, zero past its end) spells `p` in any case.
#[inline]
pub(crate) fn matches(w: u64, p: Pattern) -> bool {
    w | p.case == p.lower
}

/// The low `n` bytes of `w` (n < 8).
#[inline]
pub(crate) fn low(w: u64, n: u32) -> u64 {
    w & ((1u64 << (8 * n)) - 1)
}

/// Classifies a header name without allocating: a switch on the length, then a few word
/// compares.
#[inline]
pub(crate) fn classify(name: &[u8]) -> HeaderId {
    if name.len() > 16 {
        return HeaderId::Other; // longer than any recognised name
    }
    classify_words(words(name), name.len())
}

/// [`classify`] for the name made of the first `len` bytes of the two words `w` (bytes 0..16
/// of the line, as [`words_of`] reads them); bytes past `len` may hold anything. Inlined into
/// the parser's line loop, where a call would spill its registers.
#[inline(always)]
pub(crate) fn classify_words(w: [u64; 2], len: usize) -> HeaderId {
    const TO: Pattern = pattern(b"to");
    const VIA: Pattern = pattern(b"via");
    const FROM: Pattern = pattern(b"from");
    const CSEQ: Pattern = pattern(b"cseq");
    const ROUTE: Pattern = pattern(b"route");
    const ALLOW: Pattern = pattern(b"allow");
    const EVENT: Pattern = pattern(b"event");
    const CALL_ID: Pattern = pattern(b"call-id");
    const CONTACT: Pattern = pattern(b"contact");
    const EXPIRES: Pattern = pattern(b"expires");
    const SUBJECT: Pattern = pattern(b"subject");
    const REQUIRE: Pattern = pattern(b"require");
    const SUPPORTE: Pattern = pattern(b"supporte");
    const D: Pattern = pattern(b"d");
    const USER_AGE: Pattern = pattern(b"user-age");
    const NT: Pattern = pattern(b"nt");
    const MAX_FORW: Pattern = pattern(b"max-forw");
    const ARDS: Pattern = pattern(b"ards");
    const CONTENT_: Pattern = pattern(b"content-");
    const TYPE: Pattern = pattern(b"type");
    const RECORD_R: Pattern = pattern(b"record-r");
    const OUTE: Pattern = pattern(b"oute");
    const LENGTH: Pattern = pattern(b"length");
    let [lo, hi] = w;
    match len {
        1 => match (lo as u8) | 0x20 {
            b'v' => HeaderId::Via,
            b'i' => HeaderId::CallId,
            b'f' => HeaderId::From,
            b't' => HeaderId::To,
            b'l' => HeaderId::ContentLength,
            b'm' => HeaderId::Contact,
            b'c' => HeaderId::ContentType,
            b'k' => HeaderId::Supported,
            b'o' => HeaderId::Event,
            b's' => HeaderId::Subject,
            _ => HeaderId::Other,
        },
        2 if matches(low(lo, 2), TO) => HeaderId::To,
        3 if matches(low(lo, 3), VIA) => HeaderId::Via,
        4 => match low(lo, 4) {
            w if matches(w, FROM) => HeaderId::From,
            w if matches(w, CSEQ) => HeaderId::CSeq,
            _ => HeaderId::Other,
        },
        5 => match low(lo, 5) {
            w if matches(w, ROUTE) => HeaderId::Route,
            w if matches(w, ALLOW) => HeaderId::Allow,
            w if matches(w, EVENT) => HeaderId::Event,
            _ => HeaderId::Other,
        },
        7 => match low(lo, 7) {
            w if matches(w, CALL_ID) => HeaderId::CallId,
            w if matches(w, CONTACT) => HeaderId::Contact,
            w if matches(w, EXPIRES) => HeaderId::Expires,
            w if matches(w, SUBJECT) => HeaderId::Subject,
            w if matches(w, REQUIRE) => HeaderId::Require,
            _ => HeaderId::Other,
        },
        9 if matches(lo, SUPPORTE) && matches(low(hi, 1), D) => HeaderId::Supported,
        10 if matches(lo, USER_AGE) && matches(low(hi, 2), NT) => HeaderId::UserAgent,
        12 => {
            let tail = low(hi, 4);
            if matches(lo, MAX_FORW) && matches(tail, ARDS) {
                HeaderId::MaxForwards
            } else if matches(lo, CONTENT_) && matches(tail, TYPE) {
                HeaderId::ContentType
            } else if matches(lo, RECORD_R) && matches(tail, OUTE) {
                HeaderId::RecordRoute
            } else {
                HeaderId::Other
            }
        }
        14 if matches(lo, CONTENT_) && matches(low(hi, 6), LENGTH) => HeaderId::ContentLength,
        _ => HeaderId::Other,
    }
}

/// One header field of a [`Message`](crate::Message): the name as written and the raw value.
///
/// The value is trimmed of surrounding whitespace. A folded value (RFC 3261 §7.3.1) keeps its
/// CRLF + whitespace inside; [`Header::value_unfolded`] replaces each fold with one space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) value: &'a [u8],
}

impl<'a> Header<'a> {
    /// The name as written (a token, so ASCII), e.g. `v` or `Via`.
    pub fn name(&self) -> &'a str {
        std::str::from_utf8(self.name).unwrap_or("")
    }

    /// The name as written, as bytes (no UTF-8 check: a name is always a token).
    pub fn name_bytes(&self) -> &'a [u8] {
        self.name
    }

    /// The long form of the name: `Via` for `v`, otherwise the name as written.
    pub fn long_name(&self) -> &'a str {
        expand_compact(self.name).unwrap_or_else(|| self.name())
    }

    /// The raw value bytes (may hold UTF-8 or, in broken messages, anything).
    pub fn value_bytes(&self) -> &'a [u8] {
        self.value
    }

    /// The value as text, or `None` if it is not UTF-8.
    pub fn value(&self) -> Option<&'a str> {
        std::str::from_utf8(self.value).ok()
    }

    /// True when the name denotes `name` (case-insensitive, compact-aware).
    pub fn is(&self, name: &str) -> bool {
        names_match(self.name, name.as_bytes())
    }

    /// The value with every line fold replaced by a single space (allocates only if folded).
    pub fn value_unfolded(&self) -> std::borrow::Cow<'a, str> {
        let text = String::from_utf8_lossy(self.value);
        if !self.value.contains(&b'\n') {
            return text;
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\r' || c == '\n' {
                while chars
                    .peek()
                    .is_some_and(|c| matches!(c, '\r' | '\n' | ' ' | '\t'))
                {
                    chars.next();
                }
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        std::borrow::Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms() {
        assert!(names_match(b"v", b"Via"));
        assert!(names_match(b"VIA", b"V"));
        assert!(names_match(b"l", b"content-length"));
        assert!(names_match(b"Call-ID", b"i"));
        assert!(!names_match(b"t", b"From"));
        assert!(!names_match(b"x", b"y"));
        assert_eq!(expand_compact(b"M"), Some("Contact"));
        assert_eq!(classify(b"CONTENT-LENGTH"), HeaderId::ContentLength);
        assert_eq!(classify(b"L"), HeaderId::ContentLength);
        assert_eq!(classify(b"X-Via"), HeaderId::Other);
        assert_eq!(classify(b"cOnTeNt-LeNgTh"), HeaderId::ContentLength);
        assert_eq!(classify(b"Call-Id"), HeaderId::CallId);
        assert_eq!(classify(b"cseq"), HeaderId::CSeq);
        assert_eq!(classify(b"FROM"), HeaderId::From);
        assert_eq!(classify(b"tO"), HeaderId::To);
        // Bit 5 turns CR into '-' and '@' into '`': neither may pass for the name.
        assert_eq!(classify(b"Call\rID"), HeaderId::Other);
        assert_eq!(classify(b"Content\rLength"), HeaderId::Other);
        assert_eq!(classify(b"V\x16a"), HeaderId::Other);
        assert_eq!(classify(b"\x16"), HeaderId::Other);
        assert_eq!(classify(b"Vi"), HeaderId::Other);
        for (name, id) in [
            ("Max-Forwards", HeaderId::MaxForwards),
            ("Contact", HeaderId::Contact),
            ("m", HeaderId::Contact),
            ("Content-Type", HeaderId::ContentType),
            ("C", HeaderId::ContentType),
            ("Route", HeaderId::Route),
            ("Record-Route", HeaderId::RecordRoute),
            ("Expires", HeaderId::Expires),
            ("User-Agent", HeaderId::UserAgent),
            ("Allow", HeaderId::Allow),
            ("Supported", HeaderId::Supported),
            ("k", HeaderId::Supported),
            ("Event", HeaderId::Event),
            ("o", HeaderId::Event),
            ("Subject", HeaderId::Subject),
            ("s", HeaderId::Subject),
            ("Require", HeaderId::Require),
        ] {
            assert_eq!(classify(name.as_bytes()), id, "{name}");
            assert_eq!(classify(name.to_uppercase().as_bytes()), id, "{name}");
            assert_eq!(classify(name.to_lowercase().as_bytes()), id, "{name}");
            // One byte off anywhere is another header.
            for i in 0..name.len() {
                let mut b = name.as_bytes().to_vec();
                b[i] ^= 0x01;
                assert_ne!(classify(&b), id, "{name} {i}");
            }
        }
        // Every recognised long name agrees with the compact-form table.
        for (c, long) in COMPACT {
            let by_letter = classify(&[*c]);
            if by_letter != HeaderId::Other {
                assert_eq!(classify(long.as_bytes()), by_letter, "{long}");
            }
        }
        assert_eq!(classify(b"Fro"), HeaderId::Other);
    }

    #[test]
    fn unfold() {
        let h = Header {
            name: b"Subject",
            value: b"a\r\n  b\r\n\tc",
        };
        assert_eq!(h.value_unfolded(), "a b c");
        assert_eq!(h.long_name(), "Subject");
        let h = Header {
            name: b"v",
            value: b"x",
        };
        assert_eq!(h.long_name(), "Via");
        assert!(h.is("via"));
    }
}
