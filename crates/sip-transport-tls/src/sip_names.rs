//! SIP's certificate name rules (RFC 5922 §7.1, §7.2): which subjectAltName entries of a
//! certificate are SIP domain identities, and whether they cover a server name.
//!
//! One implementation for both places that ask: the handshake's verifier
//! ([`SipServerCertVerifier`](crate::SipServerCertVerifier)) and the pool's reuse check
//! ([`TlsConnector`](crate::TlsConnector)'s `serves_name`), so a pooled connection never serves
//! a name a new handshake would refuse. Pure functions over SAN entries: reading them from DER
//! is `identity.rs`'s job, verifying the chain is rustls's.
//!
//! These are not HTTPS's rules (RFC 6125, what webpki implements): no wildcard of any form ever
//! matches (RFC 5922 §7.2), `sip:` URI entries are identities, and when a certificate has any,
//! its dNSName entries are not (§7.1).

use std::net::IpAddr;

use rustls_pki_types::ServerName;
use sip_transport_api::PeerIdentity;

/// The subjectAltName entries the rules look at, borrowed from a [`PeerIdentity`] or from
/// entries just read from a leaf certificate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AltNames<'a> {
    /// dNSName entries, as written in the certificate.
    pub(crate) dns: &'a [String],
    /// iPAddress entries.
    pub(crate) ips: &'a [IpAddr],
    /// uniformResourceIdentifier entries, as written in the certificate.
    pub(crate) uris: &'a [String],
}

impl<'a> AltNames<'a> {
    /// The entries of a peer's identity.
    pub(crate) fn of(identity: &'a PeerIdentity) -> Self {
        AltNames {
            dns: &identity.dns_names,
            ips: &identity.ip_addresses,
            uris: &identity.uris,
        }
    }

    /// The certificate's SIP domain identities (RFC 5922 §7.1): the hosts of its `sip:` URI
    /// entries without a user part; if and only if there is none, its dNSName entries.
    /// (The CN fallback the RFC allows — MAY, only without any subjectAltName — is not taken.)
    pub(crate) fn domain_identities(self) -> impl Iterator<Item = &'a str> {
        let mut from_uris = self
            .uris
            .iter()
            .filter_map(|u| sip_uri_domain(u))
            .peekable();
        // §7.1: a dNSName is an identity "if and only if no other identity is found that
        // matches the 'sip' URI type".
        let from_dns = if from_uris.peek().is_none() {
            self.dns
        } else {
            &[]
        };
        from_uris.chain(from_dns.iter().map(String::as_str))
    }

    /// Whether the certificate is valid for `name`: an IP address equals an iPAddress entry
    /// (RFC 5922 has no rule for addresses; this is what TLS clients check for them); a DNS
    /// name equals a SIP domain identity as a whole, ASCII case-insensitively, a trailing dot
    /// ignored, never through a wildcard (RFC 5922 §7.2).
    pub(crate) fn covers(self, name: &ServerName<'_>) -> bool {
        match name {
            ServerName::IpAddress(ip) => self.ips.contains(&IpAddr::from(*ip)),
            ServerName::DnsName(dns) => self
                .domain_identities()
                .any(|id| domain_identity_matches(id, dns.as_ref())),
            _ => false,
        }
    }

    /// What the certificate presents, for an error message: its SIP domain identities (as
    /// written, wildcards included) and its IP addresses.
    pub(crate) fn presented(self) -> Vec<String> {
        self.domain_identities()
            .map(str::to_owned)
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect()
    }
}

/// Whether `identity`'s certificate covers `name` by the rules above.
pub(crate) fn covers(identity: &PeerIdentity, name: &ServerName<'_>) -> bool {
    AltNames::of(identity).covers(name)
}

/// The SIP domain identity of a subjectAltName URI (RFC 5922 §7.1): its host when the scheme
/// is `sip` (case-insensitive, RFC 3261 §19.1.4) and there is no user part; `None` for any
/// other scheme (`sips` included, §7.1's note), a user part or an empty host. Port, parameters
/// and headers are not part of the identity (§7.2).
fn sip_uri_domain(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("sip") || rest.contains('@') {
        // RFC 3261 §25.1: `@` occurs in a SIP URI only after the userinfo, never in a
        // parameter or header value, so any `@` means a user part.
        return None;
    }
    let host = match rest.strip_prefix('[') {
        Some(v6) => &rest[..v6.find(']')? + 2],
        None => rest.split([':', ';', '?']).next().unwrap_or_default(),
    };
    (!host.is_empty()).then_some(host)
}

/// RFC 5922 §7.2: compared as DNS names (ASCII case-insensitively, RFC 4343), in their
/// entirety (no suffix match), and no wildcard in any form: an identity with `*` matches
/// nothing, and a leading `.` cannot equal a valid name. Internationalized names compare as
/// their A-labels (RFC 5280 §7.2), which is what both sides hold here.
fn domain_identity_matches(identity: &str, name: &str) -> bool {
    let identity = identity.strip_suffix('.').unwrap_or(identity);
    let name = name.strip_suffix('.').unwrap_or(name);
    !identity.is_empty() && !identity.contains('*') && identity.eq_ignore_ascii_case(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn dns(n: &str) -> ServerName<'static> {
        ServerName::try_from(n.to_owned()).expect("dns name")
    }

    fn ip(n: &str) -> ServerName<'static> {
        ServerName::IpAddress(n.parse::<IpAddr>().expect("ip").into())
    }

    fn id(dns: &[&str], uris: &[&str]) -> PeerIdentity {
        PeerIdentity::new(
            [0; 32],
            dns.iter().map(|s| (*s).to_owned()).collect(),
            vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
            uris.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    #[test]
    fn sip_uri_domains() {
        for (uri, want) in [
            ("sip:example.com", Some("example.com")),
            ("SIP:Example.COM", Some("Example.COM")),
            ("sip:example.com:5061", Some("example.com")),
            ("sip:example.com;transport=tls", Some("example.com")),
            ("sip:example.com?subject=x", Some("example.com")),
            ("sip:[2001:db8::1]:5061", Some("[2001:db8::1]")),
            ("sip:alice@example.com", None),
            ("sip:alice:secret@example.com", None),
            ("sips:example.com", None),
            ("https://example.com", None),
            ("sip:", None),
            ("sip:[::1", None),
            ("example.com", None),
        ] {
            assert_eq!(sip_uri_domain(uri), want, "{uri}");
        }
    }

    #[test]
    fn dns_names_match_exactly() {
        let id = id(
            &["sip.Example.com", "*.wild.example.com", ".dot.example.com"],
            &[],
        );
        assert!(covers(&id, &dns("SIP.example.COM")));
        assert!(covers(&id, &dns("sip.example.com.")));
        // RFC 5922 §7.2: no wildcard of any form, no suffix match.
        assert!(!covers(&id, &dns("a.wild.example.com")));
        assert!(!covers(&id, &dns("wild.example.com")));
        assert!(!covers(&id, &dns("a.dot.example.com")));
        assert!(!covers(&id, &dns("dot.example.com")));
        assert!(!covers(&id, &dns("example.com")));
        assert!(!covers(&id, &dns("a.sip.example.com")));
        let star = PeerIdentity::new([0; 32], vec!["*".into(), "*.com".into()], vec![], vec![]);
        assert!(!covers(&star, &dns("example.com")));
        assert!(!covers(&star, &dns("com")));
    }

    #[test]
    fn sip_uris_take_precedence_over_dns_names() {
        // §7.1: with a sip: URI identity present, dNSName entries are not identities.
        let both = id(&["dns.example.com"], &["sip:uri.example.com"]);
        assert!(covers(&both, &dns("uri.example.com")));
        assert!(covers(&both, &dns("URI.example.com.")));
        assert!(!covers(&both, &dns("dns.example.com")));
        assert_eq!(
            AltNames::of(&both).presented(),
            vec!["uri.example.com".to_owned(), "192.0.2.1".to_owned()]
        );
        // URIs that are no SIP domain identity leave the dNSName entries in force.
        let not_identities = id(
            &["dns.example.com"],
            &[
                "sip:alice@uri.example.com",
                "sips:uri.example.com",
                "https://uri.example.com",
            ],
        );
        assert!(covers(&not_identities, &dns("dns.example.com")));
        assert!(!covers(&not_identities, &dns("uri.example.com")));
        // A URI identity is never a wildcard either.
        let wild_uri = id(&[], &["sip:*.example.com"]);
        assert!(!covers(&wild_uri, &dns("a.example.com")));
    }

    #[test]
    fn addresses_match_address_entries_only() {
        let id = id(&["192.0.2.2"], &["sip:192.0.2.3"]);
        assert!(covers(&id, &ip("192.0.2.1")));
        assert!(!covers(&id, &ip("192.0.2.2")));
        assert!(!covers(&id, &ip("192.0.2.3")));
        let none = PeerIdentity::new([0; 32], vec![], vec![], vec![]);
        assert!(!covers(&none, &ip("192.0.2.1")));
        assert!(!covers(&none, &dns("example.com")));
    }
}
