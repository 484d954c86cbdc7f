//! The fuzz targets' bodies (`fuzz/bodies/codec.rs`, the same file cargo-fuzz builds) run as
//! ordinary tests over a seed corpus: a few messages written here, the RFC 4475/5118 torture
//! files when `shared/torture` is present, and every input saved under `fuzz/regressions/`.
//!
//! This is how plain `cargo test` exercises the fuzz invariants without cargo-fuzz or a
//! nightly toolchain; `cargo xtask fuzz` does the actual fuzzing.

mod support;

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/bodies/codec.rs"]
mod bodies;

/// Seeds that need no corpus: the shapes the codec must handle, and a few that broke it.
const BUILTIN: &[&[u8]] = &[
    b"",
    b"\r\n",
    b"\r\n\r\n",
    b"\r\n\r\n\r\n",
    b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1;rport\r\nContent-Length: 0\r\n\r\n",
    b"OPTIONS sip:x SIP/2.0\r\nv: SIP/2.0/TCP 192.0.2.1:5070;received=10.0.0.1\r\nl: 3\r\n\r\nabc\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060;rport=9;received=[2001:db8::2]\r\nContent-Length: 2\r\n\r\nhi",
    b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a.example\r\n ;branch=z9hG4bKx ,\r\n SIP/2.0/UDP b\r\nSubject: folded\r\n\tline\r\nContent-Length: 1\r\n\r\n\x00",
    b"MESSAGE sip:a SIP/2.0\r\nVia: SIP/2.0/WS h;maddr=224.0.1.75;ttl=3\r\nl: 4\r\n\r\n\r\n\r\n",
    b"REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;rport;rport;received;received=1.2.3.4\r\nl:0\r\n\r\n",
    b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"SIP/2.0 4294967301 big\r\n\r\n",
    b"OPTIONS sip:x SIP/2.0\r\nNo colon here\r\n\r\n",
    b" \r\n\tOPTIONS sip:x SIP/2.0\r\n\r\nrest is the body",
];

/// No Content-Length and a body over the small limits' `max_body_size` (200).
fn long_body_without_content_length() -> Vec<u8> {
    let mut m = b"MESSAGE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n".to_vec();
    m.extend_from_slice(&[b'x'; 300]);
    m
}

/// Split modes the stream target is seeded with (its first input byte).
const MODES: &[u8] = &[0, 1, 2, 7, 64, 255];

fn regression_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("readable");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// The torture files, raw, plus RFC 5118's with CRLF line ends.
fn torture_seeds() -> Vec<Vec<u8>> {
    let Some(dir) = support::torture_dir() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, bytes) in support::corpus(&dir.join("rfc4475")) {
        out.push(bytes);
    }
    for (_, bytes) in support::corpus(&dir.join("rfc5118")) {
        let crlf = String::from_utf8_lossy(&bytes).replace('\n', "\r\n");
        out.push(bytes);
        out.push(crlf.into_bytes());
    }
    assert_eq!(out.len(), 50 + 24);
    out
}

fn all_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = BUILTIN.iter().map(|s| s.to_vec()).collect();
    seeds.push(long_body_without_content_length());
    seeds.extend(torture_seeds());
    seeds
}

#[test]
fn datagram_target_over_seeds() {
    for seed in all_seeds() {
        bodies::datagram(&seed);
        // Truncations hit every "not enough bytes" path.
        for cut in (0..seed.len()).step_by(seed.len() / 16 + 1) {
            bodies::datagram(&seed[..cut]);
        }
    }
    for (path, input) in regression_inputs("datagram") {
        eprintln!("regression {}", path.display());
        bodies::datagram(&input);
    }
}

#[test]
fn stream_decoder_target_over_seeds() {
    let seeds = all_seeds();
    for seed in &seeds {
        for &mode in MODES {
            let mut input = vec![mode];
            input.extend_from_slice(seed);
            bodies::stream_decoder(&input);
        }
    }
    // Everything back to back, as one connection would carry it.
    let mut all = vec![3u8];
    for seed in &seeds {
        all.extend_from_slice(seed);
    }
    bodies::stream_decoder(&all);
    for (path, input) in regression_inputs("stream_decoder") {
        eprintln!("regression {}", path.display());
        bodies::stream_decoder(&input);
    }
}
