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

/// Headers the index records positions of while parsing, so the transport never searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderId {
    Via,
    CallId,
    CSeq,
    From,
    To,
    ContentLength,
    Other,
}

/// Classifies a header name without allocating.
#[inline]
pub(crate) fn classify(name: &[u8]) -> HeaderId {
    // Most names are written in their usual case: compare exactly first (a few word
    // compares), then case-insensitively.
    match name {
        b"Via" => return HeaderId::Via,
        b"To" => return HeaderId::To,
        b"From" => return HeaderId::From,
        b"CSeq" => return HeaderId::CSeq,
        b"Call-ID" => return HeaderId::CallId,
        b"Content-Length" => return HeaderId::ContentLength,
        _ => {}
    }
    match name.len() {
        1 => match name[0].to_ascii_lowercase() {
            b'v' => HeaderId::Via,
            b'i' => HeaderId::CallId,
            b'f' => HeaderId::From,
            b't' => HeaderId::To,
            b'l' => HeaderId::ContentLength,
            _ => HeaderId::Other,
        },
        2 if name.eq_ignore_ascii_case(b"to") => HeaderId::To,
        3 if name.eq_ignore_ascii_case(b"via") => HeaderId::Via,
        4 if name.eq_ignore_ascii_case(b"from") => HeaderId::From,
        4 if name.eq_ignore_ascii_case(b"cseq") => HeaderId::CSeq,
        7 if name.eq_ignore_ascii_case(b"call-id") => HeaderId::CallId,
        14 if name.eq_ignore_ascii_case(b"content-length") => HeaderId::ContentLength,
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
