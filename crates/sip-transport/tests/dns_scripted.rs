//! RFC 3263 over real DNS messages from a scripted server on 127.0.0.1: the answers dnsmasq
//! cannot be made to give, such as a NAPTR query that fails (SERVFAIL, REFUSED, NOTIMP, no
//! answer at all) next to SRV and A queries that work, or a large SRV RRset without
//! additional data.
//!
//! The server is a tokio task that answers each UDP question from a closure, built with
//! hickory's protocol types (already a dependency). It logs every question, so a test can
//! say what the resolver asked. Needs no external program; nothing leaves loopback. The tests
//! run on two worker threads, so the server answers even while the resolver's task is busy.
#![cfg(feature = "dns")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::Name;
use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use sip_transport::dns::{
    DefaultRandom, ResolvePolicy, SipResolver, SipResolverConfig, Target, TargetUri,
};
use sip_transport::{DnsFailure, Error, TransportKind};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// What the scripted server does with one question.
enum Reply {
    /// NOERROR with these answer records (none: NODATA).
    Records(Vec<Record>),
    /// NOERROR with answer records and additional-section records.
    WithAdditional(Vec<Record>, Vec<Record>),
    /// An error response code (SERVFAIL, REFUSED, NOTIMP, ...).
    Fail(ResponseCode),
    /// No response at all: the client times out.
    Silent,
}

/// A DNS server on 127.0.0.1 answering from a closure; stopped when dropped.
struct ScriptedDns {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for ScriptedDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedDns {
    /// Serves `answer(name, type)` for every question; `name` is lower case without the
    /// trailing dot. UDP only: an answer must fit the client's EDNS buffer (hickory's 1,232
    /// bytes).
    async fn start(answer: impl Fn(&str, RecordType) -> Reply + Send + 'static) -> ScriptedDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            // Bounded: no test here asks more than a few hundred questions.
            for _ in 0..10_000 {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = request.queries().first().cloned() else {
                    continue;
                };
                let name = query.name().to_ascii().to_ascii_lowercase();
                let name = name.trim_end_matches('.');
                let rtype = query.query_type();
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{rtype} {name}"));
                let mut response = Message::new();
                response
                    .set_id(request.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(OpCode::Query)
                    .set_authoritative(true)
                    .set_recursion_desired(request.recursion_desired())
                    .set_recursion_available(true)
                    .add_query(query.clone());
                if let Some(edns) = request.extensions() {
                    response.set_edns(edns.clone());
                }
                match answer(name, rtype) {
                    Reply::Records(records) => {
                        response.add_answers(records);
                    }
                    Reply::WithAdditional(records, additionals) => {
                        response.add_answers(records);
                        response.add_additionals(additionals);
                    }
                    Reply::Fail(code) => {
                        response.set_response_code(code);
                    }
                    Reply::Silent => continue,
                }
                // What does not fit the client's buffer goes out truncated (RFC 6891 §7); the
                // client would then retry over TCP, which this server does not serve.
                let limit = request
                    .extensions()
                    .as_ref()
                    .map_or(512, |e| usize::from(e.max_payload().max(512)));
                let Ok(mut bytes) = response.to_vec() else {
                    continue;
                };
                if bytes.len() > limit {
                    let Ok(cut) = response.truncate().to_vec() else {
                        continue;
                    };
                    bytes = cut;
                }
                let _ = socket.send_to(&bytes, from).await;
            }
        });
        ScriptedDns { addr, asked, task }
    }

    /// The questions received so far, as `TYPE name`, in order.
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.")).expect("valid name")
}

fn srv(owner: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(owner),
        60,
        RData::SRV(SRV::new(priority, weight, port, name(target))),
    )
}

fn a(owner: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        name(owner),
        60,
        RData::A(A::from(std::net::Ipv4Addr::from(ip))),
    )
}

/// How long the resolver waits for each answer. Only a `Reply::Silent` question waits it out
/// (sent twice, as the server's log shows: with `attempts` 1, hickory still retries once), so
/// it can be generous: a loaded machine may take far longer than usual to schedule the
/// scripted server's answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

fn config(dns: &ScriptedDns) -> SipResolverConfig {
    SipResolverConfig::default()
        .with_nameserver(dns.addr)
        .with_timeout(QUERY_TIMEOUT)
        .with_attempts(1)
        .with_policy(ResolvePolicy::default())
}

/// A resolver whose RFC 2782 draws are always 0 (deterministic order).
fn resolver(dns: &ScriptedDns) -> SipResolver {
    SipResolver::new(config(dns))
        .expect("resolver")
        .with_random(|_| 0)
}

/// Every resolution here is bounded by this.
const BOUND: Duration = Duration::from_secs(10);
// A silent question's two tries fit in it with room to spare.
const _: () = assert!(QUERY_TIMEOUT.as_secs() * 3 < BOUND.as_secs());

async fn resolve(r: &SipResolver, uri: &str) -> sip_transport::Result<Vec<Target>> {
    let uri: TargetUri = uri.parse().expect("uri");
    tokio::time::timeout(BOUND, r.resolve(&uri))
        .await
        .expect("resolution ends within the bound")
}

fn pairs(t: &[Target]) -> Vec<(TransportKind, SocketAddr)> {
    t.iter().map(|t| (t.kind, t.addr)).collect()
}

/// RFC 3263 §4.1: "If no NAPTR records are found, the client constructs SRV queries". A
/// NAPTR query that fails is taken as none found: many servers and middleboxes break NAPTR
/// while SRV and A work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_naptr_query_falls_back_to_srv() {
    let dns = ScriptedDns::start(|name, rtype| {
        let domain = name.rsplit_once("._udp.").map_or(name, |(_, d)| d);
        match (rtype, name) {
            (RecordType::NAPTR, "servfail.example.test") => Reply::Fail(ResponseCode::ServFail),
            (RecordType::NAPTR, "refused.example.test") => Reply::Fail(ResponseCode::Refused),
            (RecordType::NAPTR, "notimp.example.test") => Reply::Fail(ResponseCode::NotImp),
            (RecordType::NAPTR, "silent.example.test") => Reply::Silent,
            (RecordType::SRV, n) if n.starts_with("_sip._udp.") => {
                Reply::Records(vec![srv(n, 0, 0, 5070, &format!("pbx.{domain}"))])
            }
            (RecordType::A, n) if n.starts_with("pbx.") => {
                Reply::Records(vec![a(n, [127, 0, 0, 61])])
            }
            // Everything else exists but has no record of the type (NODATA).
            _ => Reply::Records(Vec::new()),
        }
    })
    .await;
    let r = resolver(&dns);
    for domain in [
        "servfail.example.test",
        "refused.example.test",
        "notimp.example.test",
        "silent.example.test",
    ] {
        let t = resolve(&r, &format!("sip:alice@{domain}"))
            .await
            .unwrap_or_else(|e| panic!("{domain}: {e:?}; asked {:?}", dns.asked()));
        assert_eq!(
            pairs(&t),
            [(TransportKind::Udp, "127.0.0.61:5070".parse().expect("addr"))],
            "{domain}"
        );
        let asked = dns.asked();
        assert!(
            asked.contains(&format!("NAPTR {domain}"))
                && asked.contains(&format!("SRV _sip._udp.{domain}"))
                && asked.contains(&format!("A pbx.{domain}")),
            "{domain}: {asked:?}"
        );
    }
    assert!(r.stats().failures >= 4, "{:?}", r.stats());
}

/// When the later queries fail too, the lookup is a DNS failure (recoverable), not "no
/// records": a server that answers nothing ends the resolution after the SRV round, and a
/// failed NAPTR query with nothing found elsewhere still says the answer may be missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_naptr_query_then_nothing_is_a_server_failure() {
    let dns = ScriptedDns::start(|name, rtype| match (rtype, name) {
        (_, n) if n == "broken.example.test" || n.ends_with(".broken.example.test") => {
            Reply::Fail(ResponseCode::ServFail)
        }
        (RecordType::NAPTR, "empty.example.test") => Reply::Fail(ResponseCode::ServFail),
        _ => Reply::Records(Vec::new()),
    })
    .await;
    let r = resolver(&dns);
    for domain in ["broken.example.test", "empty.example.test"] {
        match resolve(&r, &format!("sip:{domain}")).await {
            Err(
                e @ Error::Dns {
                    reason: DnsFailure::Server(_),
                    ..
                },
            ) => assert!(e.is_recoverable(), "{e:?}"),
            other => panic!("{domain}: expected a DNS server failure, got {other:?}"),
        }
    }
    let asked = dns.asked();
    // Every question of the SRV round failed: no address query follows.
    assert!(
        asked
            .iter()
            .any(|q| q == "SRV _sip._udp.broken.example.test")
            && !asked
                .iter()
                .any(|q| q.starts_with('A') && q.contains("broken")),
        "{asked:?}"
    );
    // The empty domain was searched to the end: SRV, then the domain's own addresses.
    assert!(
        asked.iter().any(|q| q == "A empty.example.test"),
        "{asked:?}"
    );
}

/// RFC 2782's weighted draw is made once per resolution and followed in every round. Drawn
/// afresh each round, a large SRV set (40 records of one priority) gave other
/// `max_targets` records each time: addresses were asked for more targets than returned and
/// the rounds could run out ("selection did not converge").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_srv_set_is_ordered_once_per_resolution() {
    const RECORDS: u16 = 40;
    let dns = ScriptedDns::start(|name, rtype| {
        // Short target names keep the 40 records in one datagram (SRV targets are never
        // compressed, RFC 2782).
        let host = name
            .strip_suffix(".x")
            .and_then(|h| h.strip_prefix('t'))
            .and_then(|i| i.parse::<u8>().ok());
        match (rtype, name, host) {
            (RecordType::SRV, "_sip._udp.big.example.test", _) => Reply::Records(
                (1..=RECORDS)
                    .map(|i| srv(name, 10, i, 5060, &format!("t{i}.x")))
                    .collect(),
            ),
            (RecordType::A, _, Some(i)) => Reply::Records(vec![a(name, [127, 0, 1, i])]),
            _ => Reply::Records(Vec::new()),
        }
    })
    .await;
    let max = ResolvePolicy::DEFAULT_MAX_TARGETS;
    assert!(usize::from(RECORDS) > max);
    for seed in 1..=3 {
        // A fresh resolver (and cache) per seed.
        let r = SipResolver::new(config(&dns))
            .expect("resolver")
            .with_random(DefaultRandom::from_seed(seed));
        let before = dns.asked().len();
        let t = resolve(&r, "sip:big.example.test;transport=udp")
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e:?}"));
        let asked = dns.asked().split_off(before);
        assert_eq!(t.len(), max, "seed {seed}: {t:?}");
        let address_queries = asked.iter().filter(|q| q.starts_with("A ")).count();
        assert_eq!(address_queries, max, "seed {seed}: {asked:?}");
    }
}

/// RFC 3263 §4.2 with RFC 2782's additional data: an SRV answer carrying its target's A
/// record, and a server that refuses the AAAA question for it (dnsmasq without a local zone
/// does). The address already known is the target; the refused family is only missing, not a
/// failure of the whole resolution (it was: every question of that round had failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_aaaa_keeps_the_a_record_the_srv_answer_carried() {
    let dns = ScriptedDns::start(|name, rtype| match (rtype, name) {
        (RecordType::NAPTR, _) => Reply::Fail(ResponseCode::Refused),
        (RecordType::SRV, "_sip._udp.v4only.example.test") => Reply::WithAdditional(
            vec![srv(name, 0, 0, 5070, "pbx.v4only.example.test")],
            vec![a("pbx.v4only.example.test", [127, 0, 0, 62])],
        ),
        (RecordType::AAAA, _) => Reply::Fail(ResponseCode::Refused),
        _ => Reply::Records(Vec::new()),
    })
    .await;
    let r = resolver(&dns);
    let t = resolve(&r, "sip:alice@v4only.example.test")
        .await
        .unwrap_or_else(|e| panic!("{e:?}; asked {:?}", dns.asked()));
    assert_eq!(
        pairs(&t),
        [(TransportKind::Udp, "127.0.0.62:5070".parse().expect("addr"))],
        "asked {:?}",
        dns.asked()
    );
    // Nothing was refused but the AAAA question (and NAPTR): the A came with the SRV answer.
    assert!(
        dns.asked()
            .iter()
            .any(|q| q == "AAAA pbx.v4only.example.test"),
        "{:?}",
        dns.asked()
    );
}
