//! How `sipt serve` sends its replies, against the real binary over loopback: a reply whose
//! connection is gone and whose Via points at a host that never answers must not hold up the
//! other clients (RFC 3261 §18.2.2's fallback dials the Via's address, which can take the
//! connect timeout). `serve.rs`'s unit tests do the same deterministically, in process.
//! And what a stateless UAS sends back (RFC 3261 §8.2.7): nothing to CANCEL, and a 2xx to
//! INVITE with a Contact naming the listener it arrived on (§12.1.1, §13.3.1.4).
//!
//! The connection is reset right after the request, not closed by junk after it: a framing
//! error after a request keeps the write side open for its answer (lingering close), so the
//! reply still finds its flow.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{Client, Read1, Server, options};

/// Sends `bytes` and resets the connection at once (SO_LINGER 0): the request is delivered,
/// then its connection is gone before the reply can use it.
fn send_and_reset(to: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(to).expect("connect");
    s.set_nodelay(true).ok();
    s.write_all(bytes).expect("send");
    let s = socket_with_linger_0(s);
    drop(s);
}

fn socket_with_linger_0(s: TcpStream) -> tokio::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let _g = rt.enter();
    s.set_nonblocking(true).expect("nonblocking");
    let t = tokio::net::TcpStream::from_std(s).expect("tokio stream");
    // Deprecated because a non-zero linger blocks on drop; zero sends the RST at once.
    #[allow(deprecated)]
    t.set_linger(Some(Duration::ZERO)).expect("linger");
    t
}

#[test]
fn a_reply_that_must_dial_a_silent_host_holds_up_no_one() {
    let stall = sip_transport_testkit::SilentListener::start();
    let srv = Server::start(&["tcp:127.0.0.1:0"], &["--quiet"]);
    let addr = srv.addr("tcp");
    // Requests whose Via names the silent host, each on a connection reset right after it:
    // the reply finds its flow gone and must dial the Via's address (RFC 3261 §18.2.2).
    // Several, because whether the reset is seen before the reply is a race (about half
    // of them win it here).
    for n in 0..16 {
        send_and_reset(
            addr,
            &options("TCP", &stall.addr.to_string(), &format!("stall-{n}")),
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    // Another client is answered at once.
    let mut c = Client::tcp(addr);
    let started = Instant::now();
    c.send(&options("TCP", "127.0.0.1:9", "victim"))
        .expect("send");
    let got = c.read_responses(1, Duration::from_secs(2));
    assert_eq!(
        got,
        Read1::Responses(vec![200]),
        "a second client waited {:?} behind the dial to {}",
        started.elapsed(),
        stall.addr
    );
}

/// `options()` turned into another method (CSeq too).
fn request(method: &str, via_proto: &str, via: &str, call_id: &str) -> Vec<u8> {
    String::from_utf8(options(via_proto, via, call_id))
        .expect("utf-8")
        .replace("OPTIONS sip:", &format!("{method} sip:"))
        .replace("1 OPTIONS", &format!("1 {method}"))
        .into_bytes()
}

/// The header block of the next response on `s`, or `None` after `wait`.
fn next_response(s: &mut TcpStream, wait: Duration) -> Option<String> {
    s.set_read_timeout(Some(wait)).ok();
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn cancel_is_ignored_and_invite_2xx_has_a_contact() {
    let srv = Server::start(&["tcp:127.0.0.1:0", "udp:127.0.0.1:0"], &["--quiet"]);
    let tcp = srv.addr("tcp");
    let mut s = TcpStream::connect(tcp).expect("connect");
    let me = s.local_addr().expect("addr").to_string();
    // RFC 3261 §8.2.7: no answer to CANCEL; the next request on the connection is answered.
    s.write_all(&request("CANCEL", "TCP", &me, "cancel-1"))
        .expect("send");
    s.write_all(&request("INVITE", "TCP", &me, "invite-1"))
        .expect("send");
    let resp = next_response(&mut s, Duration::from_secs(5)).expect("an answer");
    assert_eq!(header(&resp, "Call-ID"), Some("invite-1"), "{resp}");
    assert!(resp.starts_with("SIP/2.0 200 OK\r\n"), "{resp}");
    assert_eq!(
        header(&resp, "Contact"),
        Some(format!("<sip:{tcp};transport=tcp>").as_str()),
        "{resp}"
    );
    assert_eq!(next_response(&mut s, Duration::from_millis(300)), None);

    // Over UDP, the udp listener's address.
    let udp = srv.addr("udp");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let me = sock.local_addr().expect("addr").to_string();
    sock.send_to(&request("CANCEL", "UDP", &me, "cancel-2"), udp)
        .expect("send");
    sock.send_to(&request("INVITE", "UDP", &me, "invite-2"), udp)
        .expect("send");
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer");
    let resp = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(header(&resp, "Call-ID"), Some("invite-2"), "{resp}");
    assert_eq!(
        header(&resp, "Contact"),
        Some(format!("<sip:{udp};transport=udp>").as_str()),
        "{resp}"
    );
    sock.set_read_timeout(Some(Duration::from_millis(300))).ok();
    assert!(sock.recv_from(&mut buf).is_err(), "a second answer");
}

/// `sipt serve`'s limit knobs reach the transports: a third connection from one address over
/// `--max-connections-per-ip 2` is closed at accept while the first two are served, a silent
/// connection is closed after `--idle-timeout`, and a message over `--max-message-size`
/// closes its connection.
#[test]
fn limit_knobs_apply() {
    let srv = Server::start(
        &["tcp:127.0.0.1:0"],
        &[
            "--quiet",
            "--max-connections-per-ip",
            "2",
            "--idle-timeout",
            "2",
            "--max-message-size",
            "2048",
        ],
    );
    let addr = srv.addr("tcp");
    let via = |c: &Client| c.local_addr().to_string();
    let mut a = Client::tcp(addr);
    let mut b = Client::tcp(addr);
    let mut c = Client::tcp(addr);
    for (n, cl) in [(1, &mut a), (2, &mut b)] {
        cl.send(&options("TCP", &via(cl), &format!("knob-{n}")))
            .expect("send");
        assert_eq!(
            cl.read_responses(1, Duration::from_secs(5)),
            Read1::Responses(vec![200]),
            "connection {n}"
        );
    }
    // The third is over the per-address limit: closed without an answer.
    let _ = c.send(&options("TCP", &via(&c), "knob-3"));
    assert_eq!(
        c.read_responses(1, Duration::from_secs(5)),
        Read1::Closed(vec![])
    );
    // A message over 2,048 bytes closes its connection (b), unanswered.
    let mut big = options("TCP", &via(&b), "knob-big");
    let pad = format!("X-Pad: {}\r\n", "p".repeat(2100));
    let at = big.len() - 2;
    big.splice(at..at, pad.into_bytes());
    b.send(&big).expect("send");
    assert_eq!(
        b.read_responses(1, Duration::from_secs(5)),
        Read1::Closed(vec![])
    );
    // `a`, silent since its answer, is closed by the 2 s idle timeout.
    let t0 = Instant::now();
    assert_eq!(
        a.read_responses(1, Duration::from_secs(10)),
        Read1::Closed(vec![])
    );
    assert!(t0.elapsed() < Duration::from_secs(9), "{:?}", t0.elapsed());
    srv.terminate();
}
