//! Interop with independent TLS implementations on loopback: our `TlsTransport` as a client
//! of Kamailio's TLS listener (OpenSSL inside), and `openssl s_client` as a plain TLS client of
//! our TLS server (with and without a client certificate). A missing peer skips the test
//! loudly, and fails it under CI (`CI=true`), per the testkit's policy.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use sip_transport_api::{Destination, Limits, Transport, TransportEvent};
use sip_transport_testkit::certs::TestPki;
use sip_transport_testkit::{Kamailio, options_request, require_program};
use sip_transport_tls::{PemSource, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_to_kamailio_over_tls() {
    const N: u64 = 100;
    let Some(kam) = Kamailio::start("kamailio-tls-ws") else {
        return;
    };
    // Kamailio's self-signed certificate (localhost, 127.0.0.1) is the trust anchor.
    let cert = kam.run_dir().join("cert.pem");
    let kam_addr: SocketAddr = "127.0.0.1:5073".parse().expect("addr");
    for (label, dest) in [
        (
            "by name",
            Destination::new(kam_addr).with_server_name("localhost"),
        ),
        ("by IP", Destination::new(kam_addr)),
    ] {
        let (cli, mut rx) = bind(TlsConfig::client().with_server_ca_file(&cert)).await;
        for n in 1..=N {
            let req = options_request("sip:ping@127.0.0.1:5073", "TLS", "127.0.0.1:5061", n);
            // Kamailio may still be opening its listener just after start: retry the first.
            let mut tries = 0;
            loop {
                match cli.send_message(&req, &dest).await {
                    Ok(_) => break,
                    Err(e) if n == 1 && e.is_recoverable() && tries < 50 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("{label}: send {n}: {e}"),
                }
            }
        }
        let mut ok = std::collections::HashSet::new();
        while (ok.len() as u64) < N {
            let m = wait_for(&mut rx, |ev| match ev {
                TransportEvent::Message(m) => Some(m),
                TransportEvent::Error { error, .. } => panic!("{label}: {error}"),
                _ => None,
            })
            .await;
            assert_eq!(
                m.message.status_code(),
                Some(200),
                "{label}: {:?}",
                m.message
            );
            let id = m.peer_identity.as_ref().expect("Kamailio's identity");
            assert!(id.has_dns_name("localhost"), "{label}: {id}");
            ok.insert(m.message.call_id().map(str::to_owned));
        }
        assert_eq!(cli.stats().connections_dialed, 1, "{label}: one connection");
        cli.close().await;
    }
}

/// Runs `openssl s_client` against `addr`, writes `request` on its stdin and returns what it
/// printed once a complete `SIP/2.0 200` response is there (bounded), then kills it by PID.
async fn s_client_exchange(
    openssl: &Path,
    addr: SocketAddr,
    ca: &Path,
    client_cert: Option<(&Path, &Path)>,
    request: &[u8],
) -> String {
    let mut cmd = tokio::process::Command::new(openssl);
    cmd.arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(["-servername", "localhost", "-verify_return_error", "-quiet"])
        .arg("-CAfile")
        .arg(ca);
    if let Some((cert, key)) = client_cert {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    // stdin stays open until the answer is read: s_client (-quiet implies -ign_eof) would
    // otherwise close the connection at end of input before the response arrives.
    stdin.write_all(request).await.expect("write request");
    stdin.flush().await.expect("flush");
    let mut out = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stdout.read(&mut buf).await.expect("read stdout");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out);
            if text.contains("SIP/2.0 200") && text.contains("\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    if let Some(pid) = child.id() {
        eprintln!("stopping openssl s_client (PID {pid})");
    }
    let _ = child.start_kill();
    let status = tokio::time::timeout(WAIT, child.wait()).await;
    drop(stdin);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = tokio::time::timeout(Duration::from_secs(1), e.read_to_string(&mut err)).await;
    }
    assert!(read.is_ok(), "no 200 from s_client in time; stderr: {err}");
    assert!(status.is_ok(), "openssl did not exit after kill");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_gets_a_200() {
    let Some(openssl) = require_program("openssl") else {
        return;
    };
    let pki = TestPki::generate();
    let (srv, rx) = server(&pki, Limits::default()).await;
    let mut fwd = spawn_uas(Arc::clone(&srv), rx);
    let req = options(srv.local_addr(), 1);
    let out = s_client_exchange(
        &openssl,
        srv.local_addr(),
        &pki.ca_cert_path,
        None,
        req.as_bytes(),
    )
    .await;
    assert!(out.starts_with("SIP/2.0 200 OK\r\n"), "{out}");
    assert!(out.contains(req.call_id().expect("call-id")), "{out}");
    let m = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert!(m.peer_identity.is_none());
    assert_eq!(srv.stats().connections_accepted, 1);
    srv.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_with_client_certificate() {
    let Some(openssl) = require_program("openssl") else {
        return;
    };
    let pki = TestPki::generate();
    let (srv, rx) = bind(
        server_config(&pki, &pki.server)
            .with_required_client_certificates(PemSource::file(&pki.ca_cert_path)),
    )
    .await;
    let mut fwd = spawn_uas(Arc::clone(&srv), rx);
    let req = options(srv.local_addr(), 2);
    let out = s_client_exchange(
        &openssl,
        srv.local_addr(),
        &pki.ca_cert_path,
        Some((&pki.client.cert_path, &pki.client.key_path)),
        req.as_bytes(),
    )
    .await;
    assert!(out.starts_with("SIP/2.0 200 OK\r\n"), "{out}");
    let m = wait_fwd(&mut fwd, |ev| match ev {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    })
    .await;
    let id = m.peer_identity.expect("openssl's client certificate");
    let want: [u8; 32] = Sha256::digest(&pki.client.cert_der).into();
    assert_eq!(id.fingerprint_sha256, want);
    srv.close().await;
}
