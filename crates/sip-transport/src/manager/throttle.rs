//! The optional cap on requests per second per destination: one token bucket per address
//! (capacity and refill rate both the cap), bounded in number. The clock is passed in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use sip_transport_api::{Error, Result};

use super::lock;

/// Most destinations tracked; past it, buckets that are full again are forgotten, and when
/// none is, the fullest one.
const MAX_BUCKETS: usize = 8192;

#[derive(Debug)]
pub(crate) struct Throttle {
    limit: u32,
    buckets: Mutex<HashMap<SocketAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Throttle {
    pub(crate) fn new(limit: u32) -> Self {
        Throttle {
            limit: limit.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one send from `dest`'s bucket, or fails with [`Error::Throttled`].
    pub(crate) fn admit(&self, dest: SocketAddr, now: Instant) -> Result<()> {
        let cap = f64::from(self.limit);
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&dest) {
            buckets.retain(|_, b| refill(b, now, cap) < cap);
            if buckets.len() >= MAX_BUCKETS {
                // Every bucket is busy: forget the one with most tokens left (the destination
                // nearest to its cap being lifted anyway) rather than grow, or forget them
                // all, which would lift the cap for every busy destination at once.
                let fullest = buckets
                    .iter()
                    .max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens))
                    .map(|(k, _)| *k);
                if let Some(k) = fullest {
                    buckets.remove(&k);
                }
            }
        }
        let b = buckets.entry(dest).or_insert(Bucket {
            tokens: cap,
            last: now,
        });
        if refill(b, now, cap) >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Error::Throttled {
                destination: dest,
                limit: self.limit,
            })
        }
    }
}

fn refill(b: &mut Bucket, now: Instant, cap: f64) -> f64 {
    let dt = now.saturating_duration_since(b.last).as_secs_f64();
    b.tokens = (b.tokens + dt * cap).min(cap);
    b.last = now;
    b.tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn caps_then_refills_per_destination() {
        let t = Throttle::new(3);
        let now = Instant::now();
        let a = SocketAddr::from(([127, 0, 0, 1], 5060));
        let b = SocketAddr::from(([127, 0, 0, 2], 5060));
        for _ in 0..3 {
            t.admit(a, now).expect("within the cap");
        }
        let e = t.admit(a, now).expect_err("over the cap");
        assert!(matches!(e, Error::Throttled { destination, limit: 3 } if destination == a));
        assert!(e.is_recoverable());
        t.admit(b, now)
            .expect("another destination has its own bucket");
        t.admit(a, now + Duration::from_millis(340))
            .expect("one token back after 1/3 s");
        assert!(t.admit(a, now + Duration::from_millis(340)).is_err());
    }

    #[test]
    fn a_full_table_forgets_one_destination_not_all() {
        let t = Throttle::new(1);
        let now = Instant::now();
        let dest = |i: usize| {
            let [_, _, hi, lo] = (i as u32).to_be_bytes();
            SocketAddr::from(([10, 0, hi, lo], 5060))
        };
        for i in 0..MAX_BUCKETS {
            t.admit(dest(i), now).expect("first send");
        }
        // Every bucket is empty; one more destination takes the place of exactly one.
        t.admit(dest(MAX_BUCKETS), now).expect("a new destination");
        let still_capped = (0..MAX_BUCKETS)
            .filter(|i| t.admit(dest(*i), now).is_err())
            .count();
        // The forgotten one starts again with a full bucket (admitted, then tracked in
        // place of another, which is admitted in turn, and so on): at most a handful of
        // sends over the cap, never the whole table's.
        assert!(still_capped >= MAX_BUCKETS - 2, "{still_capped}");
        assert!(lock(&t.buckets).len() <= MAX_BUCKETS);
    }
}
