//! [`SipResolver`]: RFC 3263 over real DNS. It asks hickory the questions the pure selection
//! ([`super::select`]) names, answers repeat questions from its own TTL cache
//! ([`super::cache`]), and returns the ordered targets.
//!
//! It does no RFC 3263 reasoning of its own and opens no SIP connection: trying the targets
//! in order (failover) is the caller's job.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use sip_transport_api::{DnsFailure, Error, Result};

use super::cache::{CacheConfig, CacheStats, DnsCache};
use super::hickory::{answer_from_error, answer_from_records, hickory_name, hickory_type};
use super::policy::ResolvePolicy;
use super::records::{Answer, DnsRecords, Query, RecordType};
use super::select::{Step, Target, locate_response, locate_server};
use super::srv::{DefaultRandom, SrvRandom};
use crate::uri::{SentBy, TargetUri};

/// Selection takes at most NAPTR → SRV → A/AAAA rounds (or SRV → A/AAAA → A/AAAA); the
/// bound only guards against a selection bug looping.
const MAX_ROUNDS: usize = 8;

/// How a [`SipResolver`] reaches DNS and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipResolverConfig {
    /// The DNS server to ask (UDP, TCP when an answer is truncated), instead of the system's
    /// (`/etc/resolv.conf`). With a server given, the hosts file is not read either.
    pub nameserver: Option<SocketAddr>,
    /// Time to wait for one answer.
    pub timeout: Duration,
    /// Tries per query (hickory's `attempts`).
    pub attempts: usize,
    /// The answer cache's bounds.
    pub cache: CacheConfig,
    /// The transports and address families to use; [`SipResolver::resolve_with`] overrides
    /// it per call.
    pub policy: ResolvePolicy,
}

impl Default for SipResolverConfig {
    /// The system's DNS servers, 2 s per answer, 2 tries, the default cache, and the
    /// transports compiled into this build ([`ResolvePolicy::enabled_features`]).
    fn default() -> Self {
        SipResolverConfig {
            nameserver: None,
            timeout: Duration::from_secs(2),
            attempts: 2,
            cache: CacheConfig::default(),
            policy: ResolvePolicy::enabled_features(),
        }
    }
}

impl SipResolverConfig {
    /// Ask `server` (IP:port) instead of the system's DNS servers.
    pub fn with_nameserver(mut self, server: SocketAddr) -> Self {
        self.nameserver = Some(server);
        self
    }

    /// Sets the time to wait for one answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the tries per query (at least 1).
    pub fn with_attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Sets the cache bounds.
    pub fn with_cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Sets the default policy.
    pub fn with_policy(mut self, policy: ResolvePolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// Counters of a [`SipResolver`], as a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ResolverStats {
    /// Questions sent to the DNS server (cache misses).
    pub queries: u64,
    /// Questions that failed (timeout, server failure); negative answers are not failures.
    pub failures: u64,
    /// The answer cache.
    pub cache: CacheStats,
}

/// RFC 3263 server location over DNS. `Send + Sync`: share one behind an `Arc`.
///
/// ```no_run
/// # async fn run() -> sip_transport::Result<()> {
/// use sip_transport::dns::{SipResolver, SipResolverConfig, TargetUri};
///
/// let resolver = SipResolver::new(SipResolverConfig::default())?;
/// let uri: TargetUri = "sips:example.com".parse()?;
/// for target in resolver.resolve(&uri).await? {
///     println!("{} {} (verify {:?})", target.kind, target.addr, target.server_name);
/// }
/// # Ok(())
/// # }
/// ```
pub struct SipResolver {
    dns: TokioResolver,
    config: SipResolverConfig,
    cache: Mutex<DnsCache>,
    rng: Mutex<Box<dyn SrvRandom>>,
    queries: AtomicU64,
    failures: AtomicU64,
}

impl std::fmt::Debug for SipResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipResolver")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SipResolver {
    /// A resolver per `config`. Fails only when the system's DNS configuration is needed
    /// and cannot be read (`Error::InvalidConfig`). Needs no runtime to build; lookups need
    /// a Tokio runtime.
    pub fn new(config: SipResolverConfig) -> Result<Self> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match config.nameserver {
            Some(server) => {
                let group = NameServerConfigGroup::from_ips_clear(
                    &[server.ip()],
                    server.port(),
                    true, // trust its NXDOMAIN: there is no other server to ask
                );
                let mut b = TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), group),
                    provider,
                );
                b.options_mut().use_hosts_file = ResolveHosts::Never;
                b
            }
            None => TokioResolver::builder(provider).map_err(|e| Error::InvalidConfig {
                reason: format!("cannot read the system DNS configuration: {e}"),
            })?,
        };
        let opts = builder.options_mut();
        opts.cache_size = 0; // ours is the cache: one TTL policy, and countable
        opts.timeout = config.timeout;
        opts.attempts = config.attempts.max(1);
        opts.edns0 = true; // NAPTR and SRV answers outgrow 512 bytes
        Ok(SipResolver {
            dns: builder.build(),
            cache: Mutex::new(DnsCache::new(config.cache)),
            config,
            rng: Mutex::new(Box::new(DefaultRandom::new())),
            queries: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// A resolver asking `server` (IP:port) with otherwise default settings.
    pub fn with_nameserver(server: SocketAddr) -> Result<Self> {
        Self::new(SipResolverConfig::default().with_nameserver(server))
    }

    /// Replaces the random source of RFC 2782's weighted selection (tests pin it).
    pub fn with_random(self, rng: impl SrvRandom + 'static) -> Self {
        *lock(&self.rng) = Box::new(rng);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SipResolverConfig {
        &self.config
    }

    /// RFC 3263 §4: the targets for a request to `uri`, in the order to try them, with the
    /// configured policy.
    pub async fn resolve(&self, uri: &TargetUri) -> Result<Vec<Target>> {
        self.resolve_with(uri, &self.config.policy).await
    }

    /// [`resolve`](Self::resolve) with another policy (e.g. the transports bound right now).
    pub async fn resolve_with(
        &self,
        uri: &TargetUri,
        policy: &ResolvePolicy,
    ) -> Result<Vec<Target>> {
        self.drive(|records, rng| locate_server(uri, policy, records, rng))
            .await
    }

    /// RFC 3263 §5: the targets for a response whose Via sent-by is `sent_by`.
    pub async fn resolve_response(&self, sent_by: &SentBy) -> Result<Vec<Target>> {
        let policy = &self.config.policy;
        self.drive(|records, rng| locate_response(sent_by, policy, records, rng))
            .await
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ResolverStats {
        ResolverStats {
            queries: self.queries.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            cache: lock(&self.cache).stats(),
        }
    }

    /// Forgets every cached answer.
    pub fn clear_cache(&self) {
        lock(&self.cache).clear();
    }

    /// Runs the selection, answering its questions, until it is done.
    ///
    /// A question that fails (timeout, server failure) is treated as unanswered-empty for
    /// this resolution only, so the other branches still give targets; when no target is
    /// found, that failure (recoverable) is reported instead of "no records".
    ///
    /// A failed NAPTR query is therefore "no NAPTR records" and the SRV queries follow
    /// (RFC 3263 §4.1): many servers and middleboxes break NAPTR while SRV and A work. When
    /// every question of any later round fails, the resolution stops there with the first
    /// failure seen: the server is not answering, and another round would only wait out more
    /// timeouts. So a server that answers nothing costs two rounds (NAPTR, then SRV).
    async fn drive(
        &self,
        mut select: impl FnMut(&DnsRecords, &mut dyn SrvRandom) -> Step,
    ) -> Result<Vec<Target>> {
        let mut records = DnsRecords::new();
        let mut failure: Option<(String, DnsFailure)> = None;
        for _ in 0..MAX_ROUNDS {
            let step = {
                let mut rng = lock(&self.rng);
                // RFC 2782's draw once per SRV answer and resolution: every round must follow
                // the same records, or a large set names other targets each round.
                records.pin_srv_orders(rng.as_mut());
                select(&records, rng.as_mut())
            };
            let queries = match step {
                Step::Done(Ok(targets)) => return Ok(targets),
                Step::Done(Err(e @ Error::Dns { .. })) => {
                    return Err(match failure {
                        Some((name, reason)) => Error::Dns { name, reason },
                        None => e,
                    });
                }
                Step::Done(Err(e)) => return Err(e),
                Step::Lookup(queries) => queries,
            };
            let ask = self.fill_from_cache(queries, &mut records);
            let naptr_round = ask.iter().all(|q| q.rtype() == RecordType::Naptr);
            let answers = join_all(ask.iter().map(|q| self.query(q))).await;
            let asked = answers.len();
            let mut failed = 0;
            let now = Instant::now();
            for (q, answer) in ask.into_iter().zip(answers) {
                match answer {
                    Ok(a) => {
                        lock(&self.cache).insert(q.clone(), a.clone(), now);
                        records.insert(q, a);
                    }
                    Err(reason) => {
                        failed += 1;
                        tracing::debug!(query = %q, %reason, "DNS query failed");
                        if failure.is_none() {
                            failure = Some((q.name().to_owned(), reason));
                        }
                        records.insert(q, Answer::no_data());
                    }
                }
            }
            if asked > 0
                && failed == asked
                && !naptr_round
                && let Some((name, reason)) = failure
            {
                // Every question of the round failed: the server is not answering, so ask
                // nothing more. What is already known may still be enough (a failed AAAA
                // next to an A the SRV answer carried): use it rather than throw it away.
                let last = {
                    let mut rng = lock(&self.rng);
                    select(&records, rng.as_mut())
                };
                return match last {
                    Step::Done(Ok(targets)) if !targets.is_empty() => Ok(targets),
                    _ => Err(Error::Dns { name, reason }),
                };
            }
        }
        Err(Error::Dns {
            name: String::new(),
            reason: DnsFailure::Server("RFC 3263 selection did not converge".to_owned()),
        })
    }

    /// Fills `records` from the cache; returns the questions still to ask.
    fn fill_from_cache(&self, queries: Vec<Query>, records: &mut DnsRecords) -> Vec<Query> {
        let now = Instant::now();
        let mut cache = lock(&self.cache);
        let mut ask = Vec::new();
        for q in queries {
            match cache.get(&q, now) {
                Some(a) => records.insert(q, a),
                None => ask.push(q),
            }
        }
        ask
    }

    /// One question to the DNS server.
    async fn query(&self, q: &Query) -> std::result::Result<Answer, DnsFailure> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let result = match hickory_name(q) {
            Ok(name) => match self.dns.lookup(name, hickory_type(q.rtype())).await {
                Ok(lookup) => Ok(answer_from_records(q, lookup.records())),
                Err(e) => answer_from_error(&e),
            },
            Err(f) => Err(f),
        };
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        tracing::trace!(query = %q, ?result, "DNS answer");
        result
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain data; the data
/// (a cache, a random state) is still usable.
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}

    #[test]
    fn shareable_and_futures_are_send() {
        let r = SipResolver::with_nameserver(SocketAddr::from(([127, 0, 0, 1], 9)))
            .expect("no system configuration needed");
        send_sync(&r);
        let uri = TargetUri::parse("sip:example.test").expect("uri");
        // The manager spawns resolutions on a multi-threaded runtime.
        send(&r.resolve(&uri));
        let sent_by = SentBy {
            host: crate::uri::Host::Name("example.test".into()),
            port: None,
            transport: sip_transport_api::TransportKind::Udp,
        };
        send(&r.resolve_response(&sent_by));
        assert_eq!(r.stats(), ResolverStats::default());
    }

    #[test]
    fn system_configuration_builds_or_says_why() {
        match SipResolver::new(SipResolverConfig::default()) {
            Ok(r) => assert_eq!(r.config().nameserver, None),
            Err(e) => assert!(matches!(e, Error::InvalidConfig { .. }), "{e}"),
        }
    }
}
