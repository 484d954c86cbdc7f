//! NAPTR filtering and ordering for SIP (RFC 3263 §4.1 over RFC 3403 §4.1).
//!
//! Pure: from a NAPTR RRset to the (transport, SRV name) pairs to follow, in order.

use sip_transport_api::TransportKind;

use super::policy::ResolvePolicy;
use super::records::NaptrRecord;

/// The transport a SIP NAPTR service names: `SIP+D2U` UDP, `SIP+D2T` TCP, `SIPS+D2T` TLS
/// (RFC 3263 §4.1), `SIP+D2W` WS and `SIPS+D2W` WSS (RFC 7118; IANA's SIP NAPTR services
/// registry). SCTP
/// (`SIP+D2S`, `SIPS+D2S`) and anything else: `None`. Case-insensitive.
pub fn service_transport(services: &str) -> Option<TransportKind> {
    const MAP: [(&str, TransportKind); 5] = [
        ("SIP+D2U", TransportKind::Udp),
        ("SIP+D2T", TransportKind::Tcp),
        ("SIPS+D2T", TransportKind::Tls),
        ("SIP+D2W", TransportKind::Ws),
        ("SIPS+D2W", TransportKind::Wss),
    ];
    let s = services.trim();
    MAP.iter()
        .find(|(name, _)| s.eq_ignore_ascii_case(name))
        .map(|(_, k)| *k)
}

/// The NAPTR records to follow, in order, each as (transport, SRV name):
/// - only `S` records with a replacement (RFC 3263 §4.1 uses SRV as the next step; records
///   for other flags or with a regexp are not SIP server location);
/// - only services naming a transport the policy allows; for a SIPS URI only `SIPS+...`
///   services (RFC 3263 §4.1: "MUST discard any services that do not contain SIPS"), while a
///   SIP URI keeps `SIPS+D2T` when TLS is allowed (ibid., "SHOULD retain");
/// - ascending order, and only the lowest order that has a usable record (RFC 3403 §4.1:
///   once a match is found, records with a different order MUST NOT be considered), unless
///   the policy's `strict_naptr_order` is off;
/// - within it ascending preference; equal preferences follow the policy's transport order.
pub fn naptr_targets(
    records: &[NaptrRecord],
    secure: bool,
    policy: &ResolvePolicy,
) -> Vec<(TransportKind, String)> {
    let mut usable: Vec<(&NaptrRecord, TransportKind)> = records
        .iter()
        .filter(|r| r.flags.trim().eq_ignore_ascii_case("s") && !r.replacement.is_empty())
        .filter_map(|r| service_transport(&r.services).map(|k| (r, k)))
        .filter(|(_, k)| policy.allows(*k) && (!secure || k.is_secure()))
        .collect();
    let Some(first_order) = usable.iter().map(|(r, _)| r.order).min() else {
        return Vec::new();
    };
    if policy.strict_naptr_order {
        usable.retain(|(r, _)| r.order == first_order);
    }
    usable.sort_by_key(|(r, k)| (r.order, r.preference, policy.rank(*k)));
    let mut out: Vec<(TransportKind, String)> = Vec::with_capacity(usable.len());
    for (r, k) in usable {
        if !out
            .iter()
            .any(|(ok, name)| *ok == k && *name == r.replacement)
        {
            out.push((k, r.replacement.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naptr(order: u16, pref: u16, flags: &str, service: &str, repl: &str) -> NaptrRecord {
        NaptrRecord {
            order,
            preference: pref,
            flags: flags.into(),
            services: service.into(),
            replacement: repl.into(),
            ttl: 60,
        }
    }

    #[test]
    fn services() {
        assert_eq!(service_transport("sips+d2t"), Some(TransportKind::Tls));
        assert_eq!(service_transport("SIP+D2W"), Some(TransportKind::Ws));
        assert_eq!(service_transport("SIPS+D2W"), Some(TransportKind::Wss));
        assert_eq!(service_transport("SIP+D2S"), None);
        assert_eq!(service_transport("E2U+sip"), None);
    }

    #[test]
    fn lowest_matching_order_only() {
        let recs = [
            // Order 10 has only SCTP, which we do not support: not a match.
            naptr(10, 10, "s", "SIP+D2S", "_sip._sctp.example.com"),
            naptr(20, 20, "s", "SIP+D2U", "_sip._udp.example.com"),
            naptr(20, 10, "s", "SIP+D2T", "_sip._tcp.example.com"),
            naptr(30, 10, "s", "SIPS+D2T", "_sips._tcp.example.com"),
        ];
        let got = naptr_targets(&recs, false, &ResolvePolicy::default());
        assert_eq!(
            got,
            [
                (TransportKind::Tcp, "_sip._tcp.example.com".to_owned()),
                (TransportKind::Udp, "_sip._udp.example.com".to_owned()),
            ]
        );
    }

    #[test]
    fn all_orders_when_not_strict() {
        // The example zone of RFC 3263 §4.1.
        let recs = [
            naptr(90, 50, "s", "SIP+D2T", "_sip._tcp.example.com"),
            naptr(100, 50, "s", "SIP+D2U", "_sip._udp.example.com"),
            naptr(50, 50, "s", "SIPS+D2T", "_sips._tcp.example.com"),
        ];
        let strict = naptr_targets(&recs, false, &ResolvePolicy::default());
        assert_eq!(
            strict,
            [(TransportKind::Tls, "_sips._tcp.example.com".to_owned())]
        );
        let all: Vec<TransportKind> = naptr_targets(
            &recs,
            false,
            &ResolvePolicy::default().with_strict_naptr_order(false),
        )
        .into_iter()
        .map(|t| t.0)
        .collect();
        assert_eq!(
            all,
            [TransportKind::Tls, TransportKind::Tcp, TransportKind::Udp]
        );
    }

    #[test]
    fn filters_flags_replacement_and_policy() {
        let recs = [
            naptr(10, 10, "a", "SIP+D2U", "host.example.com"),
            naptr(10, 10, "s", "SIP+D2U", ""),
            naptr(10, 20, "S", "SIP+D2T", "_sip._tcp.example.com"),
            naptr(10, 30, "s", "SIP+D2U", "_sip._udp.example.com"),
        ];
        let udp_only = ResolvePolicy::new([TransportKind::Udp]);
        assert_eq!(
            naptr_targets(&recs, false, &udp_only),
            [(TransportKind::Udp, "_sip._udp.example.com".to_owned())]
        );
    }

    #[test]
    fn sips_never_downgrades_but_sip_keeps_sips() {
        let recs = [
            naptr(10, 10, "s", "SIP+D2U", "_sip._udp.example.com"),
            naptr(10, 20, "s", "SIPS+D2T", "_sips._tcp.example.com"),
            naptr(10, 30, "s", "SIP+D2W", "_sip._ws.example.com"),
            naptr(10, 40, "s", "SIPS+D2W", "_sips._ws.example.com"),
        ];
        let p = ResolvePolicy::default();
        let secure: Vec<TransportKind> = naptr_targets(&recs, true, &p)
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(secure, [TransportKind::Tls, TransportKind::Wss]);
        let plain: Vec<TransportKind> = naptr_targets(&recs, false, &p)
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(
            plain,
            [
                TransportKind::Udp,
                TransportKind::Tls,
                TransportKind::Ws,
                TransportKind::Wss
            ]
        );
    }

    #[test]
    fn equal_preference_follows_policy() {
        let recs = [
            naptr(10, 10, "s", "SIP+D2U", "_sip._udp.example.com"),
            naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.example.com"),
        ];
        let got = naptr_targets(&recs, false, &ResolvePolicy::default());
        assert_eq!(got[0].0, TransportKind::Tcp);
    }
}
