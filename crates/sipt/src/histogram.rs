//! `LatencyHistogram`: the latencies `sipt bench` reports percentiles of, in bounded memory.
//!
//! Log-linear buckets, as HdrHistogram lays them out: values below 256 µs each have their own
//! bucket (exact); above, every power of two is split into 128 equal buckets, so a bucket is
//! at most 1/128 of its lowest value wide and a percentile read at its middle is within 0.4%
//! of the recorded value. Values are microseconds up to `u32::MAX` (71 minutes; more counts as
//! that). At most 3,328 counters (26 KiB), allocated only up to the largest value recorded:
//! memory does not grow with the number of transactions, as a list of them did.
//!
//! Not a general histogram: no subtraction, no iteration, no other units.

/// Bits of a value kept below the leading one: 128 buckets per power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// The largest value kept apart; larger ones are recorded as this.
const MAX_VALUE: u64 = u32::MAX as u64;

/// Counts of latencies in microseconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
}

/// The bucket of `v` (at most `MAX_VALUE`).
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let shift = (63 - v.leading_zeros()) - SUB_BITS;
    // `v >> shift` keeps the leading one and SUB_BITS bits: SUB..2*SUB.
    (SUB + u64::from(shift) * SUB + ((v >> shift) - SUB)) as usize
}

/// The lowest value of bucket `i` and its width.
fn bucket(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, 1);
    }
    let shift = (i - SUB) / SUB;
    let sub = (i - SUB) % SUB;
    ((SUB + sub) << shift, 1 << shift)
}

impl LatencyHistogram {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records one latency of `micros`.
    pub(crate) fn record(&mut self, micros: u64) {
        let v = micros.min(MAX_VALUE);
        let i = index(v);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        if self.total == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.total += 1;
    }

    /// Adds another histogram's counts to this one.
    pub(crate) fn merge(&mut self, other: &LatencyHistogram) {
        if other.total == 0 {
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.min = if self.total == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = self.max.max(other.max);
        self.total += other.total;
    }

    /// The latency at quantile `p` (0..=1), in microseconds: as a sorted list of every value
    /// would give at index `ceil(len * p) - 1` (the first for p = 0), within the bucket
    /// error; exact for the minimum and maximum. 0 when empty.
    pub(crate) fn quantile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64 * p).ceil() as u64).clamp(1, self.total);
        if rank == 1 {
            return self.min;
        }
        if rank == self.total {
            return self.max;
        }
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket(i);
                return (low + width / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of latencies: roughly log-uniform from 1 µs to the 71 minutes
    /// kept apart, plus two clusters, as a run with a fast path and a slow tail gives.
    fn samples(n: usize) -> Vec<u64> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|i| match i % 4 {
                0 => 80 + next() % 40,
                1 => 1_500 + next() % 500,
                _ => {
                    let bits = next() % 32;
                    (1u64 << bits) + next() % (1u64 << bits)
                }
            })
            .collect()
    }

    /// What the old list of latencies reported: the sorted value at `ceil(n * p) - 1`.
    fn exact(sorted: &[u64], p: f64) -> u64 {
        let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i]
    }

    #[test]
    fn buckets_cover_the_range_in_order() {
        let mut last = bucket(0);
        assert_eq!(last, (0, 1));
        for i in 1..=index(MAX_VALUE) {
            let (low, width) = bucket(i);
            assert_eq!(low, last.0 + last.1, "bucket {i} follows bucket {}", i - 1);
            assert_eq!(index(low), i);
            assert_eq!(index(low + width - 1), i);
            assert!(
                width * SUB <= low.max(SUB),
                "bucket {i}: {width} wide at {low}"
            );
            last = (low, width);
        }
        assert_eq!(index(MAX_VALUE), 3327);
    }

    #[test]
    fn quantiles_within_half_a_percent_of_the_sorted_list() {
        let values = samples(200_000);
        let mut h = LatencyHistogram::new();
        for v in &values {
            h.record(*v);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(h.total, sorted.len() as u64);
        for p in [
            0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0,
        ] {
            let want = exact(&sorted, p);
            let got = h.quantile(p);
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err <= 0.005, "p{p}: {got} for {want} ({:.3}%)", err * 100.0);
        }
        assert_eq!(h.quantile(0.0), sorted[0]);
        assert_eq!(h.quantile(1.0), sorted[sorted.len() - 1]);
        // Below 256 µs every value is its own bucket: exact.
        let mut small = LatencyHistogram::new();
        for v in (0..256).rev() {
            small.record(v);
        }
        for k in 1..=256u64 {
            assert_eq!(small.quantile(k as f64 / 256.0), k - 1);
        }
    }

    #[test]
    fn merged_equals_recorded_together_and_memory_is_bounded() {
        let values = samples(10_000);
        let (a, b) = values.split_at(3_000);
        let mut all = LatencyHistogram::new();
        let mut left = LatencyHistogram::new();
        let mut right = LatencyHistogram::new();
        for v in a {
            all.record(*v);
            left.record(*v);
        }
        for v in b {
            all.record(*v);
            right.record(*v);
        }
        let mut merged = LatencyHistogram::new();
        merged.merge(&right);
        merged.merge(&left);
        merged.merge(&LatencyHistogram::new());
        for p in [0.0, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(merged.quantile(p), all.quantile(p), "p{p}");
        }
        assert_eq!(merged.total, 10_000);
        // Any number of values, any size: at most 3,328 counters.
        let mut h = LatencyHistogram::new();
        for v in [u64::MAX, 0, 1 << 40, 5] {
            h.record(v);
        }
        assert_eq!(h.counts.len(), 3_328);
        assert_eq!(h.quantile(1.0), MAX_VALUE);
        assert_eq!(LatencyHistogram::new().quantile(0.5), 0);
    }
}
