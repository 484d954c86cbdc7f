//! The bodies of the codec fuzz targets, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and by `crates/sip-transport-api/tests/fuzz_targets.rs`, which
//! runs them over a seed corpus under plain `cargo test`. Same code in both, via `#[path]`.
//!
//! Each body panics when an invariant of the codec breaks; that is the crash the fuzzer looks
//! for. Not a place for SIP grammar checks: only framing, indexing, stamping and routing.

// Each including crate calls only some of these functions.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use sip_transport_api::bytes::Bytes;
use sip_transport_api::{
    Datagram, Error, Frame, Limits, Message, ResponseHost, StreamDecoder, Via, decode_datagram,
    response_target, stamp_received,
};

/// Target `stream_decoder`. The first input byte chooses how the rest (the stream) is split
/// into reads: 0 byte by byte, otherwise pseudo-random reads of 1 to 4×that many bytes.
pub(crate) fn stream_decoder(data: &[u8]) {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    // Default limits: the outcome must not depend on the split at all.
    let limits = Limits::default();
    let whole = feed(stream, &mut std::iter::once(stream.len()), &limits);
    let split = feed(stream, &mut chunk_sizes(mode), &limits);
    assert_eq!(split.frames, whole.frames, "frames depend on the split");
    assert_eq!(split.end, whole.end, "outcome depends on the split");
    check_consumption(stream, &whole, &limits);

    // Small limits: an incremental check may name a different limit than the whole-buffer
    // one (line too long before headers too large), but the frames, and whether the stream
    // fails, must not depend on the split.
    let small = small_limits();
    let whole = feed(stream, &mut std::iter::once(stream.len()), &small);
    let split = feed(stream, &mut chunk_sizes(mode), &small);
    assert_eq!(
        split.frames, whole.frames,
        "frames depend on the split (small limits)"
    );
    match (&split.end, &whole.end) {
        (End::Failed(_), End::Failed(_)) => {}
        (a, b) => assert_eq!(a, b, "outcome depends on the split (small limits)"),
    }
    check_consumption(stream, &whole, &small);
}

/// Target `datagram`: `decode_datagram` (and `Message::parse`) on the input, then
/// `stamp_received` and `response_target` on what it gives.
pub(crate) fn datagram(data: &[u8]) {
    for limits in [Limits::default(), small_limits()] {
        let bytes = Bytes::copy_from_slice(data);
        match decode_datagram(bytes.clone(), &limits) {
            Ok(Datagram::Keepalive) => {
                assert!(data.iter().all(|b| is_lead(*b)));
            }
            Ok(Datagram::Message(m)) => {
                let lead = data.iter().take_while(|b| is_lead(**b)).count();
                assert!(lead < data.len());
                assert_eq!(
                    &m.as_bytes()[..],
                    &data[lead..lead + m.len()],
                    "shares the input"
                );
                check_message(&m, &limits);
                if m.content_length().is_none() {
                    assert_eq!(
                        lead + m.len(),
                        data.len(),
                        "no Content-Length: rest is body"
                    );
                }
                check_stamp_and_route(&m);
            }
            Err(e) => assert!(e.is_framing(), "not a framing error: {e:?}"),
        }
        // A whole message parses the same way on its own, and a datagram agrees with it.
        if let Ok(m) = Message::parse_with(bytes, &limits) {
            assert_eq!(m.len(), data.len());
            check_message(&m, &limits);
            if !data.first().is_some_and(|b| is_lead(*b)) {
                let d = decode_datagram(Bytes::copy_from_slice(data), &limits);
                assert!(
                    matches!(&d, Ok(Datagram::Message(dm)) if *dm == m),
                    "parse and decode_datagram disagree: {d:?}"
                );
            }
            check_stamp_and_route(&m);
        }
    }
}

/// What a datagram may start with before its start line (RFC 3261 §7.5, liberally).
fn is_lead(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t')
}

fn small_limits() -> Limits {
    Limits::default()
        .with_max_message_size(600)
        .with_max_header_size(400)
        .with_max_line_length(90)
        .with_max_body_size(200)
}

fn huge_limits() -> Limits {
    Limits::default()
        .with_max_message_size(1 << 24)
        .with_max_header_size(1 << 24)
        .with_max_line_length(1 << 24)
        .with_max_body_size(1 << 24)
}

/// Read sizes from a tiny xorshift generator seeded by `mode` (0: one byte at a time).
fn chunk_sizes(mode: u8) -> impl Iterator<Item = usize> {
    let max = 4 * usize::from(mode);
    let mut x = u64::from(mode).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::iter::repeat_with(move || {
        if max == 0 {
            return 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        1 + (x % max as u64) as usize
    })
}

#[derive(Debug)]
enum End {
    Idle,
    Waiting { buffered: usize },
    Failed(Error),
}

impl PartialEq for End {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (End::Idle, End::Idle) => true,
            (End::Waiting { buffered: a }, End::Waiting { buffered: b }) => a == b,
            // The codec's error variants print every field.
            (End::Failed(a), End::Failed(b)) => format!("{a:?}") == format!("{b:?}"),
            _ => false,
        }
    }
}

struct Run {
    frames: Vec<Frame>,
    end: End,
}

fn feed(stream: &[u8], sizes: &mut dyn Iterator<Item = usize>, limits: &Limits) -> Run {
    let mut dec = StreamDecoder::new(limits.clone());
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let n = sizes.next().unwrap_or(usize::MAX).min(stream.len() - pos);
        dec.buffer_mut().extend_from_slice(&stream[pos..pos + n]);
        pos += n;
        loop {
            match dec.decode() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    assert!(e.is_framing(), "not a framing error: {e:?}");
                    assert!(dec.decode().is_err(), "a failed decoder stays failed");
                    return Run {
                        frames,
                        end: End::Failed(e),
                    };
                }
            }
        }
        if pos == stream.len() {
            break;
        }
    }
    let end = match dec.buffered() {
        0 => End::Idle,
        buffered => End::Waiting { buffered },
    };
    Run { frames, end }
}

/// The frames are the input, in order, with nothing invented and nothing skipped but stray
/// line ends between messages. Stated independently of the decoder's own rule: skipped bytes
/// are only CR and LF and never hold a CRLF pair (a CRLF is a pong, or half of a ping, so it
/// is never dropped).
fn check_consumption(stream: &[u8], run: &Run, limits: &Limits) {
    let strays = |from: usize, to: usize| {
        let skipped = &stream[from..to];
        assert!(
            skipped.iter().all(|b| matches!(b, b'\r' | b'\n')),
            "only line ends are skipped: {skipped:?}"
        );
        assert!(
            !skipped.windows(2).any(|w| w == b"\r\n"),
            "a CRLF was skipped: {skipped:?}"
        );
    };
    let crlf_at_or_after = |from: usize| {
        (from..stream.len().saturating_sub(1))
            .find(|&i| &stream[i..i + 2] == b"\r\n")
            .expect("a ping or pong has its CRLF in the input")
    };
    let mut pos = 0;
    for f in &run.frames {
        let at = match f {
            Frame::Message(_) => (pos..stream.len())
                .find(|&i| !matches!(stream[i], b'\r' | b'\n'))
                .expect("a message starts with its start line"),
            Frame::Ping | Frame::Pong => crlf_at_or_after(pos),
        };
        strays(pos, at);
        pos = at;
        match f {
            Frame::Message(m) => {
                assert_eq!(&m.as_bytes()[..], &stream[pos..pos + m.len()]);
                let cl = m
                    .content_length()
                    .expect("a stream message has Content-Length");
                assert_eq!(m.body().len() as u64, cl);
                check_message(m, limits);
                pos += m.len();
            }
            Frame::Ping => {
                assert_eq!(&stream[pos..pos + 4], b"\r\n\r\n");
                pos += 4;
            }
            Frame::Pong => {
                assert_eq!(&stream[pos..pos + 2], b"\r\n");
                pos += 2;
            }
        }
    }
    match run.end {
        End::Idle => strays(pos, stream.len()),
        End::Waiting { buffered } => {
            let kept = stream.len() - buffered;
            assert!(kept >= pos, "more buffered than is left");
            strays(pos, kept);
        }
        End::Failed(_) => {}
    }
}

/// One framed message: its index agrees with its bytes, it respects the limits, it parses
/// again to the same index, and no accessor panics.
fn check_message(m: &Message, limits: &Limits) {
    let bytes = m.as_bytes();
    let off = m.body_offset();
    assert!(
        bytes[..off].ends_with(b"\r\n\r\n"),
        "head ends with an empty line"
    );
    assert_eq!(off + m.body().len(), m.len());
    assert_eq!(&m.body()[..], &bytes[off..]);
    if let Some(cl) = m.content_length() {
        assert_eq!(m.body().len() as u64, cl);
    }
    assert!(m.len() <= limits.max_message_size);
    assert!(off <= limits.max_header_size);
    assert!(m.body().len() <= limits.max_body_size);
    // Lines end in CRLF; a bare CR or LF is part of a line.
    let head = &bytes[..off - 2];
    let (mut start, mut i) = (0, 0);
    while i + 1 < head.len() {
        if &head[i..i + 2] == b"\r\n" {
            assert!(
                i - start <= limits.max_line_length,
                "line of {} bytes",
                i - start
            );
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    let again = Message::parse_with(bytes.clone(), limits).expect("a framed message parses");
    assert_eq!(&again, m, "parse gives the same index");

    assert_eq!(m.is_request(), m.method().is_some());
    assert_eq!(m.is_request(), m.request_uri().is_some());
    assert_eq!(m.is_response(), m.status_code().is_some());
    assert!(m.status_code().is_none_or(|c| (100..=699).contains(&c)));
    let _ = (m.version(), m.reason_phrase());
    let mut n = 0;
    for h in m.headers() {
        n += 1;
        let _ = (
            h.long_name(),
            h.value(),
            h.value_unfolded(),
            h.value_bytes(),
        );
        assert!(h.is(h.name()));
        assert!(m.header(h.name()).is_some());
        assert!(m.headers_named(h.name()).count() >= 1);
    }
    assert_eq!(n, m.header_count());
    let _ = (m.call_id(), m.from_header(), m.to_header(), m.cseq());
    for v in m.vias().flatten() {
        touch_via(&v);
    }
    if let Ok(v) = m.top_via() {
        touch_via(&v);
    }
}

fn touch_via(v: &Via<'_>) {
    let _ = (
        v.protocol(),
        v.transport(),
        v.transport_kind(),
        v.host(),
        v.host_ip(),
    );
    let _ = (v.port(), v.params(), v.branch(), v.received(), v.rport());
    let _ = (v.maddr(), v.ttl(), v.param("x"));
}

const SOURCES: [&str; 3] = [
    "192.0.2.7:5062",
    "[2001:db8::7]:40000",
    "[::ffff:192.0.2.7]:5062",
];

/// RFC 3261 §18.2.1 / RFC 3581 §4 stamping and §18.2.2 response routing.
fn check_stamp_and_route(m: &Message) {
    check_route(m);
    for src in SOURCES {
        let src: SocketAddr = src.parse().expect("literal");
        let s = stamp_received(m, src);
        let again = Message::parse_with(s.as_bytes().clone(), &huge_limits())
            .expect("a stamped message parses");
        assert_eq!(again, s, "stamping keeps the index in step with the bytes");
        assert_eq!(
            stamp_received(&s, src),
            s,
            "stamping twice changes nothing more"
        );
        let Ok(v) = m.top_via() else {
            assert_eq!(&s, m, "no parsable top Via: unchanged");
            continue;
        };
        if !m.is_request() {
            assert_eq!(&s, m, "responses are not stamped");
            continue;
        }
        assert_eq!(s.body(), m.body());
        let sv = s.top_via().expect("a stamped Via parses");
        assert_eq!(
            (sv.transport(), sv.host(), sv.port(), sv.branch()),
            (v.transport(), v.host(), v.port(), v.branch()),
            "stamping changes only received and rport"
        );
        let src_ip = src.ip().to_canonical();
        if v.param("rport") == Some(None) {
            assert_eq!(sv.rport(), Some(Some(src.port())), "rport filled");
        }
        let host_is_src = v.host_ip().map(|ip| ip.to_canonical()) == Some(src_ip);
        if (v.rport().is_some() || !host_is_src) && v.param("received") != Some(None) {
            assert_eq!(
                sv.received().map(|ip| ip.to_canonical()),
                Some(src_ip),
                "received names the source"
            );
        }
        if sv.received().map(|ip| ip.to_canonical()) == Some(src_ip) {
            check_route_to(&s, src_ip);
        }
        check_route(&s);
    }
}

/// `response_target` never picks port 0, a broadcast or an unspecified address.
fn check_route(m: &Message) {
    let Ok(t) = response_target(m) else { return };
    let v = m.top_via().expect("a target comes from the top Via");
    assert_eq!(Some(t.transport), v.transport_kind());
    assert_ne!(t.port, 0);
    if let ResponseHost::Ip(ip) = t.host {
        assert!(!ip.is_unspecified());
        assert!(!matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()));
    }
    if t.transport.is_reliable() {
        assert_eq!(t.port, v.port().unwrap_or(t.transport.default_port()));
    }
}

/// With `received` naming `ip` and no maddr, a response goes to `ip` (RFC 3261 §18.2.2).
fn check_route_to(m: &Message, ip: IpAddr) {
    let Ok(t) = response_target(m) else { return };
    let v = m.top_via().expect("via");
    if t.transport.is_reliable() || v.maddr().is_none() {
        assert!(
            matches!(t.host, ResponseHost::Ip(x) if x.to_canonical() == ip),
            "response to {:?}, not {ip}",
            t.host
        );
    }
}
