//! A TTL cache of DNS answers keyed by (name, type), sans-IO: the time is passed in.
//!
//! Positive answers live for the smallest TTL of their records, negative ones (NXDOMAIN,
//! NODATA) for their SOA-derived negative TTL (RFC 2308 §5) or a configured default; both
//! clamped to `[min_ttl, max_ttl]`. The cache is bounded: when full, expired entries go
//! first, then the one closest to expiry. Timeouts and server failures are never cached.
//! It is not a resolver and knows nothing of RFC 3263.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::records::{Answer, Query};

/// Bounds of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// At most this many answers are kept (0 disables the cache).
    pub max_entries: usize,
    /// No answer is kept for less than this (0 keeps TTL-0 answers out of the cache, as
    /// RFC 1035 §3.2.1 asks).
    pub min_ttl: Duration,
    /// No answer is kept for longer than this.
    pub max_ttl: Duration,
    /// TTL of a negative answer that carries no SOA (RFC 2308 §5 derives it from the SOA).
    pub negative_ttl: Duration,
}

impl Default for CacheConfig {
    /// 1,024 entries; TTLs honoured up to one hour; 30 s for negative answers without SOA.
    fn default() -> Self {
        CacheConfig {
            max_entries: 1024,
            min_ttl: Duration::ZERO,
            max_ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(30),
        }
    }
}

impl CacheConfig {
    /// Sets the entry bound.
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Sets the TTL clamp.
    pub fn with_ttl_clamp(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max.max(min);
        self
    }

    /// Sets the TTL of negative answers without SOA.
    pub fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// How long `answer` is kept: its TTL, clamped.
    pub fn lifetime(&self, answer: &Answer) -> Duration {
        let negative = u32::try_from(self.negative_ttl.as_secs()).unwrap_or(u32::MAX);
        let ttl = Duration::from_secs(u64::from(answer.ttl(negative)));
        ttl.clamp(self.min_ttl, self.max_ttl.max(self.min_ttl))
    }
}

/// Counters of a [`DnsCache`], as a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups not in the cache (or expired).
    pub misses: u64,
    /// Answers stored.
    pub inserts: u64,
    /// Live answers dropped to make room.
    pub evictions: u64,
    /// Answers held now (some may have expired and not been purged yet).
    pub entries: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    answer: Answer,
    expires: Instant,
}

/// The cache. Not synchronised: the resolver wraps it in a mutex.
#[derive(Debug, Clone)]
pub struct DnsCache {
    config: CacheConfig,
    entries: HashMap<Query, Entry>,
    stats: CacheStats,
}

impl DnsCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        DnsCache {
            config,
            entries: HashMap::new(),
            stats: CacheStats::default(),
        }
    }

    /// The bounds in force.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The answer to `query` if one is cached and has not expired at `now`.
    pub fn get(&mut self, query: &Query, now: Instant) -> Option<Answer> {
        match self.entries.get(query) {
            Some(e) if now < e.expires => {
                self.stats.hits += 1;
                Some(e.answer.clone())
            }
            Some(_) => {
                self.entries.remove(query);
                self.stats.misses += 1;
                None
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Stores `answer` for `query`, received at `now`. Answers whose clamped TTL is zero are
    /// not stored.
    pub fn insert(&mut self, query: Query, answer: Answer, now: Instant) {
        let life = self.config.lifetime(&answer);
        if life.is_zero() || self.config.max_entries == 0 {
            return;
        }
        if !self.entries.contains_key(&query) && self.entries.len() >= self.config.max_entries {
            self.purge_expired(now);
            if self.entries.len() >= self.config.max_entries {
                self.evict_soonest();
            }
        }
        let expires = now.checked_add(life).unwrap_or(now);
        self.entries.insert(query, Entry { answer, expires });
        self.stats.inserts += 1;
    }

    /// Drops every answer expired at `now`.
    pub fn purge_expired(&mut self, now: Instant) {
        self.entries.retain(|_, e| now < e.expires);
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of answers held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.entries.len(),
            ..self.stats
        }
    }

    /// O(n) in the bound; fine for the few thousand entries a SIP element resolves.
    fn evict_soonest(&mut self) {
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.expires)
            .map(|(q, _)| q.clone());
        if let Some(q) = victim {
            self.entries.remove(&q);
            self.stats.evictions += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::records::{AddressRecord, RecordType};

    fn addr(ttl: u32) -> Answer {
        Answer::Addresses(vec![AddressRecord {
            ip: [192, 0, 2, 1].into(),
            ttl,
        }])
    }

    fn q(name: &str) -> Query {
        Query::new(name, RecordType::A)
    }

    #[test]
    fn honours_the_ttl() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(CacheConfig::default());
        c.insert(q("a"), addr(60), t0);
        assert_eq!(c.get(&q("a"), t0 + Duration::from_secs(59)), Some(addr(60)));
        assert_eq!(c.get(&q("a"), t0 + Duration::from_secs(60)), None);
        assert!(c.is_empty(), "an expired entry is dropped when seen");
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.inserts), (1, 1, 1));
    }

    #[test]
    fn keyed_by_name_and_type() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(CacheConfig::default());
        c.insert(q("A.example."), addr(60), t0);
        assert!(c.get(&q("a.example"), t0).is_some());
        assert!(
            c.get(&Query::new("a.example", RecordType::Aaaa), t0)
                .is_none()
        );
    }

    #[test]
    fn clamps_ttls() {
        let t0 = Instant::now();
        let cfg = CacheConfig::default()
            .with_ttl_clamp(Duration::from_secs(5), Duration::from_secs(100))
            .with_negative_ttl(Duration::from_secs(7));
        let mut c = DnsCache::new(cfg);
        c.insert(q("zero"), addr(0), t0);
        c.insert(q("long"), addr(86_400), t0);
        c.insert(q("neg"), Answer::no_data(), t0);
        c.insert(
            q("nx"),
            Answer::NxDomain {
                negative_ttl: Some(1),
            },
            t0,
        );
        let at = |s| t0 + Duration::from_secs(s);
        assert!(c.get(&q("zero"), at(4)).is_some(), "raised to min_ttl");
        assert!(c.get(&q("zero"), at(5)).is_none());
        assert!(c.get(&q("long"), at(99)).is_some(), "cut to max_ttl");
        assert!(c.get(&q("long"), at(100)).is_none());
        assert!(c.get(&q("neg"), at(6)).is_some(), "negative default");
        assert!(c.get(&q("neg"), at(7)).is_none());
        assert!(
            c.get(&q("nx"), at(4)).is_some(),
            "SOA negative TTL raised to min"
        );
    }

    #[test]
    fn ttl_zero_is_not_cached_by_default() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(CacheConfig::default());
        c.insert(q("a"), addr(0), t0);
        assert!(c.is_empty());
        let mut off = DnsCache::new(CacheConfig::default().with_max_entries(0));
        off.insert(q("a"), addr(60), t0);
        assert!(off.is_empty());
    }

    #[test]
    fn bounded_expired_first_then_soonest() {
        let t0 = Instant::now();
        let mut c = DnsCache::new(CacheConfig::default().with_max_entries(2));
        c.insert(q("short"), addr(10), t0);
        c.insert(q("long"), addr(100), t0);
        // Full, nothing expired: the one closest to expiry goes.
        c.insert(q("new"), addr(50), t0);
        assert_eq!(c.len(), 2);
        assert!(c.get(&q("short"), t0).is_none());
        assert_eq!(c.stats().evictions, 1);
        // At t0+60 "new" has expired: it makes room without evicting a live entry.
        c.insert(q("later"), addr(50), t0 + Duration::from_secs(60));
        assert!(c.get(&q("long"), t0 + Duration::from_secs(60)).is_some());
        assert!(c.get(&q("later"), t0 + Duration::from_secs(60)).is_some());
        assert_eq!(c.stats().evictions, 1);
        // Replacing an existing key never evicts.
        c.insert(q("long"), addr(100), t0 + Duration::from_secs(60));
        assert_eq!(c.stats().evictions, 1);
        c.clear();
        assert!(c.is_empty());
    }
}
