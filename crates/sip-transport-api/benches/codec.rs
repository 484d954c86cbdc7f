//! Codec benchmarks: decode + index of three messages on the datagram and the stream path,
//! each next to a bare `memmem` search for the end of the header block over the same bytes
//! (the least any framer must do), so the ratio can be read off.
//!
//! Messages are built here, so the benchmark does not depend on `shared/`: a typical INVITE
//! with SDP (~550 bytes), a 200 OK, and a ~3.5 KB request shaped like RFC 4475's longreq.dat
//! (34 Via values in every spelling, long lines, compact names).
//!
//! `cargo bench -p sip-transport-api --bench codec -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sip_transport_api::{Datagram, Frame, Limits, StreamDecoder, decode_datagram};

/// A typical INVITE with SDP (RFC 3665 style), about 550 bytes.
fn invite() -> String {
    let sdp = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n{sdp}",
        sdp.len()
    )
}

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bKnashds8;received=192.0.2.3\r\n\
Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Content-Length: 0\r\n\
\r\n";

/// A request shaped like RFC 4475 §3.1.1.7 (longreq.dat): long values, 34 Vias, compact names.
fn long_request() -> String {
    let long = |word: &str, n: usize| word.repeat(n);
    let mut s = String::from("INVITE sip:user@example.com SIP/2.0\r\n");
    s += &format!(
        "To: \"I have a user name of {} proportion\"<sip:user@example.com:6000;unknownparam1=very{}value;longparam{}=shortvalue;very{}ParameterNameWithNoValue>\r\n",
        long("extreme", 10),
        long("long", 60),
        long("long", 20),
        long("Long", 40)
    );
    s += &format!(
        "F: sip:{}@example.net;tag=12{}982\r\n",
        long("amazinglylongcallername", 5),
        long("98", 30)
    );
    s += &format!("Call-ID: longreq.one{}longcallid\r\n", long("really", 20));
    s += "CSeq: 3882340 INVITE\r\n";
    s += &format!(
        "Unknown-{}-Name: unknown-{}-value; unknown-{}-parameter-name = unknown-{}-parameter-value\r\n",
        long("LongLong", 10),
        long("long", 30),
        long("long", 30),
        long("long", 30)
    );
    let spellings = [
        "Via: ", "v: ", "V: ", "ViA: ", "VIa: ", "VIA: ", "via: ", "V :  ", "v  : ", "Via  : ",
    ];
    for i in (1..=33).rev() {
        s += spellings[i % spellings.len()];
        s += &format!("SIP/2.0/TCP sip{i}.example.com\r\n");
    }
    s += &format!(
        "Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very{}branch\r\n",
        long("long", 35)
    );
    s += "Max-Forwards: 70\r\n";
    s += &format!(
        "Contact: <sip:{}@host5.example.net>\r\n",
        long("amazinglylongcallername", 5)
    );
    s += "Content-Type: application/sdp\r\n";
    let body = "v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n";
    s += &format!("l: {}\r\n\r\n{body}", body.len());
    s
}

fn bench_message(c: &mut Criterion, name: &str, msg: &[u8]) {
    let limits = Limits::default();
    let bytes = Bytes::copy_from_slice(msg);
    // The messages must frame, or the numbers mean nothing.
    assert!(matches!(
        decode_datagram(bytes.clone(), &limits),
        Ok(Datagram::Message(m)) if m.len() == msg.len()
    ));

    eprintln!("{name}: {} bytes", msg.len());
    let mut g = c.benchmark_group(name);
    g.bench_function("memmem_head_end", |b| {
        b.iter(|| memchr::memmem::find(black_box(&bytes[..]), b"\r\n\r\n"))
    });
    // The decode as the UDP and WebSocket receive paths use it: the harness hands over a
    // fresh `Bytes` each iteration (backed by a static buffer, so handing it over costs no
    // reference counting), and the message, index included, is dropped inside the timing.
    let leaked: &'static [u8] = Box::leak(msg.to_vec().into_boxed_slice());
    let fresh = Bytes::from_static(leaked);
    g.bench_function("datagram_decode_index_fresh", |b| {
        b.iter(
            || match decode_datagram(black_box(fresh.clone()), &limits) {
                Ok(Datagram::Message(m)) => m,
                _ => unreachable!(),
            },
        )
    });
    // The same with the harness cloning a shared `Bytes` each iteration: adds the two atomic
    // reference-count operations of `clone()` and of the clone's drop.
    g.bench_function("datagram_decode_index_shared", |b| {
        b.iter(
            || match decode_datagram(black_box(bytes.clone()), &limits) {
                Ok(Datagram::Message(m)) => m,
                _ => unreachable!(),
            },
        )
    });
    // The stream path as a connection uses it: bytes land in the decoder's buffer, the
    // message leaves it as a zero-copy split. Includes copying the bytes in (a socket read
    // would write them there).
    let mut dec = StreamDecoder::new(limits.clone());
    g.bench_function("stream_decode_index", |b| {
        b.iter(|| {
            dec.extend_from_slice(black_box(msg));
            match dec.decode() {
                Ok(Some(Frame::Message(m))) => m,
                _ => unreachable!(),
            }
        })
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    bench_message(c, "invite_sdp", invite().as_bytes());
    bench_message(c, "ok_200", OK.as_bytes());
    bench_message(c, "long_request", long_request().as_bytes());
}

criterion_group!(benches, codec);
criterion_main!(benches);
