//! Issue 9, oversized and malformed input over TCP: a 10 MB header block, a huge
//! Content-Length, NUL bytes and binary junk. Each closes only its own connection with a typed
//! error event, a connection opened before keeps working, and this process's RSS does not
//! grow with repetition (the bad bytes are never buffered past the limits).

mod common;

use std::net::SocketAddr;

use common::*;
use sip_transport_api::{CloseReason, Error, Limits, Transport, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

fn head(extra: &str) -> String {
    format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-m\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: m\r\n\
         CSeq: 1 OPTIONS\r\n{extra}"
    )
}

/// Sends `case`'s bytes on a new connection (ignoring write errors once the server has
/// closed), and returns the typed error and the close reason the server reported for it.
async fn one_case(
    srv: SocketAddr,
    rx: &mut tokio::sync::mpsc::Receiver<TransportEvent>,
    case: u8,
) -> (Error, CloseReason) {
    let mut raw = TcpStream::connect(srv).await.expect("connect");
    let me = raw.local_addr().expect("addr");
    let writer = tokio::spawn(async move {
        let r: std::io::Result<()> = async {
            match case {
                // A 10 MB header block, 1 kB lines, 64 kB per write.
                0 => {
                    raw.write_all(head("").as_bytes()).await?;
                    let line = format!("X-Pad: {}\r\n", "p".repeat(1000));
                    let chunk = line.repeat(64);
                    for _ in 0..(10 * 1024 * 1024 / chunk.len()) {
                        raw.write_all(chunk.as_bytes()).await?;
                    }
                }
                // A huge Content-Length, then some body.
                1 => {
                    let h = head("Content-Length: 99999999999\r\n\r\n");
                    raw.write_all(h.as_bytes()).await?;
                    raw.write_all(&[b'b'; 64 * 1024]).await?;
                }
                // NUL bytes in the start line and a header name.
                2 => {
                    raw.write_all(
                        b"OPT\0IONS sip:x SIP/2.0\r\nV\0ia: x\r\nContent-Length: 0\r\n\r\n",
                    )
                    .await?
                }
                // Binary junk: 256 kB of pseudo-random bytes.
                _ => {
                    let mut x = 0x2545_F491_4F6C_DD1Du64;
                    let junk: Vec<u8> = (0..256 * 1024)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        })
                        .collect();
                    raw.write_all(&junk).await?;
                }
            }
            Ok(())
        }
        .await;
        let _ = r;
        // The server closes: EOF or reset.
        let mut buf = [0u8; 256];
        let _ = timeout(WAIT, async {
            while let Ok(n) = raw.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    });
    let mut error = None;
    let reason = wait_for(rx, |ev| match ev {
        TransportEvent::Error { error: e, peer, .. } if peer == Some(me) => {
            error = Some(e);
            None
        }
        TransportEvent::ConnectionClosed { peer, reason, .. } if peer == me => Some(reason),
        _ => None,
    })
    .await;
    timeout(WAIT, writer)
        .await
        .expect("client done")
        .expect("client task");
    (error.expect("a typed error event before the close"), reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_close_only_their_connection() {
    let (srv, mut rx) = server(Limits::default()).await;
    let addr = srv.local_addr();
    // A well-behaved connection, open throughout.
    let mut good = TcpStream::connect(addr).await.expect("connect");
    let mut rss = Vec::new();
    for round in 0..3u64 {
        for case in 0..4u8 {
            let (error, reason) = one_case(addr, &mut rx, case).await;
            eprintln!("round {round} case {case}: {error:?} / {reason:?}");
            let want = match case {
                0 => matches!(error, Error::HeadersTooLarge { .. }),
                1 => matches!(
                    error,
                    Error::BodyTooLarge { .. } | Error::MessageTooLarge { .. }
                ),
                _ => matches!(error, Error::Malformed { .. } | Error::LineTooLong { .. }),
            };
            assert!(want, "case {case}: {error:?}");
            assert!(!error.is_recoverable(), "{error:?}");
            assert_eq!(reason, CloseReason::ProtocolError);
            // The good connection still carries a request.
            good.write_all(options(addr, round * 10 + u64::from(case)).as_bytes())
                .await
                .expect("good connection open");
            let m = next_message(&mut rx).await;
            assert_eq!(m.source, good.local_addr().expect("addr"));
        }
        rss.push(rss_kib());
    }
    eprintln!("RSS after each round: {rss:?} KiB; {:?}", srv.stats());
    assert!(rss[2] < rss[0] + 8 * 1024, "RSS grew: {rss:?}");
    assert_eq!(srv.stats().malformed, 12);
    srv.close().await;
}
