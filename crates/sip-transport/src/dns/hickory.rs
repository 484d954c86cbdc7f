//! The one place that knows hickory's types: its records and errors to ours.
//!
//! A lookup's records become an [`Answer`] (records of other types in an SRV lookup are the
//! additional section's target addresses); hickory's "no records" errors become negative
//! answers (NXDOMAIN or NODATA, with the SOA's negative TTL), everything else a
//! [`DnsFailure`] that is not cached.

use std::net::IpAddr;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, Record, RecordType as HickoryType};
use hickory_resolver::proto::{ProtoError, ProtoErrorKind};
use hickory_resolver::{Name, ResolveError, ResolveErrorKind};
use sip_transport_api::DnsFailure;

use super::records::{
    AdditionalAddress, AddressRecord, Answer, NaptrRecord, Query, RecordType, SrvRecord,
    normalize_name,
};

/// hickory's record type for ours.
pub(crate) fn hickory_type(t: RecordType) -> HickoryType {
    match t {
        RecordType::Naptr => HickoryType::NAPTR,
        RecordType::Srv => HickoryType::SRV,
        RecordType::A => HickoryType::A,
        RecordType::Aaaa => HickoryType::AAAA,
    }
}

/// The query name as an absolute hickory name (the trailing dot keeps the system's search
/// list out: RFC 3263 names are fully qualified). `from_ascii` accepts the `_sip._udp`
/// labels that IDNA processing would reject.
pub(crate) fn hickory_name(query: &Query) -> Result<Name, DnsFailure> {
    Name::from_ascii(format!("{}.", query.name()))
        .map_err(|e| DnsFailure::Server(format!("invalid name {:?}: {e}", query.name())))
}

/// The records of a successful lookup as an answer to `query`. No record of the asked type
/// (e.g. only a CNAME) is NODATA.
pub(crate) fn answer_from_records(query: &Query, records: &[Record]) -> Answer {
    let answer = match query.rtype() {
        RecordType::Naptr => Answer::Naptr(records.iter().filter_map(naptr).collect()),
        RecordType::Srv => Answer::Srv {
            records: records.iter().filter_map(srv).collect(),
            additional: records
                .iter()
                .filter_map(|r| {
                    address(r).map(|record| AdditionalAddress {
                        name: name_of(r.name()),
                        record,
                    })
                })
                .collect(),
        },
        RecordType::A | RecordType::Aaaa => Answer::Addresses(
            records
                .iter()
                .filter_map(address)
                .filter(|a| a.ip.is_ipv4() == (query.rtype() == RecordType::A))
                .collect(),
        ),
    };
    if answer.is_empty() {
        Answer::no_data()
    } else {
        answer
    }
}

/// A failed lookup: a negative answer (cacheable) or a failure (not).
pub(crate) fn answer_from_error(err: &ResolveError) -> Result<Answer, DnsFailure> {
    match err.kind() {
        ResolveErrorKind::Proto(p) => from_proto(p),
        _ => Err(DnsFailure::Server(err.to_string())),
    }
}

fn from_proto(p: &ProtoError) -> Result<Answer, DnsFailure> {
    match p.kind() {
        ProtoErrorKind::NoRecordsFound {
            response_code,
            negative_ttl,
            ..
        } => match *response_code {
            ResponseCode::NXDomain => Ok(Answer::NxDomain {
                negative_ttl: *negative_ttl,
            }),
            ResponseCode::NoError => Ok(Answer::NoData {
                negative_ttl: *negative_ttl,
            }),
            code => Err(DnsFailure::Server(code.to_string())),
        },
        ProtoErrorKind::Timeout => Err(DnsFailure::Timeout),
        _ => Err(DnsFailure::Server(p.to_string())),
    }
}

fn name_of(n: &Name) -> String {
    normalize_name(&n.to_ascii())
}

fn naptr(r: &Record) -> Option<NaptrRecord> {
    let RData::NAPTR(n) = r.data() else {
        return None;
    };
    Some(NaptrRecord {
        order: n.order(),
        preference: n.preference(),
        flags: String::from_utf8_lossy(n.flags()).into_owned(),
        services: String::from_utf8_lossy(n.services()).into_owned(),
        replacement: name_of(n.replacement()),
        ttl: r.ttl(),
    })
}

fn srv(r: &Record) -> Option<SrvRecord> {
    let RData::SRV(s) = r.data() else {
        return None;
    };
    Some(SrvRecord {
        priority: s.priority(),
        weight: s.weight(),
        port: s.port(),
        target: name_of(s.target()),
        ttl: r.ttl(),
    })
}

fn address(r: &Record) -> Option<AddressRecord> {
    let ip = match r.data() {
        RData::A(a) => IpAddr::V4(a.0),
        RData::AAAA(a) => IpAddr::V6(a.0),
        _ => return None,
    };
    Some(AddressRecord { ip, ttl: r.ttl() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::op::Query as HickoryQuery;
    use hickory_resolver::proto::rr::rdata::{A, CNAME, NAPTR, SRV};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("valid name")
    }

    #[test]
    fn converts_records() {
        let srv_q = Query::new("_sip._udp.example.test", RecordType::Srv);
        let recs = [
            Record::from_rdata(
                name("_sip._udp.example.test."),
                300,
                RData::SRV(SRV::new(10, 20, 5060, name("Sip1.Example.test."))),
            ),
            Record::from_rdata(
                name("sip1.example.test."),
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ),
        ];
        let Answer::Srv {
            records,
            additional,
        } = answer_from_records(&srv_q, &recs)
        else {
            panic!("not SRV");
        };
        assert_eq!(records[0].target, "sip1.example.test");
        assert_eq!(
            (records[0].priority, records[0].weight, records[0].port),
            (10, 20, 5060)
        );
        assert_eq!(additional[0].name, "sip1.example.test");
        assert_eq!(additional[0].record.ttl, 60);

        let naptr_q = Query::new("example.test", RecordType::Naptr);
        let n = Record::from_rdata(
            name("example.test."),
            120,
            RData::NAPTR(NAPTR::new(
                10,
                20,
                b"s".to_vec().into_boxed_slice(),
                b"SIP+D2U".to_vec().into_boxed_slice(),
                Vec::new().into_boxed_slice(),
                name("_sip._udp.example.test."),
            )),
        );
        let Answer::Naptr(v) = answer_from_records(&naptr_q, &[n]) else {
            panic!("not NAPTR");
        };
        assert_eq!(v[0].replacement, "_sip._udp.example.test");
        assert_eq!(v[0].services, "SIP+D2U");

        // Only a CNAME: NODATA for the asked type.
        let a_q = Query::new("alias.example.test", RecordType::A);
        let c = Record::from_rdata(
            name("alias.example.test."),
            60,
            RData::CNAME(CNAME(name("gone.example.test."))),
        );
        assert_eq!(answer_from_records(&a_q, &[c]), Answer::no_data());
    }

    #[test]
    fn converts_errors() {
        let nx = ProtoError::from(ProtoErrorKind::NoRecordsFound {
            query: Box::new(HickoryQuery::default()),
            soa: None,
            ns: None,
            negative_ttl: Some(42),
            response_code: ResponseCode::NXDomain,
            trusted: true,
            authorities: None,
        });
        assert_eq!(
            from_proto(&nx),
            Ok(Answer::NxDomain {
                negative_ttl: Some(42)
            })
        );
        let servfail = ProtoError::from(ProtoErrorKind::NoRecordsFound {
            query: Box::new(HickoryQuery::default()),
            soa: None,
            ns: None,
            negative_ttl: None,
            response_code: ResponseCode::ServFail,
            trusted: false,
            authorities: None,
        });
        assert!(matches!(from_proto(&servfail), Err(DnsFailure::Server(_))));
        let timeout = ProtoError::from(ProtoErrorKind::Timeout);
        assert_eq!(from_proto(&timeout), Err(DnsFailure::Timeout));
        let root = Query::new(".", RecordType::A);
        assert!(hickory_name(&root).is_ok());
    }
}
