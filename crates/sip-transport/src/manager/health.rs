//! OPTIONS health checks: a background task probes held-back targets whose hold time is over
//! and re-admits those that answer (a final response other than 503).
//!
//! Bounded: one round at a time, at most `max_probes_per_round` probes in it, each with a
//! timeout; the pending-probe table holds only that round's probes. The task holds the
//! manager weakly and ends on `close()` or when the manager is dropped. Probe responses are
//! recognised by their Via branch (a prefix of ours plus a per-manager random part) and taken
//! out of the event stream by the forwarders.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use sip_transport_api::bytes::Bytes;
use sip_transport_api::{Message, Result, TransportEvent, TransportKind};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use super::config::HealthCheck;
use super::holdback::HeldTarget;
use super::stats::inc;
use super::{Inner, lock};

/// Every probe's branch starts with this (RFC 3261 §8.1.1.7 magic cookie first).
const BRANCH_PREFIX: &str = "z9hG4bK-siptx-hc-";

/// Probes in flight, by branch.
#[derive(Debug)]
pub(crate) struct Probes {
    pending: Mutex<HashMap<String, oneshot::Sender<u16>>>,
    seed: u64,
    next: AtomicU64,
}

/// A registered probe; unregisters itself when dropped.
pub(crate) struct Pending<'a> {
    probes: &'a Probes,
    pub(crate) branch: String,
    rx: Option<oneshot::Receiver<u16>>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        lock(&self.probes.pending).remove(&self.branch);
    }
}

impl Probes {
    pub(crate) fn new() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6863_5f73_6970_7478);
        Probes {
            pending: Mutex::new(HashMap::new()),
            seed: h.finish(),
            next: AtomicU64::new(1),
        }
    }

    pub(crate) fn register(&self) -> Pending<'_> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let branch = format!("{BRANCH_PREFIX}{:016x}-{n}", self.seed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(branch.clone(), tx);
        Pending {
            probes: self,
            branch,
            rx: Some(rx),
        }
    }

    /// True when `ev` is a response to one of our probes (it is then consumed): final
    /// responses complete the probe, provisional ones are dropped.
    pub(crate) fn intercept(&self, ev: &TransportEvent) -> bool {
        let TransportEvent::Message(m) = ev else {
            return false;
        };
        if !m.message.is_response() {
            return false;
        }
        let Ok(via) = m.message.top_via() else {
            return false;
        };
        let Some(branch) = via.branch() else {
            return false;
        };
        if !branch.starts_with(BRANCH_PREFIX) {
            return false;
        }
        let code = m.message.status_code().unwrap_or(0);
        if code >= 200
            && let Some(tx) = lock(&self.pending).remove(branch)
        {
            let _ = tx.send(code);
        }
        true
    }
}

/// The task: every interval, probe the due targets, re-admit the ones that answer and hold
/// the others back for another hold time.
pub(crate) async fn run(inner: Weak<Inner>, check: HealthCheck, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let due = strong.held.due(Instant::now(), check.max_probes_per_round);
        let mut round = JoinSet::new();
        for target in due {
            let m = Arc::clone(&strong);
            let timeout = check.timeout;
            round.spawn(async move {
                let ok = probe(&m, &target, timeout).await;
                (target, ok)
            });
        }
        loop {
            let done = tokio::select! {
                r = round.join_next() => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            let Some(Ok((target, ok))) = done else {
                break;
            };
            if ok {
                inc(&strong.counters.health_checks_ok);
                strong.held.release(target.kind, target.addr);
                tracing::info!(kind = %target.kind, addr = %target.addr, "target re-admitted");
            } else {
                inc(&strong.counters.health_checks_failed);
                let name = target.server_name.clone();
                strong
                    .held
                    .hold(target.kind, target.addr, name, Instant::now());
            }
        }
    }
}

/// One OPTIONS probe to `target`; true when it got a final response other than 503.
async fn probe(inner: &Inner, target: &HeldTarget, timeout: std::time::Duration) -> bool {
    let Ok((_, transport)) = inner.pick(target.kind, target.addr, None) else {
        return false;
    };
    let mut pending = inner.probes.register();
    let Ok(msg) = options(
        &pending.branch,
        transport.kind(),
        transport.local_addr(),
        target,
    ) else {
        return false;
    };
    let mut dest = sip_transport_api::Destination::new(target.addr);
    if let Some(n) = &target.server_name {
        dest = dest.with_server_name(Arc::clone(n));
    }
    inc(&inner.counters.health_checks_sent);
    if let Err(e) = transport.send_message(&msg, &dest).await {
        tracing::debug!(addr = %target.addr, error = %e, "health check not sent");
        return false;
    }
    let Some(rx) = pending.rx.take() else {
        return false;
    };
    matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(code)) if code != 503)
}

/// The probe: an OPTIONS to the target, answered by any stateless responder. The Via asks for
/// `rport`, so a UDP answer reaches us even from behind a wildcard bind (RFC 3581).
fn options(
    branch: &str,
    kind: TransportKind,
    local: SocketAddr,
    target: &HeldTarget,
) -> Result<Message> {
    let host = match &target.server_name {
        Some(n) => n.to_string(),
        None => match target.addr.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            ip => ip.to_string(),
        },
    };
    let scheme = if kind.is_secure() { "sips" } else { "sip" };
    let param = match kind {
        TransportKind::Udp | TransportKind::Tls => String::new(),
        k => format!(";transport={k}"),
    };
    let uri = format!("{scheme}:{host}:{}{param}", target.addr.port());
    let sent_by = if local.ip().is_unspecified() || local.port() == 0 {
        "sip-transport.invalid".to_owned()
    } else {
        local.to_string()
    };
    let token = kind.via_token();
    let text = format!(
        "OPTIONS {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{token} {sent_by};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:health@sip-transport.invalid>;tag={branch}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {branch}@sip-transport.invalid\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    Message::parse(Bytes::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_transport_api::ReceivedMessage;

    fn target(kind: TransportKind, addr: &str) -> HeldTarget {
        HeldTarget {
            kind,
            addr: addr.parse().expect("addr"),
            server_name: None,
            failures: 1,
            until: Instant::now(),
        }
    }

    fn response(via_branch: &str, code: u16) -> TransportEvent {
        let m = Message::parse(Bytes::from(format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP h;branch={via_branch}\r\nContent-Length: 0\r\n\r\n"
        )))
        .expect("response");
        let a: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        TransportEvent::Message(ReceivedMessage::new(m, a, a, TransportKind::Udp, None))
    }

    #[test]
    fn options_is_a_valid_request() {
        let t = target(TransportKind::Tcp, "[::1]:5070");
        let m = options(
            "z9hG4bK-siptx-hc-1",
            TransportKind::Tcp,
            "[::]:0".parse().expect("a"),
            &t,
        )
        .expect("valid");
        assert_eq!(m.method(), Some("OPTIONS"));
        assert_eq!(m.request_uri(), Some("sip:[::1]:5070;transport=tcp"));
        let via = m.top_via().expect("via");
        assert_eq!(via.transport(), "TCP");
        assert_eq!(via.host(), "sip-transport.invalid");
        assert_eq!(via.rport(), Some(None));
    }

    #[tokio::test]
    async fn probe_responses_are_taken_out_and_complete_the_probe() {
        let probes = Probes::new();
        let mut p = probes.register();
        let branch = p.branch.clone();
        assert!(!probes.intercept(&response("z9hG4bK-other", 200)));
        assert!(
            probes.intercept(&response(&branch, 100)),
            "provisional: consumed"
        );
        assert!(probes.intercept(&response(&branch, 200)));
        let code = p.rx.take().expect("rx").await.expect("completed");
        assert_eq!(code, 200);
        drop(p);
        assert!(lock(&probes.pending).is_empty());
    }
}
