//! SRV ordering (RFC 2782): by priority, then weighted random selection within a priority.
//!
//! The randomness is injected through [`SrvRandom`] so tests pin the order; the default
//! source, [`DefaultRandom`], is a small non-cryptographic generator seeded per resolver
//! (load spreading needs no more). This file does no lookups.
//!
//! For one random sequence the order depends only on the records, not on the order the
//! server listed them in (see `weighted_order`).

use std::hash::{BuildHasher, Hasher};

use super::records::SrvRecord;

/// The random numbers RFC 2782's weighted selection draws.
pub trait SrvRandom: Send {
    /// A uniformly distributed number in `0..=max`.
    fn uniform_inclusive(&mut self, max: u32) -> u32;
}

/// Closures are sources too: `|max| 0` always picks the first candidate, `|max| max` the last.
impl<F: FnMut(u32) -> u32 + Send> SrvRandom for F {
    fn uniform_inclusive(&mut self, max: u32) -> u32 {
        self(max).min(max)
    }
}

/// A SplitMix64 generator, seeded from the standard library's per-process random hash keys.
/// Not for cryptography; enough to spread load the way RFC 2782 asks.
#[derive(Debug, Clone)]
pub struct DefaultRandom {
    state: u64,
}

impl DefaultRandom {
    /// A generator with a fresh random seed.
    pub fn new() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5349_5033_3236_3321);
        Self::from_seed(h.finish())
    }

    /// A generator with a fixed seed (reproducible sequences).
    pub fn from_seed(seed: u64) -> Self {
        DefaultRandom { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Default for DefaultRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl SrvRandom for DefaultRandom {
    fn uniform_inclusive(&mut self, max: u32) -> u32 {
        // Multiply-shift maps 64 random bits onto 0..=max without the bias of `%`
        // worth speaking of (the range is at most 2^32 values).
        let span = u128::from(max) + 1;
        let v = (u128::from(self.next_u64()) * span) >> 64;
        u32::try_from(v).unwrap_or(max)
    }
}

/// Orders SRV records for contacting, as RFC 2782 ("Usage rules") says: ascending priority;
/// within one priority, repeatedly pick a record at random with probability proportional to
/// its weight (zero-weight records first in the running sum, so they are chosen rarely but
/// can be). Records whose target is `.` are left out: they say the service is unavailable.
pub fn order_srv<'a>(records: &'a [SrvRecord], rng: &mut dyn SrvRandom) -> Vec<&'a SrvRecord> {
    let mut usable: Vec<&SrvRecord> = records.iter().filter(|r| !r.is_unavailable()).collect();
    usable.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(usable.len());
    let mut rest = usable.as_slice();
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(n);
        weighted_order(group, rng, &mut out);
        rest = tail;
    }
    out
}

/// RFC 2782's selection within one priority: zero weights at the front, a uniform number in
/// `0..=sum`, the first record whose running sum reaches it; remove it and repeat.
///
/// RFC 2782 allows "any order" apart from zero weights first; ascending (weight, target,
/// port) is such an order and makes the result independent of the order the DNS server
/// happened to list the records in, so a given random sequence always gives one ordering.
fn weighted_order<'a>(
    group: &[&'a SrvRecord],
    rng: &mut dyn SrvRandom,
    out: &mut Vec<&'a SrvRecord>,
) {
    let mut left: Vec<&SrvRecord> = group.to_vec();
    left.sort_by(|a, b| (a.weight, &a.target, a.port).cmp(&(b.weight, &b.target, b.port)));
    while !left.is_empty() {
        let total = left
            .iter()
            .fold(0u32, |sum, r| sum.saturating_add(u32::from(r.weight)));
        let pick = rng.uniform_inclusive(total);
        let mut running = 0u32;
        let i = left
            .iter()
            .position(|r| {
                running = running.saturating_add(u32::from(r.weight));
                running >= pick
            })
            .unwrap_or(left.len() - 1);
        out.push(left.remove(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5060,
            target: target.to_owned(),
            ttl: 60,
        }
    }

    fn targets(v: &[&SrvRecord]) -> Vec<String> {
        v.iter().map(|r| r.target.clone()).collect()
    }

    #[test]
    fn priority_first() {
        let recs = [srv(20, 0, "c"), srv(10, 0, "a"), srv(10, 0, "b")];
        let mut first = |_| 0;
        assert_eq!(targets(&order_srv(&recs, &mut first)), ["a", "b", "c"]);
    }

    #[test]
    fn weighted_selection_follows_the_running_sum() {
        // Weights 10, 30, 60 in that order: running sums 10, 40, 100.
        let recs = [srv(1, 10, "a"), srv(1, 30, "b"), srv(1, 60, "c")];
        // First draw 0..=100; 50 falls in c's share; then 0..=40 over [a, b]: 5 → a.
        let mut draws = vec![50u32, 5].into_iter();
        let mut rng = move |_| draws.next().unwrap_or(0);
        assert_eq!(targets(&order_srv(&recs, &mut rng)), ["c", "a", "b"]);
        // Always the top of the range: the last record each time.
        let mut last = |max| max;
        assert_eq!(targets(&order_srv(&recs, &mut last)), ["c", "b", "a"]);
    }

    #[test]
    fn zero_weights_go_first_in_the_running_sum() {
        let recs = [srv(1, 50, "heavy"), srv(1, 0, "zero")];
        // A draw of 0 selects the zero-weight record (it is first in the running sum).
        let mut zero = |_| 0;
        assert_eq!(targets(&order_srv(&recs, &mut zero)), ["zero", "heavy"]);
        let mut one = |max: u32| max.min(1);
        assert_eq!(targets(&order_srv(&recs, &mut one)), ["heavy", "zero"]);
    }

    #[test]
    fn answer_order_does_not_matter() {
        let a = [srv(1, 10, "b"), srv(1, 10, "a"), srv(1, 5, "c")];
        let b = [srv(1, 5, "c"), srv(1, 10, "a"), srv(1, 10, "b")];
        for draw in [0u32, 7, 12, 25] {
            let mut r1 = move |max: u32| draw.min(max);
            let mut r2 = move |max: u32| draw.min(max);
            assert_eq!(
                targets(&order_srv(&a, &mut r1)),
                targets(&order_srv(&b, &mut r2))
            );
        }
    }

    #[test]
    fn dot_targets_are_dropped() {
        let recs = [srv(0, 0, ""), srv(1, 0, "a")];
        let mut first = |_| 0;
        assert_eq!(targets(&order_srv(&recs, &mut first)), ["a"]);
    }

    #[test]
    fn default_random_spreads_by_weight() {
        // 1,000 orderings of weights 1 and 3. RFC 2782 draws from 0..=4 and a draw of 0 or 1
        // selects the first record, so the heavier one comes first 3/5 of the time (not 3/4:
        // the inclusive zero is the RFC's, and Go's net package does the same).
        let recs = [srv(1, 1, "light"), srv(1, 3, "heavy")];
        let mut rng = DefaultRandom::from_seed(7);
        let heavy_first = (0..1000)
            .filter(|_| order_srv(&recs, &mut rng)[0].target == "heavy")
            .count();
        assert!((520..680).contains(&heavy_first), "{heavy_first}");
        for max in [0, 1, 7, u32::MAX] {
            assert!(rng.uniform_inclusive(max) <= max);
        }
    }
}
