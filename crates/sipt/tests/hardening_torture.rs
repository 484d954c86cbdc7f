//! Issue 9, torture: every RFC 4475 message, and every RFC 5118 message in wire form, sent to
//! the real `sipt serve` over UDP, TCP, TLS and WS, each followed by a normal OPTIONS.
//!
//! Expected outcomes follow the codec's torture tests (`sip-transport-api/tests/torture.rs`)
//! for framing, and sipt's stateless responder for the status: 200, 400 (a mandatory header
//! missing, repeated or unusable, a CSeq method that is not the request's, whitespace in the
//! Request-URI), 505 (SIP/7.0); responses and ACK get nothing. Framing failures get no answer; on TCP/TLS they close that connection (the next
//! message boundary is unknown), on WS and UDP only that message is lost (boundaries survive).
//! Two files frame on a datagram but leave a stream waiting (`clerr`: body never completes,
//! `baddn`: header block never ends); a stream gets no answer and stays open for the header
//! read / idle timeout, which `hardening_overload` tests.
//!
//! UDP answers go where the torture message's Via says (RFC 3261 §18.2.2: `received` plus the
//! sent-by port, 5060 by default), not to this test's socket, so for UDP the test reads the
//! status from `sipt serve`'s per-request log line (`METHOD CALL-ID from udp SRC -> STATUS`).
//! Streams read the response bytes themselves.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::require_shared;

/// Outcome on a datagram path (UDP, one WebSocket message).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dg {
    Answer(u16),
    /// Framed but not answered (a response).
    Absorb,
    /// Not framed: no answer, a `malformed` count.
    Reject,
}

/// Outcome on a byte stream (TCP, TLS).
#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    /// These answers, and the connection stays usable.
    Open(&'static [u16]),
    /// These answers, then the server closes the connection (a framing error).
    Close(&'static [u16]),
    /// No answer; the stream waits for more bytes.
    Wait,
}

use Dg::{Absorb, Answer, Reject};
use St::{Close, Open, Wait};

const OK: St = Open(&[200]);
const BAD: St = Open(&[400]);
const RESP: St = Open(&[]);

/// RFC 4475: file, datagram outcome, stream outcome.
static RFC4475: &[(&str, Dg, St)] = &[
    ("badaspec.dat", Answer(200), OK),
    ("badbranch.dat", Answer(200), OK),
    ("baddate.dat", Answer(200), OK),
    ("baddn.dat", Reject, Wait),
    // Empty Via parameters are tolerated by the Via parser: no 400 from sipt.
    ("badinv01.dat", Answer(200), OK),
    ("badvers.dat", Answer(505), Open(&[505])),
    ("bcast.dat", Absorb, RESP),
    ("bext01.dat", Answer(200), OK),
    ("bigcode.dat", Reject, Close(&[])),
    ("clerr.dat", Reject, Wait),
    ("cparam01.dat", Answer(200), OK),
    ("cparam02.dat", Answer(200), OK),
    // Datagram: the REGISTER only (RFC 3261 §18.3). Stream: REGISTER and INVITE are
    // delivered, then the INVITE's trailing octets are not a message and the connection is
    // closed at once, in the same read: the two answers find the flow gone and go, per
    // RFC 3261 §18.2.2, to the Vias' sent-by (192.0.2.x), so none comes back on this socket.
    // The REGISTER and the INVITE frame, then the 5 stray bytes fail: both answers still go
    // back on the connection before it closes.
    ("dblreq.dat", Answer(200), Close(&[200, 200])),
    ("esc01.dat", Answer(200), OK),
    ("esc02.dat", Answer(200), OK),
    ("escnull.dat", Answer(200), OK),
    ("escruri.dat", Answer(200), OK),
    ("insuf.dat", Answer(400), BAD),
    ("intmeth.dat", Answer(200), OK),
    // No Content-Length: the datagram's rest is the body; a stream cannot delimit it.
    ("inv2543.dat", Answer(200), Close(&[])),
    ("invut.dat", Answer(200), OK),
    ("longreq.dat", Answer(200), OK),
    ("ltgtruri.dat", Answer(200), OK),
    ("lwsdisp.dat", Answer(200), OK),
    ("lwsruri.dat", Answer(400), BAD),
    ("lwsstart.dat", Answer(200), OK),
    ("mcl01.dat", Reject, Close(&[])),
    // RFC 4475 §3.1.2.17: the CSeq method is not the request's (RFC 3261 §8.1.1.5).
    ("mismatch01.dat", Answer(400), BAD),
    // RFC 4475 §3.1.2.18: 501 for the unknown method, 400 also acceptable; sipt answers every
    // method, so the CSeq mismatch decides.
    ("mismatch02.dat", Answer(400), BAD),
    ("mpart01.dat", Answer(200), OK),
    // RFC 4475 §3.3.8: two Call-IDs, Froms, Tos and CSeqs.
    ("multi01.dat", Answer(400), BAD),
    ("ncl.dat", Reject, Close(&[])),
    ("noreason.dat", Absorb, RESP),
    ("novelsc.dat", Answer(200), OK),
    ("quotbal.dat", Answer(200), OK),
    ("regaut01.dat", Answer(200), OK),
    ("regbadct.dat", Answer(200), OK),
    ("regescrt.dat", Answer(200), OK),
    ("scalar02.dat", Answer(400), BAD),
    ("scalarlg.dat", Absorb, RESP),
    ("sdp01.dat", Answer(200), OK),
    ("semiuri.dat", Answer(200), OK),
    ("test.dat", Reject, Close(&[])),
    ("transports.dat", Answer(200), OK),
    ("trws.dat", Answer(200), OK),
    ("unkscm.dat", Answer(200), OK),
    ("unksm2.dat", Answer(200), OK),
    ("unreason.dat", Absorb, RESP),
    ("wsinv.dat", Answer(200), OK),
    ("zeromf.dat", Answer(200), OK),
];

/// RFC 5118 in wire form: all frame; `ipv6-bad` (unbracketed IPv6 Request-URI) is invalid
/// for the RFC, but sipt's responder does not judge URIs, so it is answered too.
static RFC5118: &[(&str, Dg, St)] = &[
    ("ipv4-mapped-ipv6.dat", Answer(200), OK),
    ("ipv6-bad.dat", Answer(200), OK),
    ("ipv6-bug-abnf-3-colons.dat", Answer(200), OK),
    ("ipv6-correct-abnf-2-colons.dat", Answer(200), OK),
    ("ipv6-good.dat", Answer(200), OK),
    ("ipv6-in-sdp.dat", Answer(200), OK),
    ("mult-ip-in-header.dat", Answer(200), OK),
    ("mult-ip-in-sdp.dat", Answer(200), OK),
    ("port-ambiguous.dat", Answer(200), OK),
    ("port-unambiguous.dat", Answer(200), OK),
    ("via-received-param-no-delim.dat", Answer(200), OK),
    ("via-received-param-with-delim.dat", Answer(200), OK),
];

/// RFC 5118's archive is bare-LF and two files lack the empty line (its INDEX.md): LF→CRLF,
/// add the empty line, recompute Content-Length from the converted body.
fn wire_form(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).expect("RFC 5118 files are UTF-8");
    let crlf = text.replace('\n', "\r\n");
    let (head, body) = match crlf.find("\r\n\r\n") {
        Some(i) => (&crlf[..i + 2], &crlf[i + 4..]),
        None => (&crlf[..], ""),
    };
    let mut out = String::new();
    for line in head.split_inclusive("\r\n") {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
        }
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

fn load(dir: &Path, cases: &[(&str, Dg, St)], convert: bool) -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    names.sort();
    let listed: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(names, listed, "every corpus file has an expected outcome");
    cases
        .iter()
        .map(|(n, d, s)| {
            let raw = std::fs::read(dir.join(n)).expect("read");
            let bytes = if convert { wire_form(&raw) } else { raw };
            ((*n).to_owned(), bytes, *d, *s)
        })
        .collect()
}

/// A corpus file: name, wire bytes, datagram and stream outcomes.
type Case = (String, Vec<u8>, Dg, St);

fn corpora() -> Option<Vec<Case>> {
    let a = require_shared("torture/rfc4475")?;
    let b = require_shared("torture/rfc5118")?;
    let mut all = load(&a, RFC4475, false);
    all.extend(load(&b, RFC5118, true));
    Some(all)
}

const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How long "no answer" is watched for.
const QUIET: Duration = Duration::from_millis(300);

fn server_with_all(pki: &TestPki) -> Server {
    let cert = pki.server.cert_path.to_str().expect("path");
    let key = pki.server.key_path.to_str().expect("path");
    // Not --quiet: the per-request lines are how UDP answers are observed.
    Server::start(
        &[
            "udp:127.0.0.1:0",
            "tcp:127.0.0.1:0",
            "tls:127.0.0.1:0",
            "ws:127.0.0.1:0",
        ],
        &["--cert", cert, "--key", key],
    )
}

/// Waits for the log line of `call_id` over UDP, returning the status of every other request
/// line seen before it (lines are printed in arrival order by one receive loop).
fn udp_lines_until(srv: &Server, call_id: &str) -> Vec<u16> {
    let deadline = Instant::now() + ANSWER_WAIT;
    let mut before = Vec::new();
    loop {
        let line = srv
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no log line for {call_id}"));
        if !line.contains(" from udp ") {
            continue;
        }
        let status: u16 = line
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if line.split_whitespace().nth(1) == Some(call_id) {
            assert_eq!(status, 200, "{line}");
            return before;
        }
        before.push(status);
    }
}

#[test]
fn torture_over_udp() {
    let Some(files) = corpora() else { return };
    let pki = TestPki::generate();
    let srv = server_with_all(&pki);
    let dest = srv.addr("udp");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(ANSWER_WAIT)).ok();
    let me = sock.local_addr().expect("addr");
    let mut buf = [0u8; 4096];
    let mut rejected = 0;
    let mut failures = Vec::new();
    for (i, (name, bytes, dg, _)) in files.iter().enumerate() {
        sock.send_to(bytes, dest).expect("send torture");
        let probe = format!("probe-udp-{i}");
        sock.send_to(&options("UDP", &me.to_string(), &probe), dest)
            .expect("send probe");
        let seen = udp_lines_until(&srv, &probe);
        let want: Vec<u16> = match dg {
            Answer(c) => vec![*c],
            Absorb | Reject => vec![],
        };
        if seen != want {
            failures.push(format!("{name} over udp: got {seen:?}, want {want:?}"));
        }
        rejected += usize::from(*dg == Reject);
        // The probe's own answer comes back to us (rport).
        let (n, _) = sock.recv_from(&mut buf).expect("probe answered");
        assert_eq!(status_of(&buf[..n]), 200, "{name}: probe after it");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let summary = srv.terminate();
    assert_eq!(
        summary_field(&summary, "malformed"),
        rejected as u64,
        "{summary}"
    );
}

fn torture_over_stream(proto: &str, pki: &TestPki, connect: &dyn Fn(&Server) -> Client) {
    let Some(files) = corpora() else { return };
    let srv = server_with_all(pki);
    let mut closed = 0;
    let mut failures = Vec::new();
    let via_proto = proto.to_ascii_uppercase();
    for (i, (name, bytes, _, st)) in files.iter().enumerate() {
        let mut c = connect(&srv);
        c.send(bytes).expect("send torture");
        let probe = options(&via_proto, "127.0.0.1:9", &format!("probe-{proto}-{i}"));
        let mut fail = |what: String| failures.push(format!("{name} over {proto}: {what}"));
        match st {
            Open(codes) => {
                let got = c.read_responses(codes.len(), ANSWER_WAIT);
                if got != Read1::Responses(codes.to_vec()) {
                    fail(format!("got {got:?}, want {codes:?} and open"));
                } else if codes.is_empty() && c.read_responses(1, QUIET) != Read1::Responses(vec![])
                {
                    fail("a late answer".into());
                } else {
                    // The same connection still carries a normal OPTIONS.
                    c.send(&probe).expect("probe on the same connection");
                    let got = c.read_responses(1, ANSWER_WAIT);
                    if got != Read1::Responses(vec![200]) {
                        fail(format!("probe on the same connection: {got:?}"));
                    }
                }
            }
            Close(codes) => {
                let got = c.read_responses(codes.len() + 1, ANSWER_WAIT);
                if got != Read1::Closed(codes.to_vec()) {
                    fail(format!("got {got:?}, want {codes:?} then closed"));
                }
                closed += 1;
            }
            Wait => {
                let got = c.read_responses(1, QUIET);
                if got != Read1::Responses(vec![]) {
                    fail(format!("got {got:?}, want no answer and open"));
                }
            }
        }
        drop(c);
        // A fresh connection is served.
        let mut fresh = connect(&srv);
        fresh.send(&probe).expect("probe");
        assert_eq!(
            fresh.read_responses(1, ANSWER_WAIT),
            Read1::Responses(vec![200]),
            "{name} over {proto}: probe on a new connection"
        );
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let summary = srv.terminate();
    assert!(summary_field(&summary, "malformed") >= closed, "{summary}");
}

#[test]
fn torture_over_tcp() {
    let pki = TestPki::generate();
    torture_over_stream("tcp", &pki, &|s| Client::tcp(s.addr("tcp")));
}

#[test]
fn torture_over_tls() {
    let pki = TestPki::generate();
    let cfg = tls_client_config(&pki);
    torture_over_stream("tls", &pki, &move |s| Client::tls(s.addr("tls"), &cfg));
}

/// Over WebSocket each torture file is one message: the datagram outcomes apply, and the
/// connection survives every one of them.
#[test]
fn torture_over_ws() {
    let Some(files) = corpora() else { return };
    let pki = TestPki::generate();
    let srv = server_with_all(&pki);
    let addr: SocketAddr = srv.addr("ws");
    let mut c = Client::ws(addr);
    let mut rejected = 0;
    let mut failures = Vec::new();
    for (i, (name, bytes, dg, _)) in files.iter().enumerate() {
        c.send(bytes).expect("send torture");
        let want: Vec<u16> = match dg {
            Answer(code) => vec![*code],
            Absorb | Reject => vec![],
        };
        rejected += usize::from(*dg == Reject);
        let probe = options("WS", "hardening.invalid", &format!("probe-ws-{i}"));
        c.send(&probe).expect("probe");
        let mut expect = want.clone();
        expect.push(200);
        let got = c.read_responses(expect.len(), ANSWER_WAIT);
        if got != Read1::Responses(expect.clone()) {
            failures.push(format!("{name} over ws: got {got:?}, want {expect:?}"));
            if matches!(got, Read1::Closed(_)) {
                c = Client::ws(addr);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let summary = srv.terminate();
    assert_eq!(
        summary_field(&summary, "malformed"),
        rejected as u64,
        "{summary}"
    );
}
