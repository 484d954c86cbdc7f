//! Runs the built `sipt` binary: serve + ping over each transport, bench with zero failures,
//! serve answering SIPp, ping against Kamailio, signals and exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{SIPT, Server};

use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::{Kamailio, SippTransport, sipp_options_uac};

/// `sipt bench <uri> <extra> --duration 2 --connections 2 --json`: exits 0 with no failed or
/// timed-out transaction; returns the JSON summary.
fn bench_clean(uri: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["bench", uri];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--duration", "2", "--connections", "2", "--json"]);
    let (code, out, err) = sipt(&args);
    assert_eq!(code, Some(0), "{uri}: {out}{err}");
    let last = out.lines().last().expect("json line");
    let v: serde_json::Value = serde_json::from_str(last).expect("json");
    assert_eq!(v["failed"], 0, "{uri}: {last}");
    assert_eq!(v["timeouts"], 0, "{uri}: {last}");
    v
}

fn sipt(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(SIPT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sipt");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_and_ping_udp_and_tcp() {
    let srv = Server::start(
        &["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tcp:[::1]:0"],
        &["--quiet"],
    );
    for (proto, uri) in [
        ("udp", format!("sip:{}", srv.addr("udp"))),
        ("tcp", format!("sip:{};transport=tcp", srv.addr("tcp"))),
    ] {
        let (code, out, err) = sipt(&["ping", &uri, "--count", "3", "--interval", "10"]);
        assert_eq!(code, Some(0), "{proto}: {out}{err}");
        assert_eq!(
            out.lines().filter(|l| l.starts_with("200 OK from")).count(),
            3,
            "{out}"
        );
        assert!(out.contains("server=\"sipt\""), "{out}");
    }
    // IPv6, JSON output.
    let v6 = srv
        .listening
        .iter()
        .find(|(p, a)| p == "tcp" && a.is_ipv6())
        .map(|(_, a)| *a)
        .expect("v6");
    let (code, out, err) = sipt(&["ping", &format!("sip:{v6};transport=tcp"), "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json line");
    assert_eq!(v["status"], 200);
    assert_eq!(v["transport"], "tcp");
    assert!(v["rtt_ms"].as_f64().is_some_and(|r| r > 0.0));

    let (summary, code) = srv.terminate_with_status();
    assert!(summary.starts_with("summary: received="), "{summary}");
    let received: u64 = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("received="))
        .and_then(|n| n.parse().ok())
        .expect("received count");
    assert!(received >= 7, "{summary}");
    assert_eq!(code, Some(0));
}

#[test]
fn ping_exit_codes() {
    // Nothing listens there: every request unanswered.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    drop(sock);
    let (code, out, _) = sipt(&["ping", &format!("sip:127.0.0.1:{port}"), "--timeout", "300"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("timeout seq=1"), "{out}");
    // Usage errors.
    assert_eq!(sipt(&["ping", "http://x"]).0, Some(2));
    assert_eq!(sipt(&["ping", "sip:2001:db8::1"]).0, Some(2));
    assert_eq!(sipt(&["ping", "sip:no-such-host.invalid"]).0, Some(2));
    assert_eq!(sipt(&["serve", "--listen", "bogus"]).0, Some(2));
}

#[test]
fn serve_dscp_marks_listeners_and_connections() {
    // Out of range or unknown: a usage error naming the range, not a panic.
    let (code, _, err) = sipt(&["serve", "--dscp", "64", "--listen", "udp:127.0.0.1:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("0..=63"), "{err}");
    assert_eq!(sipt(&["serve", "--dscp", "cs9"]).0, Some(2));
    let (_, help, _) = sipt(&["serve", "--help"]);
    assert!(
        help.contains("--dscp <DSCP>") && help.contains("cs3"),
        "{help}"
    );
    // The listener and the connection it accepts carry CS3 (TOS byte 0x60) and kernel
    // keepalive; the test's own client socket carries neither.
    if !cfg!(target_os = "linux") {
        return;
    }
    let server = Server::start(&["tcp:127.0.0.1:0"], &["--quiet", "--dscp", "cs3"]);
    let addr = server.addr("tcp");
    let _client = std::net::TcpStream::connect(addr).expect("connect");
    let os_idle = sip_transport_testkit::ss::os_keepalive_idle_secs();
    use sip_transport_testkit::ss::{Expected, check_stream_sockets};
    let marked = Expected {
        tos: 0x60,
        keepalive_at_most: Some(Duration::from_secs(os_idle)),
    };
    let plain = Expected {
        tos: 0,
        keepalive_at_most: None,
    };
    check_stream_sockets(addr, marked, marked, plain);
    server.terminate();
}

#[test]
fn ping_reports_send_errors_and_keeps_the_interval() {
    // Nothing listens there: every TCP connect is refused at once.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let uri = format!("sip:127.0.0.1:{port};transport=tcp");
    let started = std::time::Instant::now();
    let (code, out, err) = sipt(&["ping", &uri, "--count", "3", "--interval", "300"]);
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{out}{err}");
    // Two intervals between three attempts.
    assert!(took >= Duration::from_millis(590), "took {took:?}: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!("error seq={}: ", i + 1)), "{out}");
        assert!(l.contains("refused"), "{out}");
    }
    assert!(!out.contains("timeout"), "{out}");
    // JSON: the error says what happened.
    let (code, out, _) = sipt(&["ping", &uri, "--json"]);
    assert_eq!(code, Some(1), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert!(v["status"].is_null(), "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("refused")),
        "{v}"
    );
}

/// A connection the peer closes or resets before answering is reported at once, as an error
/// that says so, not as a timeout after `--timeout`; the interval still holds.
#[test]
fn ping_reports_a_closed_connection_at_once() {
    // `sipt serve --proxy-protocol` resets a connection that does not start with a PROXY
    // header.
    let srv = Server::start(&["tcp:127.0.0.1:0"], &["--quiet", "--proxy-protocol"]);
    let uri = format!("sip:{};transport=tcp", srv.addr("tcp"));
    let started = std::time::Instant::now();
    let (code, out, err) = sipt(&[
        "ping",
        &uri,
        "--count",
        "2",
        "--interval",
        "300",
        "--timeout",
        "10000",
    ]);
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {out}");
    assert!(took >= Duration::from_millis(290), "took {took:?}: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.starts_with(&format!("error seq={}: connection ", i + 1)),
            "{out}"
        );
        assert!(l.contains("by the peer"), "{out}");
    }
    drop(srv);

    // A listener that reads the request and closes (FIN): the same, and in JSON.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let closer = std::thread::spawn(move || {
        use std::io::Read;
        if let Ok((mut s, _)) = l.accept() {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        }
    });
    let started = std::time::Instant::now();
    let (code, out, err) = sipt(&[
        "ping",
        &format!("sip:{addr};transport=tcp"),
        "--timeout",
        "10000",
        "--json",
    ]);
    let took = started.elapsed();
    closer.join().expect("closer");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert!(v["status"].is_null(), "{v}");
    assert_eq!(v["error"], "connection closed by the peer", "{v}");
}

#[test]
fn bench_without_failures() {
    let srv = Server::start(&["udp:127.0.0.1:0", "tcp:127.0.0.1:0"], &["--quiet"]);
    for uri in [
        format!("sip:{}", srv.addr("udp")),
        format!("sip:{};transport=tcp", srv.addr("tcp")),
    ] {
        let v = bench_clean(&uri, &["--concurrency", "16"]);
        assert!(v["ok"].as_u64().is_some_and(|n| n > 100), "{v}");
        assert!(v["tps"].as_f64().is_some_and(|t| t > 0.0), "{v}");
        for k in ["sent", "p50_ms", "p99_ms"] {
            assert!(v.get(k).is_some(), "missing {k}: {v}");
        }
    }
}

#[test]
fn bench_rate_is_the_total_with_more_connections_than_rate() {
    let srv = Server::start(&["udp:127.0.0.1:0"], &["--quiet"]);
    let uri = format!("sip:{}", srv.addr("udp"));
    let (code, out, err) = sipt(&[
        "bench",
        &uri,
        "--rate",
        "4",
        "--connections",
        "10",
        "--duration",
        "2",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("json line")).expect("json");
    // 4/s for 2 s: 8 requests, whatever the number of connections (it was 1/s per connection).
    let sent = v["sent"].as_u64().expect("sent");
    assert!((7..=9).contains(&sent), "{v}");
}

#[test]
fn bench_duration_0_runs_until_requests() {
    // Both 0: nothing would end the run, a usage error.
    let (code, out, err) = sipt(&[
        "bench",
        "sip:127.0.0.1:5060",
        "--duration",
        "0",
        "--requests",
        "0",
    ]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("--duration 0 and --requests 0 would never stop"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    // --duration 0 with --requests: exactly that many, however long they take (it used to
    // be a 1 s run).
    let srv = Server::start(&["udp:127.0.0.1:0"], &["--quiet"]);
    let uri = format!("sip:{}", srv.addr("udp"));
    let (code, out, err) = sipt(&[
        "bench",
        &uri,
        "--duration",
        "0",
        "--requests",
        "300",
        "--rate",
        "200",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("json line")).expect("json");
    assert_eq!(v["sent"], 300, "{v}");
    assert_eq!(v["ok"], 300, "{v}");
    // The text summary names "failed" as the JSON does.
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("sent 300, answered 300 (ok 300, non-2xx 0), send errors 0, failed 0, timed out 0, retransmits "),
        "{out}"
    );
    // 300 at 200/s: about 1.5 s, past the old 1 s cut.
    assert!(v["duration_s"].as_f64().is_some_and(|d| d > 1.2), "{v}");
}

#[test]
fn help_states_exit_codes_ports_and_quiet() {
    let (code, out, _) = sipt(&["--help"]);
    assert_eq!(code, Some(0));
    for want in [
        "  ping:  0 every request got a final response",
        "  bench: 0 every transaction got a 2xx; 1 any non-2xx, send error or timeout, or no \
         2xx at all;",
        "  serve: 0 stopped by SIGINT or SIGTERM;",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    let (_, out, _) = sipt(&["ping", "--help"]);
    for want in [
        "5060 for udp and tcp, 5061 for tls",
        "80 for ws, 443 for wss",
        "ws on 8080 and wss on 8443",
        "Exit codes: 0 every request",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    let (_, out, _) = sipt(&["serve", "--help"]);
    assert!(out.contains("the line with its fingerprint"), "{out}");
    let (_, out, _) = sipt(&["bench", "--help"]);
    assert!(
        out.contains("0: no time limit, stop after --requests"),
        "{out}"
    );
}

#[test]
fn serve_answers_sipp() {
    let srv = Server::start(&["udp:127.0.0.1:0", "tcp:127.0.0.1:0"], &["--quiet"]);
    for (t, addr) in [
        (SippTransport::Udp, srv.addr("udp")),
        (SippTransport::Tcp, srv.addr("tcp")),
    ] {
        let Some(o) = sipp_options_uac(addr, t, 2_000, 2_000, Duration::from_secs(30)) else {
            return;
        };
        assert_eq!(o.exit_code, Some(0), "{t:?}: {}", o.screen);
        assert_eq!((o.successful, o.failed), (2_000, 0), "{t:?}: {}", o.screen);
    }
}

#[test]
fn ping_kamailio() {
    let Some(_kam) = Kamailio::start("kamailio-sl") else {
        return;
    };
    for uri in ["sip:127.0.0.1:5070", "sip:127.0.0.1:5070;transport=tcp"] {
        let (code, out, err) = sipt(&["ping", uri, "--count", "2", "--interval", "10"]);
        assert_eq!(code, Some(0), "{uri}: {out}{err}");
        assert_eq!(
            out.lines().filter(|l| l.starts_with("200 ")).count(),
            2,
            "{out}"
        );
    }
}

#[test]
fn serve_and_ping_tls() {
    // Self-signed: trusted only with --insecure; an unknown issuer is a certificate error (2).
    let srv = Server::start(&["tls:127.0.0.1:0"], &["--quiet"]);
    let uri = format!("sip:{};transport=tls", srv.addr("tls"));
    let (code, out, err) = sipt(&[
        "ping",
        &uri,
        "--insecure",
        "--count",
        "2",
        "--interval",
        "10",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("200 OK from")).count(),
        2,
        "{out}"
    );
    let (code, out, err) = sipt(&["ping", &uri]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // The error says which flags help, on one line, for ping and bench alike.
    let port = srv.addr("tls").port();
    let hint = "; hint: a self-signed server (such as `sipt serve` without --cert) needs \
                --insecure, otherwise pass --ca FILE with the CA that signed the server's \
                certificate";
    let sips = format!("sips:127.0.0.1:{port}");
    let (code, out, err) = sipt(&["ping", &sips]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("sipt ping: cannot send to "), "{err}");
    assert!(err.contains("unknown certificate authority"), "{err}");
    assert!(err.trim_end().ends_with(hint), "{err}");
    let (code, out, err) = sipt(&["bench", &sips, "--duration", "1"]);
    assert_eq!(code, Some(2), "{out}{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("sipt bench: "), "{err}");
    assert!(last.ends_with(hint), "{err}");
    drop(srv);

    // A CA-issued certificate from files, verified by name with --ca.
    let pki = TestPki::generate();
    let cert = pki.server.cert_path.to_str().expect("path").to_owned();
    let key = pki.server.key_path.to_str().expect("path").to_owned();
    let srv = Server::start(
        &["tls:127.0.0.1:0"],
        &["--quiet", "--cert", &cert, "--key", &key],
    );
    let port = srv.addr("tls").port();
    let ca = pki.ca_cert_path.to_str().expect("path").to_owned();
    for uri in [
        format!("sips:localhost:{port}"),
        format!("sip:127.0.0.1:{port};transport=tls"),
    ] {
        let (code, out, err) = sipt(&["ping", &uri, "--ca", &ca]);
        assert_eq!(code, Some(0), "{uri}: {out}{err}");
    }
    bench_clean(&format!("sips:localhost:{port}"), &["--ca", &ca]);
}

#[test]
fn serve_prints_fingerprint_of_its_certificate() {
    let mut cmd = Command::new(SIPT);
    let mut child = cmd
        .args(["serve", "--quiet", "--listen", "tls:127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let first = BufReader::new(out)
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let fp = first.rsplit(' ').next().unwrap_or_default();
    assert!(first.starts_with("certificate self-signed"), "{first}");
    assert_eq!(fp.len(), 95, "{first}");
    assert!(
        fp.split(':')
            .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok()),
        "{first}"
    );
}

#[test]
fn serve_and_ping_ws_and_wss() {
    let srv = Server::start(&["ws:127.0.0.1:0", "wss:127.0.0.1:0"], &["--quiet"]);
    let ws = format!("ws://{}", srv.addr("ws"));
    let wss = format!("wss://{}/", srv.addr("wss"));
    let (code, out, err) = sipt(&["ping", &ws, "--count", "2", "--interval", "10"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("200 OK from")).count(),
        2,
        "{out}"
    );
    let (code, out, err) = sipt(&["ping", &wss, "--insecure", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["transport"], "wss");
    // sips:HOST;transport=ws is wss too.
    let port = srv.addr("wss").port();
    let (code, out, err) = sipt(&[
        "ping",
        &format!("sips:127.0.0.1:{port};transport=ws"),
        "--insecure",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    for uri in [&ws, &wss] {
        let v = bench_clean(uri, &["--insecure"]);
        assert!(v["ok"].as_u64().is_some_and(|n| n > 100), "{v}");
    }
}

#[test]
fn ping_and_bench_a_name_through_rfc3263_with_resolver() {
    let srv = Server::start(&["udp:127.0.0.1:0", "tcp:127.0.0.1:0"], &["--quiet"]);
    let (udp, tcp) = (srv.addr("udp").port(), srv.addr("tcp").port());
    let records = [
        format!("--srv-host=_sip._udp.svc.sipt.test,host.sipt.test,{udp},10,0"),
        format!("--srv-host=_sip._tcp.svc.sipt.test,host.sipt.test,{tcp},10,0"),
        "--host-record=host.sipt.test,127.0.0.1".to_owned(),
    ];
    let Some(dns) = sip_transport_testkit::Dnsmasq::start("sipt.test", &records) else {
        return;
    };
    let resolver = dns.addr().to_string();
    for (uri, via) in [
        ("sip:svc.sipt.test;transport=udp", "udp"),
        ("sip:svc.sipt.test;transport=tcp", "tcp"),
    ] {
        let (code, out, err) = sipt(&["ping", uri, "--resolver", &resolver, "--json"]);
        assert_eq!(code, Some(0), "{uri}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
        assert_eq!(v["transport"], via, "{v}");
        let port = if via == "udp" { udp } else { tcp };
        assert_eq!(v["responder"], format!("127.0.0.1:{port}"), "{v}");
    }
    let (code, out, err) = sipt(&[
        "bench",
        "sip:svc.sipt.test;transport=tcp",
        "--resolver",
        &resolver,
        "--duration",
        "1",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    // A name the zone does not have: a resolution error, exit 2.
    let (code, _, err) = sipt(&["ping", "sip:nothing.sipt.test", "--resolver", &resolver]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot resolve"), "{err}");
}

#[test]
fn serve_presents_the_certificate_for_the_name_a_client_asks_for() {
    use sip_transport_testkit::certs::{SERVER_SIP_DOMAIN, WRONG_NAME};
    let pki = TestPki::generate();
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_owned();
    let (default_cert, default_key) = (path(&pki.server.cert_path), path(&pki.server.key_path));
    let (named_cert, named_key) = (
        path(&pki.wrong_name_server.cert_path),
        path(&pki.wrong_name_server.key_path),
    );
    let (uri_cert, uri_key) = (
        path(&pki.sip_uri_server.cert_path),
        path(&pki.sip_uri_server.key_path),
    );
    let srv = Server::start(
        &["tls:127.0.0.1:0", "wss:127.0.0.1:0"],
        &[
            "--quiet",
            "--cert",
            &default_cert,
            "--key",
            &default_key,
            "--cert",
            &named_cert,
            "--key",
            &named_key,
            "--cert",
            &uri_cert,
            "--key",
            &uri_key,
        ],
    );
    let records = [
        format!("--host-record={WRONG_NAME},127.0.0.1"),
        format!("--host-record={SERVER_SIP_DOMAIN},127.0.0.1"),
        "--host-record=nobody.sip-transport.test,127.0.0.1".to_owned(),
    ];
    let Some(dns) = sip_transport_testkit::Dnsmasq::start("sip-transport.test", &records) else {
        return;
    };
    let resolver = dns.addr().to_string();
    let ca = path(&pki.ca_cert_path);
    let (tls, wss) = (srv.addr("tls").port(), srv.addr("wss").port());
    let ping = |uri: &str| sipt(&["ping", uri, "--resolver", &resolver, "--ca", &ca]);
    // Each name verifies against the CA only if the server chose that name's certificate.
    for uri in [
        format!("sips:{WRONG_NAME}:{tls}"),
        format!("sips:{SERVER_SIP_DOMAIN}:{tls}"),
        format!("sips:localhost:{tls}"),
        format!("sips:127.0.0.1:{tls}"),
        format!("wss://{WRONG_NAME}:{wss}/"),
    ] {
        let (code, out, err) = ping(&uri);
        assert_eq!(code, Some(0), "{uri}: {out}{err}");
        assert!(out.contains("200 OK"), "{uri}: {out}");
    }
    // A name no certificate has: the default one, refused by the client for that name.
    let (code, out, err) = ping(&format!("sips:nobody.sip-transport.test:{tls}"));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("nobody.sip-transport.test"), "{err}");
    // A certificate without its key is a usage error.
    let (code, _, err) = sipt(&[
        "serve",
        "--listen",
        "tls:127.0.0.1:0",
        "--cert",
        &default_cert,
        "--key",
        &default_key,
        "--cert",
        &named_cert,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("2 --cert but 1 --key"), "{err}");
}
