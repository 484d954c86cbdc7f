//! Load balancing over targets of equal priority: smooth weighted round-robin
//! ([`LoadBalancing::RoundRobin`]), or the resolver's RFC 2782 weighted random order as it is
//! ([`LoadBalancing::Weighted`]).
//!
//! Smooth weighted round-robin (as nginx does it): each round every target's current value
//! grows by its weight, the largest goes first and loses the total. Over `sum(weights)` rounds
//! each target is first exactly `weight` times, interleaved. State is kept per (request URI,
//! transport, priority), bounded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use sip_transport_api::TransportKind;

use super::config::LoadBalancing;
use super::lock;
use super::targets::Candidate;

/// Most groups whose round-robin state is kept; past it the state starts over.
const MAX_GROUPS: usize = 4096;

type GroupKey = (String, TransportKind, u16);

#[derive(Debug)]
pub(crate) struct Balancer {
    mode: LoadBalancing,
    groups: Mutex<HashMap<GroupKey, HashMap<SocketAddr, i64>>>,
}

impl Balancer {
    pub(crate) fn new(mode: LoadBalancing) -> Self {
        Balancer {
            mode,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Reorders `targets` (in the resolver's order: by priority, then RFC 2782) per the mode.
    /// Runs of one transport and priority are the groups; each group's pick moves to its front.
    pub(crate) fn order(&self, key: &str, targets: &mut [Candidate]) {
        if self.mode != LoadBalancing::RoundRobin {
            return;
        }
        let mut groups = lock(&self.groups);
        if groups.len() >= MAX_GROUPS {
            groups.clear();
        }
        let mut start = 0;
        while start < targets.len() {
            let (kind, prio) = (targets[start].kind, targets[start].priority);
            let len = targets[start..]
                .iter()
                .take_while(|t| t.kind == kind && t.priority == prio)
                .count();
            if len > 1 {
                let group = &mut targets[start..start + len];
                let state = groups.entry((key.to_owned(), kind, prio)).or_default();
                let pick = smooth_pick(state, group);
                group[..=pick].rotate_right(1);
            }
            start += len;
        }
    }
}

/// One round of smooth weighted round-robin over `group`; returns the index picked.
fn smooth_pick(state: &mut HashMap<SocketAddr, i64>, group: &[Candidate]) -> usize {
    // Forget targets no longer in the group.
    state.retain(|addr, _| group.iter().any(|t| t.addr == *addr));
    let all_zero = group.iter().all(|t| t.weight == 0);
    let weight = |t: &Candidate| if all_zero { 1 } else { i64::from(t.weight) };
    let total: i64 = group.iter().map(weight).sum();
    let mut best: Option<(usize, i64)> = None;
    // A fixed order (by address) so ties go the same way whatever the resolver's order.
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by_key(|&i| group[i].addr);
    for i in order {
        let t = &group[i];
        let cur = state.entry(t.addr).or_insert(0);
        *cur += weight(t);
        if best.is_none_or(|(_, b)| *cur > b) {
            best = Some((i, *cur));
        }
    }
    let Some((i, _)) = best else { return 0 };
    if let Some(cur) = state.get_mut(&group[i].addr) {
        *cur -= total;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(port: u16, priority: u16, weight: u16) -> Candidate {
        Candidate {
            kind: TransportKind::Udp,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            server_name: None,
            priority,
            weight,
            multicast_ttl: None,
            resource: None,
            udp_size_rule_waived: false,
        }
    }

    fn firsts(b: &Balancer, base: &[Candidate], n: usize) -> Vec<u16> {
        (0..n)
            .map(|_| {
                let mut t = base.to_vec();
                b.order("sip:x", &mut t);
                assert_eq!(t.len(), base.len());
                t[0].addr.port()
            })
            .collect()
    }

    #[test]
    fn equal_weights_alternate() {
        let b = Balancer::new(LoadBalancing::RoundRobin);
        let base = [c(1, 10, 0), c(2, 10, 0), c(3, 20, 0)];
        assert_eq!(firsts(&b, &base, 4), [1, 2, 1, 2]);
        // The lower priority stays last.
        let mut t = base.to_vec();
        b.order("sip:x", &mut t);
        assert_eq!(t[2].addr.port(), 3);
    }

    #[test]
    fn weights_give_shares_interleaved() {
        let b = Balancer::new(LoadBalancing::RoundRobin);
        let base = [c(1, 0, 1), c(2, 0, 3)];
        let got = firsts(&b, &base, 8);
        assert_eq!(got.iter().filter(|p| **p == 1).count(), 2, "{got:?}");
        assert_eq!(got[..4].iter().filter(|p| **p == 2).count(), 3, "{got:?}");
    }

    #[test]
    fn weighted_mode_keeps_the_resolver_order() {
        let b = Balancer::new(LoadBalancing::Weighted);
        let base = [c(2, 0, 1), c(1, 0, 3)];
        assert_eq!(firsts(&b, &base, 3), [2, 2, 2]);
    }
}
