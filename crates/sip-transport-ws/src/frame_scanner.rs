//! `FrameScanner`: follows the WebSocket frame boundaries (RFC 6455 §5.2) in the bytes read
//! off a connection, so the driver can tell a peer that is half-way through a message from
//! one that is quiet between messages.
//!
//! tungstenite yields only whole messages and keeps its partial input to itself, so the only
//! place to see a message in progress is the byte stream under it. This scanner reads frame
//! headers only (never payloads, never unmasking) and answers two questions: is the input at a
//! message boundary (no frame and no fragmented data message unfinished), and how many frames
//! have completed. On the dialing side it starts in front of the HTTP upgrade response and
//! skips its head the way tungstenite's HTTP parser (httparse) delimits it: empty lines before
//! the status line are skipped, and the head ends at the first empty line, where a line ends
//! in LF with or without a CR before it. Frames that came in the same read as the head are
//! followed from their first byte. On the accepting side the scanner starts after the
//! handshake ([`FrameScanner::frames_only`]): tungstenite refuses bytes after the request, so
//! everything read during the handshake was the request.
//!
//! Sans-IO and deterministic: bytes in, state out; no clock, no socket. It does not validate
//! frames (tungstenite does, and closes the connection on a bad one); on nonsense it stays
//! consistent and never panics.

/// Where in an HTTP head the scanner is (lines end in LF, a CR before it is optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Http {
    /// Before the start line: empty lines here are skipped (httparse's `skip_empty_lines`).
    Leading,
    /// Inside a line.
    InLine,
    /// At the start of a line: an LF here (or a CR then an LF) ends the head.
    LineStart,
    /// A CR at the start of a line.
    LineStartCr,
}

/// Where the scanner is in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside the HTTP upgrade head.
    Http(Http),
    /// Collecting a frame header: `have` bytes of it are in `buf`.
    Header { buf: [u8; MAX_HEADER], have: u8 },
    /// Skipping a frame's payload.
    Payload {
        remaining: u64,
        fin: bool,
        opcode: u8,
    },
}

/// The largest frame header: 2 bytes, a 64-bit extended length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Follows frame and message boundaries; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct FrameScanner {
    state: State,
    /// A data message's first frame arrived without FIN and its last has not (RFC 6455 §5.4).
    fragmented: bool,
    /// Frames completed so far, of any kind.
    frames: u64,
    /// Times the input came back to a message boundary.
    boundaries: u64,
}

impl FrameScanner {
    /// A scanner for a connection whose HTTP upgrade head has not been read yet.
    pub(crate) fn before_upgrade() -> Self {
        FrameScanner {
            state: State::Http(Http::Leading),
            fragmented: false,
            frames: 0,
            boundaries: 0,
        }
    }

    /// A scanner whose next byte is the first byte of a frame.
    pub(crate) fn frames_only() -> Self {
        FrameScanner {
            state: State::Header {
                buf: [0; MAX_HEADER],
                have: 0,
            },
            ..Self::before_upgrade()
        }
    }

    /// Frames completed so far.
    #[cfg(test)]
    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    /// How many times the input returned to a message boundary so far.
    pub(crate) fn boundaries(&self) -> u64 {
        self.boundaries
    }

    /// True between messages: no frame is partly read and no fragmented data message is open.
    /// Also true during the HTTP head (the handshake timeout covers that part).
    pub(crate) fn at_boundary(&self) -> bool {
        match self.state {
            State::Http(_) => true,
            State::Header { have, .. } => have == 0 && !self.fragmented,
            State::Payload { .. } => false,
        }
    }

    /// Takes the next bytes read off the connection.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while let Some((&b, rest)) = bytes.split_first() {
            match &mut self.state {
                State::Http(at) => {
                    bytes = rest;
                    let next = match (*at, b) {
                        (Http::Leading, b'\r' | b'\n') => Some(Http::Leading),
                        (Http::InLine, b'\n') => Some(Http::LineStart),
                        (Http::InLine | Http::Leading, _) => Some(Http::InLine),
                        (Http::LineStart | Http::LineStartCr, b'\n') => None,
                        (Http::LineStart, b'\r') => Some(Http::LineStartCr),
                        (Http::LineStart | Http::LineStartCr, _) => Some(Http::InLine),
                    };
                    match next {
                        Some(next) => *at = next,
                        None => {
                            self.state = State::Header {
                                buf: [0; MAX_HEADER],
                                have: 0,
                            }
                        }
                    }
                }
                State::Header { buf, have } => {
                    bytes = rest;
                    buf[usize::from(*have)] = b;
                    *have += 1;
                    let buf = *buf;
                    let have = usize::from(*have);
                    if let Some((remaining, fin, opcode)) = parse_header(&buf[..have]) {
                        self.state = State::Payload {
                            remaining,
                            fin,
                            opcode,
                        };
                        if remaining == 0 {
                            self.frame_done(fin, opcode);
                        }
                    }
                }
                State::Payload {
                    remaining,
                    fin,
                    opcode,
                } => {
                    let (fin, opcode) = (*fin, *opcode);
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    bytes = &bytes[take..];
                    // `take` is at most `remaining`, which fits in a u64.
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.frame_done(fin, opcode);
                    }
                }
            }
        }
    }

    fn frame_done(&mut self, fin: bool, opcode: u8) {
        self.frames += 1;
        // Control frames (opcode 8 and up) may sit between a data message's fragments and
        // neither open nor close it (RFC 6455 §5.4, §5.5).
        if opcode < 8 {
            self.fragmented = !fin;
        }
        self.state = State::Header {
            buf: [0; MAX_HEADER],
            have: 0,
        };
        if !self.fragmented {
            self.boundaries += 1;
        }
    }
}

/// Reads a frame header once all of it is there: `Some((payload length, FIN, opcode))`,
/// or `None` while bytes are missing (RFC 6455 §5.2).
fn parse_header(h: &[u8]) -> Option<(u64, bool, u8)> {
    let [b0, b1, rest @ ..] = h else {
        return None;
    };
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    let masked = b1 & 0x80 != 0;
    let (ext, len) = match b1 & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let need = ext + if masked { 4 } else { 0 };
    if rest.len() < need {
        return None;
    }
    let len = len.unwrap_or_else(|| {
        rest[..ext]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    });
    Some((len, fin, opcode))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

    /// A frame as a client sends it (masked), with the given payload length.
    fn frame(fin: bool, opcode: u8, len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => f.push(m | len as u8),
            126..=0xFFFF => {
                f.push(m | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(m | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    /// Feeds `bytes` one at a time and records `at_boundary` after each.
    fn bytewise(s: &mut FrameScanner, bytes: &[u8]) -> Vec<bool> {
        bytes
            .iter()
            .map(|b| {
                s.feed(std::slice::from_ref(b));
                s.at_boundary()
            })
            .collect()
    }

    #[test]
    fn skips_the_http_head_even_with_a_frame_in_the_same_read() {
        let mut s = FrameScanner::before_upgrade();
        let mut input = HEAD.to_vec();
        input.extend_from_slice(&frame(true, 1, 5, true)[..3]);
        s.feed(&input);
        assert!(!s.at_boundary(), "three bytes of a frame are in");
        s.feed(&frame(true, 1, 5, true)[3..]);
        assert!(s.at_boundary());
        assert_eq!((s.frames(), s.boundaries()), (1, 1));
    }

    #[test]
    fn heads_end_where_httparse_ends_them() {
        // Bare LF line ends, CRLF then LF, blank lines before the start line: each head is
        // followed by a 5-byte text frame, fed whole and byte by byte.
        for head in [
            &b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n"[..],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\n",
            b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\r\n",
            b"\r\n\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            let mut input = head.to_vec();
            input.extend_from_slice(&frame(true, 1, 5, false));
            let mut whole = FrameScanner::before_upgrade();
            whole.feed(&input);
            assert_eq!((whole.frames(), whole.boundaries()), (1, 1), "{head:?}");
            let mut split = FrameScanner::before_upgrade();
            bytewise(&mut split, &input);
            assert_eq!(split.frames(), 1, "{head:?}");
            assert!(split.at_boundary(), "{head:?}");
        }
    }

    #[test]
    fn frames_only_starts_at_a_frame() {
        let mut s = FrameScanner::frames_only();
        let f = frame(true, 1, 3, true);
        s.feed(&f[..2]);
        assert!(!s.at_boundary());
        s.feed(&f[2..]);
        assert_eq!((s.frames(), s.boundaries()), (1, 1));
    }

    #[test]
    fn a_frame_split_at_every_byte_is_partial_until_its_end() {
        for (len, masked) in [
            (0, true),
            (5, true),
            (125, false),
            (300, true),
            (70_000, false),
        ] {
            let mut s = FrameScanner::before_upgrade();
            s.feed(HEAD);
            let f = frame(true, 2, len, masked);
            let seen = bytewise(&mut s, &f);
            let (last, before) = seen.split_last().expect("bytes");
            assert!(*last, "complete at the end ({len})");
            assert!(before.iter().all(|b| !b), "partial before ({len})");
            assert_eq!(s.frames(), 1);
        }
    }

    #[test]
    fn fragments_and_interleaved_control_frames() {
        let mut s = FrameScanner::before_upgrade();
        s.feed(HEAD);
        s.feed(&frame(false, 1, 10, true));
        assert!(!s.at_boundary(), "text without FIN opens a message");
        s.feed(&frame(true, 9, 1, true));
        assert!(!s.at_boundary(), "a ping between fragments does not end it");
        s.feed(&frame(false, 0, 10, true));
        assert!(!s.at_boundary());
        assert_eq!(s.boundaries(), 0);
        s.feed(&frame(true, 0, 3, true));
        assert!(s.at_boundary());
        assert_eq!((s.frames(), s.boundaries()), (4, 1));
        // A lone ping is a message of its own.
        s.feed(&frame(true, 9, 0, true));
        assert_eq!((s.frames(), s.boundaries()), (5, 2));
    }

    #[test]
    fn one_read_ending_one_message_and_starting_the_next() {
        let mut s = FrameScanner::before_upgrade();
        s.feed(HEAD);
        let mut input = frame(true, 1, 4, true);
        input.extend_from_slice(&frame(true, 1, 4, true)[..2]);
        s.feed(&input);
        assert!(!s.at_boundary());
        assert_eq!(
            s.boundaries(),
            1,
            "the first message ended inside this read"
        );
    }

    #[test]
    fn nonsense_does_not_panic() {
        let mut s = FrameScanner::before_upgrade();
        s.feed(HEAD);
        s.feed(&[0xFF; 64]);
        s.feed(&[
            0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,
        ]);
        s.feed(&[0; 4096]);
        assert!(!s.at_boundary());
    }
}
