//! Property tests for framing: random valid messages (requests and responses, compact and
//! long header names, folded lines, bodies of arbitrary bytes, keepalives between) back to back
//! on a stream, split at arbitrary points, give exactly the frames of the whole stream, and
//! those are the messages generated. Plus: arbitrary bytes never panic either decode path or
//! `Message::parse`, and the fuzz bodies' invariants hold on them.

mod support;

#[path = "../../../fuzz/bodies/codec.rs"]
mod bodies;

use bytes::Bytes;
use proptest::prelude::*;
use sip_transport_api::{Frame, Limits, Message, StreamDecoder, decode_datagram};
use support::{End, feed_chunks};

/// One generated message, with what its index must say.
#[derive(Debug, Clone)]
struct Gen {
    bytes: Vec<u8>,
    method: Option<String>,
    status: Option<u16>,
    headers: usize,
    body: Vec<u8>,
}

/// What comes before a message on the stream.
#[derive(Debug, Clone, Copy)]
enum Keepalive {
    None,
    Ping,
    Pong,
    PingPong,
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Via",
            "Call-ID",
            "From",
            "To",
            "CSeq",
            "Contact",
            "Subject",
            "Max-Forwards",
            "User-Agent",
            "Route",
            "Record-Route",
            "Content-Type",
        ])
        .prop_map(str::to_owned),
        // Compact forms (RFC 3261 §7.3.3), in either case.
        prop::sample::select(vec![
            "v", "i", "f", "t", "m", "s", "k", "c", "e", "V", "I", "M"
        ])
        .prop_map(str::to_owned),
        "X-[A-Za-z0-9]{1,12}",
    ]
}

/// A header line: name, optional space before the colon, value, maybe folded once.
fn header() -> impl Strategy<Value = String> {
    (
        header_name(),
        prop::sample::select(vec![": ", ":", " : ", ":\t"]),
        "[ -~]{0,40}|[a-z é€漢;=,\"<>]{0,20}",
        prop::option::of((
            any::<prop::sample::Index>(),
            prop::sample::select(vec![" ", "\t", "   "]),
        )),
    )
        .prop_map(|(name, colon, value, fold)| {
            let value = match fold {
                // RFC 3261 §7.3.1: CRLF followed by whitespace continues the value.
                Some((at, ws)) => {
                    let cut = value
                        .char_indices()
                        .map(|(i, _)| i)
                        .nth(at.index(value.chars().count() + 1))
                        .unwrap_or(value.len());
                    format!("{}\r\n{ws}{}", &value[..cut], &value[cut..])
                }
                None => value,
            };
            format!("{name}{colon}{value}\r\n")
        })
}

fn content_length_line(len: usize, form: usize) -> String {
    match form % 4 {
        0 => format!("Content-Length: {len}\r\n"),
        1 => format!("l: {len}\r\n"),
        2 => format!("content-length   :\r\n  {len}\r\n"),
        _ => format!("L:{len}\r\n"),
    }
}

fn message() -> impl Strategy<Value = Gen> {
    let start = prop_oneof![
        ("[A-Z]{3,9}|[A-Za-z!%*_+`'~.-]{1,12}", "[a-z0-9]{1,8}").prop_map(|(m, user)| (
            format!("{m} sip:{user}@example.com SIP/2.0\r\n"),
            Some(m),
            None
        )),
        (100u16..700, "[A-Za-z ]{0,20}").prop_map(|(code, reason)| (
            format!("SIP/2.0 {code} {reason}\r\n"),
            None,
            Some(code)
        )),
    ];
    (
        start,
        prop::collection::vec(header(), 0..10),
        any::<prop::sample::Index>(),
        0usize..4,
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|((line, method, status), mut headers, at, form, body)| {
            let at = at.index(headers.len() + 1);
            headers.insert(at, content_length_line(body.len(), form));
            let mut bytes = line.into_bytes();
            for h in &headers {
                bytes.extend_from_slice(h.as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&body);
            Gen {
                bytes,
                method,
                status,
                headers: headers.len(),
                body,
            }
        })
}

fn keepalive() -> impl Strategy<Value = Keepalive> {
    prop_oneof![
        4 => Just(Keepalive::None),
        1 => Just(Keepalive::Ping),
        1 => Just(Keepalive::Pong),
        1 => Just(Keepalive::PingPong),
    ]
}

/// A stream of messages with keepalives, and the frames it must decode to.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<Option<Gen>>, Vec<Frame>)> {
    (
        prop::collection::vec((keepalive(), message()), 1..6),
        0usize..3,
    )
        .prop_map(|(items, trailing_pings)| {
            let mut bytes = Vec::new();
            let mut expected = Vec::new();
            let mut keepalives = Vec::new();
            for (ka, m) in items {
                // A pong is sent only right before a message, so that two CRLFs never
                // meet and read as a ping.
                let (ping, pong) = match ka {
                    Keepalive::None => (false, false),
                    Keepalive::Ping => (true, false),
                    Keepalive::Pong => (false, true),
                    Keepalive::PingPong => (true, true),
                };
                if ping {
                    bytes.extend_from_slice(b"\r\n\r\n");
                    expected.push(None);
                    keepalives.push(Frame::Ping);
                }
                if pong {
                    bytes.extend_from_slice(b"\r\n");
                    expected.push(None);
                    keepalives.push(Frame::Pong);
                }
                bytes.extend_from_slice(&m.bytes);
                expected.push(Some(m));
            }
            for _ in 0..trailing_pings {
                bytes.extend_from_slice(b"\r\n\r\n");
                expected.push(None);
                keepalives.push(Frame::Ping);
            }
            (bytes, expected, keepalives)
        })
}

/// Chunk sizes from sorted cut points in `0..=len`.
fn sizes_from_cuts(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.push(len);
    points.sort_unstable();
    let mut prev = 0;
    points
        .into_iter()
        .map(|p| {
            let n = p - prev;
            prev = p;
            n
        })
        .collect()
}

fn check_against_model(frames: &[Frame], expected: &[Option<Gen>], keepalives: &[Frame]) {
    assert_eq!(frames.len(), expected.len(), "frame count");
    let mut kas = keepalives.iter();
    for (f, e) in frames.iter().zip(expected) {
        match (f, e) {
            (Frame::Message(m), Some(g)) => {
                assert_eq!(&m.as_bytes()[..], &g.bytes[..]);
                assert_eq!(m.method(), g.method.as_deref());
                assert_eq!(m.status_code(), g.status);
                assert_eq!(m.header_count(), g.headers);
                assert_eq!(m.content_length(), Some(g.body.len() as u64));
                assert_eq!(&m.body()[..], &g.body[..]);
            }
            (k, None) => assert_eq!(Some(k), kas.next()),
            (f, e) => panic!("frame {f:?} where {e:?} was expected"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any split of a valid stream gives the frames of the whole stream, which are the
    /// messages and keepalives generated.
    #[test]
    fn any_split_gives_the_same_frames(
        (bytes, expected, keepalives) in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let limits = Limits::default();
        let whole = feed_chunks(&bytes, &[bytes.len()], &limits);
        prop_assert_eq!(&whole.end, &End::Idle);
        check_against_model(&whole.frames, &expected, &keepalives);
        let split = feed_chunks(&bytes, &sizes_from_cuts(bytes.len(), &cuts), &limits);
        prop_assert_eq!(&split, &whole);
        let bytewise = feed_chunks(&bytes, &vec![1; bytes.len()], &limits);
        prop_assert_eq!(&bytewise, &whole);
    }

    /// Each generated message alone is also a datagram and a parsable message, with the same
    /// index as on the stream.
    #[test]
    fn a_generated_message_frames_on_every_path(m in message()) {
        let b = Bytes::from(m.bytes.clone());
        let parsed = Message::parse(b.clone()).expect("parses");
        let dg = decode_datagram(b, &Limits::default()).expect("decodes");
        prop_assert_eq!(dg, sip_transport_api::Datagram::Message(parsed.clone()));
        let mut dec = StreamDecoder::new(Limits::default());
        dec.extend_from_slice(&m.bytes);
        prop_assert_eq!(dec.decode().expect("frames"), Some(Frame::Message(parsed)));
    }

    /// Arbitrary bytes: no panic on either path or in `Message::parse`, and the fuzz targets'
    /// invariants hold.
    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..700),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let _ = decode_datagram(Bytes::from(data.clone()), &Limits::default());
        let _ = Message::parse(Bytes::from(data.clone()));
        let _ = feed_chunks(&data, &sizes_from_cuts(data.len(), &cuts), &Limits::default());
        bodies::datagram(&data);
        bodies::stream_decoder(&data);
    }

    /// Valid streams with a few bytes changed: the hard cases for a framer (a damaged
    /// Content-Length, a lost CRLF) still never panic and never depend on the split.
    #[test]
    fn mutated_streams_never_panic(
        (bytes, _, _) in stream(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        mode in any::<u8>(),
    ) {
        let mut data = bytes;
        for (at, b) in edits {
            let i = at.index(data.len());
            data[i] = b;
        }
        bodies::datagram(&data);
        let mut input = vec![mode];
        input.extend_from_slice(&data);
        bodies::stream_decoder(&input);
    }
}
