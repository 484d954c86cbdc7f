//! Choosing the listener's certificate by the name a client asks for (SNI, RFC 6066 §3), for a
//! server that is several SIP domains at once (Kamailio's per-domain `server_name` profiles).
//!
//! The configured default certificate answers clients that send no name — SIP clients that
//! reach an address, not a name, and IP literals, which SNI never carries — and names no other
//! certificate has. Among the others, a certificate whose SIP domain identity (RFC 5922 §7.1:
//! its `sip:` URI hosts, or else its dNSNames) is the name wins; then one with a dNSName equal
//! to the name; then one with a `*.` wildcard dNSName covering it by one label (what a browser
//! accepts for secure WebSocket). The first configured wins within a rank. Choosing a
//! certificate verifies nothing: the client still checks it by its own rules.

use std::fmt;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::identity::leaf_alt_names;

/// A certificate and the names it is chosen for, lowercased, without a trailing dot.
struct Named {
    /// SIP domain identities (RFC 5922 §7.1).
    sip: Vec<String>,
    /// dNSName entries; `*.` wildcards kept as written.
    dns: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// The resolver: a default certificate and the ones chosen by name.
pub(crate) struct SniResolver {
    default: Arc<CertifiedKey>,
    named: Vec<Named>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver")
            .field(
                "named",
                &self.named.iter().map(|n| &n.dns).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn normalise(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl SniResolver {
    /// A resolver answering with `default` unless one of `named` fits the client's name.
    /// Fails with the position (0-based) of a certificate that has no name to be chosen by
    /// (no `sip:` URI or dNSName in its subjectAltName: the CN does not count).
    pub(crate) fn new(
        default: Arc<CertifiedKey>,
        named: Vec<Arc<CertifiedKey>>,
    ) -> Result<Self, usize> {
        let named = named
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let sans = key
                    .end_entity_cert()
                    .map(|c| leaf_alt_names(c.as_ref()))
                    .unwrap_or_default();
                let names = sans.alt_names();
                let named = Named {
                    sip: names.domain_identities().map(normalise).collect(),
                    dns: names.dns.iter().map(|d| normalise(d)).collect(),
                    key,
                };
                if named.sip.is_empty() && named.dns.is_empty() {
                    Err(i)
                } else {
                    Ok(named)
                }
            })
            .collect::<Result<Vec<_>, usize>>()?;
        Ok(SniResolver { default, named })
    }

    /// The certificate for a client that asked for `name` (`None`: no name).
    pub(crate) fn choose(&self, name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = name.map(normalise) else {
            return &self.default;
        };
        let wildcard_of = |dns: &String| {
            dns.strip_prefix("*.").is_some_and(|parent| {
                name.split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent)
            })
        };
        let ranks: [&dyn Fn(&Named) -> bool; 3] = [
            &|n| n.sip.contains(&name),
            &|n| n.dns.contains(&name),
            &|n| n.dns.iter().any(wildcard_of),
        ];
        ranks
            .iter()
            .find_map(|fits| self.named.iter().find(|n| fits(n)))
            .map_or(&self.default, |n| &n.key)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.choose(client_hello.server_name())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pem::{certificates, private_key};
    use crate::{PemSource, provider};
    use sip_transport_testkit::certs::{
        CertKey, SERVER_SIP_DOMAIN, TestPki, WILDCARD_DNS_NAME, WRONG_NAME,
    };

    fn key(c: &CertKey) -> Arc<CertifiedKey> {
        let p = provider::feature_provider().expect("a crypto provider feature");
        let chain = certificates(&PemSource::memory(&c.cert_pem)).expect("chain");
        let key = private_key(&PemSource::memory(&c.key_pem)).expect("key");
        Arc::new(CertifiedKey::from_der(chain, key, &p).expect("matching key"))
    }

    fn leaf(k: &Arc<CertifiedKey>) -> &[u8] {
        k.end_entity_cert().expect("leaf").as_ref()
    }

    #[test]
    fn chooses_by_name_and_falls_back_to_the_default() {
        let pki = TestPki::generate();
        let default = key(&pki.server);
        let resolver = SniResolver::new(
            Arc::clone(&default),
            vec![
                key(&pki.wildcard_server),
                key(&pki.wrong_name_server),
                key(&pki.sip_uri_server),
            ],
        )
        .expect("every certificate has names");
        let chosen = |name: Option<&str>| leaf(resolver.choose(name)).to_vec();
        assert_eq!(chosen(None), pki.server.cert_der);
        assert_eq!(chosen(Some("unknown.test")), pki.server.cert_der);
        assert_eq!(chosen(Some(WRONG_NAME)), pki.wrong_name_server.cert_der);
        // Case and a trailing dot do not matter.
        let shouted = format!("{}.", WRONG_NAME.to_ascii_uppercase());
        assert_eq!(chosen(Some(&shouted)), pki.wrong_name_server.cert_der);
        // A `sip:` URI identity counts.
        assert_eq!(chosen(Some(SERVER_SIP_DOMAIN)), pki.sip_uri_server.cert_der);
        // The wildcard covers one label, not two, and not its own parent.
        let parent = WILDCARD_DNS_NAME.strip_prefix("*.").expect("a wildcard");
        assert_eq!(
            chosen(Some(&format!("a.{parent}"))),
            pki.wildcard_server.cert_der
        );
        assert_eq!(chosen(Some(&format!("a.b.{parent}"))), pki.server.cert_der);
        assert_eq!(chosen(Some(parent)), pki.server.cert_der);
    }

    #[test]
    fn exact_names_win_over_wildcards_whatever_the_order() {
        let pki = TestPki::generate();
        let parent = WILDCARD_DNS_NAME.strip_prefix("*.").expect("a wildcard");
        let exact = format!("a.{parent}");
        // A certificate whose dNSName is exactly `a.<parent>`, listed after the wildcard.
        let exact_cert = pki.issue_server_certificate("exact", &[exact.as_str()]);
        let resolver = SniResolver::new(
            key(&pki.server),
            vec![key(&pki.wildcard_server), key(&exact_cert)],
        )
        .expect("every certificate has names");
        assert_eq!(leaf(resolver.choose(Some(&exact))), exact_cert.cert_der);
        assert_eq!(
            leaf(resolver.choose(Some(&format!("b.{parent}")))),
            pki.wildcard_server.cert_der.as_slice()
        );
    }

    #[test]
    fn a_certificate_without_names_is_refused_by_position() {
        let pki = TestPki::generate();
        let nameless = pki.issue_server_certificate("nameless", &[]);
        let e = SniResolver::new(
            key(&pki.server),
            vec![key(&pki.wrong_name_server), key(&nameless)],
        )
        .expect_err("the CN is no name to choose by");
        assert_eq!(e, 1);
    }
}
