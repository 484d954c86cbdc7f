//! RFC 3263 server location (feature `dns`): from a SIP URI to the ordered list of
//! (transport, address, TLS name) targets to try, and from a Via sent-by to where a response
//! goes (§5).
//!
//! Two layers, so that every rule is tested without DNS:
//! - sans-IO: [`locate_server`] and [`locate_response`] read plain records ([`DnsRecords`])
//!   and either name the queries they still need or return the targets; [`DnsCache`] keeps
//!   answers for their TTL with the time passed in; [`order_srv`] is RFC 2782's ordering
//!   with injected randomness ([`SrvRandom`]);
//! - I/O: [`SipResolver`] asks hickory-resolver those queries (the system's DNS servers or
//!   one given `IP:PORT`) and feeds the answers back.
//!
//! hickory has NAPTR records but no RFC 3263 chain; NAPTR → SRV → A/AAAA is done here.
//! Trying targets in order (failover) and choosing a bound transport for each is the
//! caller's job (the facade's transport manager).
//!
//! ```
//! use sip_transport::dns::{
//!     locate_server, DnsRecords, NaptrRecord, ResolvePolicy, SrvRecord, Step, TargetUri,
//! };
//! use sip_transport::TransportKind;
//!
//! let records = DnsRecords::new()
//!     .with_naptr("example.com", vec![NaptrRecord {
//!         order: 10, preference: 10, flags: "s".into(), services: "SIPS+D2T".into(),
//!         replacement: "_sips._tcp.example.com".into(), ttl: 300,
//!     }])
//!     .with_srv("_sips._tcp.example.com", vec![SrvRecord {
//!         priority: 0, weight: 0, port: 5061, target: "sip1.example.com".into(), ttl: 300,
//!     }])
//!     .with_host("sip1.example.com", &["192.0.2.10".parse()?], 300);
//! let uri: TargetUri = "sips:alice@example.com".parse()?;
//! let Step::Done(Ok(targets)) =
//!     locate_server(&uri, &ResolvePolicy::default(), &records, &mut |_| 0)
//! else {
//!     panic!("all records are given");
//! };
//! assert_eq!(targets[0].kind, TransportKind::Tls);
//! assert_eq!(targets[0].addr, "192.0.2.10:5061".parse()?);
//! assert_eq!(targets[0].server_name.as_deref(), Some("example.com")); // RFC 5922 §4
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod hickory;
mod naptr;
mod policy;
mod records;
mod resolver;
mod select;
mod srv;

pub use crate::uri::{Host, SentBy, TargetUri};
pub use cache::{CacheConfig, CacheStats, DnsCache};
pub use naptr::{naptr_targets, service_transport};
pub use policy::{IpOrder, ResolvePolicy};
pub use records::{
    AdditionalAddress, AddressRecord, Answer, DnsRecords, NaptrRecord, Query, RecordType,
    SrvRecord, normalize_name,
};
pub use resolver::{ResolverStats, SipResolver, SipResolverConfig};
pub use select::{Step, Target, locate_response, locate_server, srv_prefix};
pub use srv::{DefaultRandom, SrvRandom, order_srv};
