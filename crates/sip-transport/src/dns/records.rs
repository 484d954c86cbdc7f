//! DNS records as plain data: what the RFC 3263 selection reads and the cache stores.
//!
//! These are not hickory's types on purpose: the selection ([`super::select`]) is a pure
//! function over these structs, so every rule is tested without a DNS server, and the
//! resolver converts hickory's answers into them in one place ([`super::hickory`]).
//! Names are kept in one normal form (lower case, no trailing dot), see [`normalize_name`].

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use super::srv::{SrvRandom, order_srv};

/// The record types RFC 3263 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// NAPTR (RFC 3403): which transports a domain offers and where their SRV records are.
    Naptr,
    /// SRV (RFC 2782): the servers, ports, priorities and weights of one transport.
    Srv,
    /// A: IPv4 addresses.
    A,
    /// AAAA: IPv6 addresses.
    Aaaa,
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::Naptr => "NAPTR",
            RecordType::Srv => "SRV",
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        })
    }
}

/// One DNS question: a name and a record type. The name is normalised on construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query {
    name: String,
    rtype: RecordType,
}

impl Query {
    /// A question for `name` (any case, with or without the trailing dot).
    pub fn new(name: &str, rtype: RecordType) -> Self {
        Query {
            name: normalize_name(name),
            rtype,
        }
    }

    /// The name, lower case, without the trailing dot.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The record type.
    pub fn rtype(&self) -> RecordType {
        self.rtype
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
    }
}

pub use crate::uri::normalize_name;

/// A NAPTR record (RFC 3403 §4.1), as far as RFC 3263 §4.1 uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    /// Order: lower first; once one matches, other orders are not considered.
    pub order: u16,
    /// Preference among records of the same order: lower first.
    pub preference: u16,
    /// Flags; RFC 3263 uses `S` (the next lookup is SRV on the replacement).
    pub flags: String,
    /// The service, e.g. `SIP+D2U`, `SIPS+D2T`, `SIP+D2W` (RFC 7118).
    pub services: String,
    /// The replacement domain (normalised); empty when the record has none (`.`).
    pub replacement: String,
    /// Time to live, in seconds.
    pub ttl: u32,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Priority: lower first.
    pub priority: u16,
    /// Relative weight among records of the same priority.
    pub weight: u16,
    /// The port the service listens on.
    pub port: u16,
    /// The target host (normalised); empty for `.`, "the service is decidedly not available".
    pub target: String,
    /// Time to live, in seconds.
    pub ttl: u32,
}

impl SrvRecord {
    /// True when the target is `.` (RFC 2782: the service is not available at this domain).
    pub fn is_unavailable(&self) -> bool {
        self.target.is_empty()
    }
}

/// An A or AAAA record's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRecord {
    /// The address.
    pub ip: IpAddr,
    /// Time to live, in seconds.
    pub ttl: u32,
}

/// An address record that came in the additional section of an SRV answer (RFC 2782:
/// the additional data section may hold the targets' addresses, saving a query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdditionalAddress {
    /// The owner name (normalised): one of the SRV targets.
    pub name: String,
    /// The address.
    pub record: AddressRecord,
}

/// What one query returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NAPTR records.
    Naptr(Vec<NaptrRecord>),
    /// SRV records, with the target addresses given in the additional section, if any.
    Srv {
        /// The SRV records.
        records: Vec<SrvRecord>,
        /// Addresses of the targets from the additional section.
        additional: Vec<AdditionalAddress>,
    },
    /// A or AAAA addresses.
    Addresses(Vec<AddressRecord>),
    /// The name exists but has no record of this type (NODATA, RFC 2308 §2.2).
    NoData {
        /// The negative TTL from the SOA, when the server sent one.
        negative_ttl: Option<u32>,
    },
    /// The name does not exist (NXDOMAIN, RFC 2308 §2.1).
    NxDomain {
        /// The negative TTL from the SOA, when the server sent one.
        negative_ttl: Option<u32>,
    },
}

impl Answer {
    /// An SRV answer without additional data.
    pub fn srv(records: Vec<SrvRecord>) -> Self {
        Answer::Srv {
            records,
            additional: Vec::new(),
        }
    }

    /// NODATA without a negative TTL.
    pub fn no_data() -> Self {
        Answer::NoData { negative_ttl: None }
    }

    /// NXDOMAIN without a negative TTL.
    pub fn nx_domain() -> Self {
        Answer::NxDomain { negative_ttl: None }
    }

    /// True for NODATA, NXDOMAIN, and record lists that are empty.
    pub fn is_empty(&self) -> bool {
        match self {
            Answer::Naptr(r) => r.is_empty(),
            Answer::Srv { records, .. } => records.is_empty(),
            Answer::Addresses(r) => r.is_empty(),
            Answer::NoData { .. } | Answer::NxDomain { .. } => true,
        }
    }

    /// True for NXDOMAIN.
    pub fn is_nx_domain(&self) -> bool {
        matches!(self, Answer::NxDomain { .. })
    }

    /// How long the answer may be kept: the smallest TTL of its records (RFC 2181 §5.2: the
    /// TTLs of an RRset should agree; the minimum is the safe reading when they do not), or
    /// the negative TTL, or `negative_default` for a negative answer without one.
    pub fn ttl(&self, negative_default: u32) -> u32 {
        let min = |it: &mut dyn Iterator<Item = u32>| it.min().unwrap_or(negative_default);
        match self {
            Answer::Naptr(r) => min(&mut r.iter().map(|r| r.ttl)),
            Answer::Srv {
                records,
                additional,
            } => min(&mut records
                .iter()
                .map(|r| r.ttl)
                .chain(additional.iter().map(|a| a.record.ttl))),
            Answer::Addresses(r) => min(&mut r.iter().map(|r| r.ttl)),
            Answer::NoData { negative_ttl } | Answer::NxDomain { negative_ttl } => {
                negative_ttl.unwrap_or(negative_default)
            }
        }
    }
}

/// The answers known so far for one resolution: what [`locate_server`](super::locate_server)
/// and [`locate_response`](super::locate_response) read.
///
/// A query that is absent has not been asked yet; a negative answer is stored as
/// [`Answer::NoData`] or [`Answer::NxDomain`], so the selection can tell the two apart.
///
/// It also keeps the RFC 2782 order drawn for each SRV answer once it is pinned
/// ([`pin_srv_orders`](Self::pin_srv_orders)), so that every round of one resolution
/// follows the same SRV records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsRecords {
    answers: HashMap<Query, Answer>,
    /// SRV records in their pinned order, per SRV query.
    srv_orders: HashMap<Query, Vec<SrvRecord>>,
}

impl DnsRecords {
    /// No answers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the answer to `query`, replacing an earlier one (and its pinned SRV order).
    pub fn insert(&mut self, query: Query, answer: Answer) {
        self.srv_orders.remove(&query);
        self.answers.insert(query, answer);
    }

    /// Draws the RFC 2782 order ([`order_srv`]) of every SRV answer that has none yet and
    /// keeps it: selection over these records then follows that order instead of drawing
    /// again. A caller that selects in rounds (answer the queries, call again) pins before
    /// each call, so every round follows the same records; [`SipResolver`] does. Answers
    /// are drawn in query order, so one random sequence gives one result.
    ///
    /// [`SipResolver`]: super::SipResolver
    pub fn pin_srv_orders(&mut self, rng: &mut dyn SrvRandom) {
        let mut unpinned: Vec<(&Query, &[SrvRecord])> = self
            .answers
            .iter()
            .filter(|(q, _)| !self.srv_orders.contains_key(*q))
            .filter_map(|(q, a)| match a {
                Answer::Srv { records, .. } => Some((q, records.as_slice())),
                _ => None,
            })
            .collect();
        unpinned.sort_by_key(|(q, _)| *q);
        let drawn: Vec<(Query, Vec<SrvRecord>)> = unpinned
            .into_iter()
            .map(|(q, records)| {
                let order = order_srv(records, rng).into_iter().cloned().collect();
                (q.clone(), order)
            })
            .collect();
        self.srv_orders.extend(drawn);
    }

    /// The SRV records of the answer to `query` in their pinned order (usable ones only,
    /// see [`order_srv`]), if the order is pinned.
    pub(crate) fn pinned_srv_order(&self, query: &Query) -> Option<&[SrvRecord]> {
        self.srv_orders.get(query).map(Vec::as_slice)
    }

    /// The answer to `query`, if it has been asked.
    pub fn get(&self, query: &Query) -> Option<&Answer> {
        self.answers.get(query)
    }

    /// True when `query` has an answer (positive or negative).
    pub fn contains(&self, query: &Query) -> bool {
        self.answers.contains_key(query)
    }

    /// Number of answers stored.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// True when no answer is stored.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Builder-style [`insert`](Self::insert) of NAPTR records for `name`.
    pub fn with_naptr(mut self, name: &str, records: Vec<NaptrRecord>) -> Self {
        self.insert(Query::new(name, RecordType::Naptr), Answer::Naptr(records));
        self
    }

    /// Builder-style [`insert`](Self::insert) of SRV records for `name`.
    pub fn with_srv(mut self, name: &str, records: Vec<SrvRecord>) -> Self {
        self.insert(Query::new(name, RecordType::Srv), Answer::srv(records));
        self
    }

    /// Builder-style [`insert`](Self::insert) of addresses for `name`: the IPv4 ones as its A
    /// answer, the IPv6 ones as its AAAA answer; a family with no address gets NODATA.
    pub fn with_host(mut self, name: &str, ips: &[IpAddr], ttl: u32) -> Self {
        let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = ips.iter().partition(|ip| ip.is_ipv4());
        for (rtype, ips) in [(RecordType::A, v4), (RecordType::Aaaa, v6)] {
            let answer = if ips.is_empty() {
                Answer::no_data()
            } else {
                Answer::Addresses(
                    ips.into_iter()
                        .map(|ip| AddressRecord { ip, ttl })
                        .collect(),
                )
            };
            self.insert(Query::new(name, rtype), answer);
        }
        self
    }

    /// Builder-style [`insert`](Self::insert) of any answer.
    pub fn with(mut self, name: &str, rtype: RecordType, answer: Answer) -> Self {
        self.insert(Query::new(name, rtype), answer);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize_name("Example.COM."), "example.com");
        assert_eq!(normalize_name("example.com"), "example.com");
        assert_eq!(normalize_name("."), "");
        assert_eq!(
            Query::new("_SIP._udp.Example.com.", RecordType::Srv),
            Query::new("_sip._udp.example.com", RecordType::Srv)
        );
    }

    #[test]
    fn answer_ttl_is_the_minimum() {
        let srv = |ttl| SrvRecord {
            priority: 0,
            weight: 0,
            port: 5060,
            target: "a".into(),
            ttl,
        };
        let a = Answer::Srv {
            records: vec![srv(300), srv(60)],
            additional: vec![AdditionalAddress {
                name: "a".into(),
                record: AddressRecord {
                    ip: [192, 0, 2, 1].into(),
                    ttl: 30,
                },
            }],
        };
        assert_eq!(a.ttl(5), 30);
        assert_eq!(Answer::no_data().ttl(5), 5);
        assert_eq!(
            Answer::NxDomain {
                negative_ttl: Some(9)
            }
            .ttl(5),
            9
        );
        assert_eq!(Answer::Naptr(vec![]).ttl(7), 7);
    }

    #[test]
    fn with_host_splits_families() {
        let r = DnsRecords::new().with_host("h", &[IpAddr::from([192, 0, 2, 1])], 60);
        assert!(
            matches!(r.get(&Query::new("h", RecordType::A)), Some(Answer::Addresses(v)) if v.len() == 1)
        );
        assert_eq!(
            r.get(&Query::new("h", RecordType::Aaaa)),
            Some(&Answer::no_data())
        );
    }
}
