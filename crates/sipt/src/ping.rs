//! `sipt ping`: OPTIONS health check. One line (or JSON object) per reply, with the status,
//! who answered and the round-trip time. Over UDP the request is retransmitted on RFC 3261
//! timer E's schedule (T1 doubling, capped at T2) until a final response or the timeout. A
//! request that could not be sent (a refused connection), or whose connection the peer closed
//! or reset before a final response, is reported as such at once, and the next one still
//! waits `--interval`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip_transport::{
    CloseReason, Destination, FlowId, Message, Transport, TransportEvent, TransportKind,
};
use tokio::sync::mpsc::Receiver;

use crate::PingArgs;
use crate::locate::locate;
use crate::net;
use crate::target::{Target, parse_target};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// Builds one OPTIONS request from `local` to `target`.
pub(crate) fn options(
    target: &Target,
    kind: TransportKind,
    local: SocketAddr,
    tag: &str,
    n: u64,
) -> Result<Message, String> {
    let uri = target.request_uri();
    let via_host = net::sent_by(local);
    let s = format!(
        "OPTIONS {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{} {via_host};branch=z9hG4bK-{tag}-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:sipt@{via_host}>;tag={tag}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {tag}-{n}@sipt\r\n\
         CSeq: {n} OPTIONS\r\n\
         Accept: application/sdp\r\n\
         User-Agent: sipt\r\n\
         Content-Length: 0\r\n\r\n",
        kind.via_token()
    );
    Message::parse(Bytes::from(s)).map_err(|e| format!("cannot build an OPTIONS for {uri}: {e}"))
}

/// A random-enough tag for this run.
pub(crate) fn run_tag() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}{:x}", std::process::id(), t.subsec_nanos())
}

fn usage(e: String) -> u8 {
    eprintln!("sipt ping: {e}");
    2
}

pub(crate) async fn run(args: PingArgs) -> u8 {
    let target = match parse_target(&args.uri) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let aim = match locate(&target, args.client.resolver).await {
        Ok(a) => a,
        Err(e) => return usage(e),
    };
    let kind = aim.kind;
    let opts = net::BindOptions::client(args.client.tls_options());
    let (transport, mut events) =
        match net::bind(kind, SocketAddr::new(aim.local_ip, 0), &opts).await {
            Ok(b) => b,
            Err(e) => return usage(format!("cannot open a {kind} transport: {e}")),
        };
    let local = transport.local_addr();
    let dest = aim.dest;
    let tag = run_tag();
    let timeout = Duration::from_millis(args.timeout);
    let mut unanswered = 0u64;
    for n in 1..=args.count {
        let req = match options(&target, kind, local, &tag, n) {
            Ok(r) => r,
            Err(e) => {
                transport.close().await;
                return usage(e);
            }
        };
        let start = Instant::now();
        match transport.send_message(&req, &dest).await {
            Err(e) if !e.is_recoverable() => {
                transport.close().await;
                return usage(format!("cannot send to {dest}: {}", net::explain(&e)));
            }
            // Reported as what it is, not as a timeout; the interval still holds, so --count
            // attempts at a refusing target do not fire back to back.
            Err(e) => {
                unanswered += 1;
                report_send_error(&args, n, &format!("cannot send: {}", net::explain(&e)));
            }
            Ok(flow) => {
                let wait = Wait {
                    transport: &*transport,
                    req: &req,
                    dest: &dest,
                    kind,
                    flow,
                    start,
                    deadline: start + timeout,
                };
                match wait.for_final(&mut events, &args, n).await {
                    Outcome::Final => {}
                    Outcome::Timeout => {
                        unanswered += 1;
                        report_timeout(&args, n, "no final response");
                    }
                    Outcome::Closed(why) => {
                        unanswered += 1;
                        report_send_error(&args, n, &why);
                    }
                }
            }
        }
        if n < args.count {
            tokio::time::sleep(Duration::from_millis(args.interval)).await;
        }
    }
    transport.close().await;
    u8::from(unanswered > 0)
}

/// One request sent, waiting for its final response.
struct Wait<'a> {
    transport: &'a dyn Transport,
    req: &'a Message,
    dest: &'a Destination,
    kind: TransportKind,
    /// The connection the request went out on (`None` for UDP).
    flow: Option<FlowId>,
    start: Instant,
    deadline: Instant,
}

/// How waiting for a final response ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// A final response arrived (and was reported).
    Final,
    /// The deadline passed without one.
    Timeout,
    /// The request's connection closed first: why, for the user.
    Closed(String),
}

impl Wait<'_> {
    /// Reports every reply to the request until a final one, the deadline, or the close of
    /// the connection it went out on (no response can come over it any more), retransmitting
    /// over UDP.
    async fn for_final(
        &self,
        events: &mut Receiver<TransportEvent>,
        args: &PingArgs,
        n: u64,
    ) -> Outcome {
        let call_id = self.req.call_id().unwrap_or_default();
        let mut next_retransmit = self.start + T1;
        let mut interval = T1;
        // An error on our flow comes just before its close; it says more than the reason.
        let mut flow_error: Option<String> = None;
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                return Outcome::Timeout;
            }
            let wake = if self.kind.is_reliable() {
                self.deadline
            } else {
                next_retransmit.min(self.deadline)
            };
            match tokio::time::timeout(wake - now, events.recv()).await {
                Ok(Some(TransportEvent::Message(m))) => {
                    let msg = &m.message;
                    if msg.call_id() != Some(call_id) || !msg.is_response() {
                        continue;
                    }
                    let code = msg.status_code().unwrap_or(0);
                    report_reply(args, n, msg, m.source, self.kind, self.start.elapsed());
                    if code >= 200 {
                        return Outcome::Final;
                    }
                }
                Ok(Some(TransportEvent::Error {
                    flow: Some(f),
                    error,
                    ..
                })) if Some(f) == self.flow => flow_error = Some(net::explain(&error)),
                Ok(Some(TransportEvent::ConnectionClosed { flow, reason, .. }))
                    if Some(flow) == self.flow =>
                {
                    return Outcome::Closed(closed_why(&reason, flow_error.as_deref()));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Outcome::Timeout,
                Err(_) if !self.kind.is_reliable() && Instant::now() < self.deadline => {
                    // RFC 3261 §17.1.2.2 timer E.
                    let _ = self.transport.send_message(self.req, self.dest).await;
                    interval = (interval * 2).min(T2);
                    next_retransmit = Instant::now() + interval;
                }
                Err(_) => {}
            }
        }
    }
}

/// What a closed connection means for the request that was waiting on it, in one phrase.
fn closed_why(reason: &CloseReason, error: Option<&str>) -> String {
    let why = match reason {
        CloseReason::PeerClosed => "connection closed by the peer".to_owned(),
        CloseReason::Io(std::io::ErrorKind::ConnectionReset) => {
            "connection reset by the peer".to_owned()
        }
        CloseReason::Io(kind) => format!("connection closed: {}", std::io::Error::from(*kind)),
        CloseReason::IdleTimeout => "connection closed: idle timeout".to_owned(),
        CloseReason::HeaderReadTimeout => "connection closed: header read timeout".to_owned(),
        CloseReason::WriteTimeout => "connection closed: write timeout".to_owned(),
        CloseReason::KeepaliveTimeout => "connection closed: no keepalive pong".to_owned(),
        CloseReason::ProtocolError => {
            "connection closed: the peer sent bytes that are not SIP".to_owned()
        }
        CloseReason::HandshakeFailed => "connection closed: handshake failed".to_owned(),
        CloseReason::LocalClose => "connection closed locally".to_owned(),
        other => format!("connection closed: {other:?}"),
    };
    match error {
        Some(e) => format!("{why} ({e})"),
        None => why,
    }
}

fn report_reply(
    args: &PingArgs,
    n: u64,
    msg: &Message,
    from: SocketAddr,
    kind: TransportKind,
    rtt: Duration,
) {
    let code = msg.status_code().unwrap_or(0);
    let reason = msg.reason_phrase().unwrap_or("");
    let server = msg
        .header("Server")
        .or_else(|| msg.header("User-Agent"))
        .map(|h| h.value_unfolded().into_owned());
    let ms = rtt.as_secs_f64() * 1000.0;
    if args.json {
        let v = serde_json::json!({
            "seq": n, "status": code, "reason": reason, "responder": from.to_string(),
            "transport": kind.to_string(), "server": server, "rtt_ms": (ms * 1000.0).round() / 1000.0,
        });
        println!("{v}");
    } else {
        let server = server
            .map(|s| format!(" server=\"{s}\""))
            .unwrap_or_default();
        println!("{code} {reason} from {from} via {kind} seq={n} time={ms:.3} ms{server}");
    }
}

fn report_send_error(args: &PingArgs, n: u64, why: &str) {
    if args.json {
        println!(
            "{}",
            serde_json::json!({"seq": n, "status": null, "error": why})
        );
    } else {
        println!("error seq={n}: {why}");
    }
}

fn report_timeout(args: &PingArgs, n: u64, why: &str) {
    if args.json {
        println!(
            "{}",
            serde_json::json!({"seq": n, "status": null, "error": why})
        );
    } else {
        println!("timeout seq={n}: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_is_well_formed() {
        let t = parse_target("sip:[::1]:5070;transport=tcp").expect("target");
        let m = options(
            &t,
            TransportKind::Tcp,
            "[::1]:40000".parse().expect("addr"),
            "abc",
            3,
        )
        .expect("builds");
        assert_eq!(m.request_uri(), Some("sip:[::1]:5070;transport=tcp"));
        let v = m.top_via().expect("via");
        assert_eq!(
            (v.transport(), v.host(), v.port()),
            ("TCP", "[::1]", Some(40000))
        );
        assert_eq!(v.rport(), Some(None));
        assert_eq!(m.cseq().map(|c| c.seq), Some(3));
        assert_eq!(m.call_id(), Some("abc-3@sipt"));
    }

    #[test]
    fn closed_connection_reasons_read_well() {
        assert_eq!(
            closed_why(&CloseReason::PeerClosed, None),
            "connection closed by the peer"
        );
        assert_eq!(
            closed_why(
                &CloseReason::Io(std::io::ErrorKind::ConnectionReset),
                Some("boom")
            ),
            "connection reset by the peer (boom)"
        );
        assert!(
            closed_why(&CloseReason::Io(std::io::ErrorKind::BrokenPipe), None)
                .starts_with("connection closed: ")
        );
    }
}
