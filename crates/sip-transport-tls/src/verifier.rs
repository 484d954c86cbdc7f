//! [`SipServerCertVerifier`]: server certificates checked as SIP wants (RFC 5922 §7), the way
//! [`TlsConfig`](crate::TlsConfig) builds every verifying client configuration.
//!
//! Why a custom verifier: rustls's `WebPkiServerVerifier` matches the server name by HTTPS's
//! rules (RFC 6125): dNSName and iPAddress entries, `*.` wildcards accepted. SIP's rules differ
//! (RFC 5922 §7.1, §7.2): `sip:` URI entries are the identities, dNSName entries count only
//! without them, and no wildcard ever matches. rustls has no knob for that, so this wraps its
//! verifier for everything but the name — chain building to the trust anchors, validity
//! period, key usage, revocation when configured, handshake signatures — and replaces only the
//! name check, with the rules in [`crate::sip_names`].
//!
//! It is not a path validator and never accepts a certificate rustls's verifier refused for
//! anything other than its name.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::identity::leaf_alt_names;

/// A rustls server certificate verifier for SIP: rustls's webpki verifier for the chain, the
/// validity period, key usage, revocation and handshake signatures; SIP's name rules
/// (RFC 5922 §7.1, §7.2) for the server name.
///
/// A DNS server name must equal, ASCII case-insensitively, the host of a `sip:` URI
/// subjectAltName without a user part, or — only when the certificate has no such URI — a
/// dNSName subjectAltName. Wildcards (`*.example.com`) match nothing. An IP address server
/// name must equal an iPAddress subjectAltName. A name that does not match fails as rustls's
/// verifier does, with `CertificateError::NotValidForNameContext`.
///
/// [`TlsConfig`](crate::TlsConfig) uses it for [`ServerVerification::WebPkiRoots`] and
/// [`ServerVerification::CaBundle`]; it is public for callers building their own
/// `rustls::ClientConfig` (through `dangerous().with_custom_certificate_verifier`, rustls's
/// only door for a custom verifier) who want the same rules.
///
/// [`ServerVerification::WebPkiRoots`]: crate::ServerVerification::WebPkiRoots
/// [`ServerVerification::CaBundle`]: crate::ServerVerification::CaBundle
#[derive(Debug, Clone)]
pub struct SipServerCertVerifier {
    webpki: Arc<WebPkiServerVerifier>,
}

impl SipServerCertVerifier {
    /// Wraps rustls's verifier, built with the trust anchors, crypto provider and revocation
    /// settings to use (`WebPkiServerVerifier::builder_with_provider(roots, provider)`).
    pub fn new(webpki: Arc<WebPkiServerVerifier>) -> Self {
        SipServerCertVerifier { webpki }
    }
}

impl ServerCertVerifier for SipServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // rustls checks the chain, validity, key usage and revocation first and the name last
        // (rustls 0.23 `WebPkiServerVerifier::verify_server_cert`; pinned by the tests below):
        // a name error means everything else passed. Its name verdict, HTTPS's, is discarded.
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {}
            Err(e) => return Err(e),
        }
        let sans = leaf_alt_names(end_entity.as_ref());
        let names = sans.alt_names();
        if names.covers(server_name) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext {
                    expected: server_name.to_owned(),
                    presented: names.presented(),
                },
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.webpki.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PemSource, TlsConfig, pem};
    use sip_transport_testkit::certs::{CertKey, SERVER_SIP_DOMAIN, TestPki, WRONG_NAME};

    fn verifiers(pki: &TestPki) -> (Arc<WebPkiServerVerifier>, SipServerCertVerifier) {
        let roots = pem::root_store(&PemSource::memory(&pki.ca_cert_pem)).expect("CA");
        let provider = TlsConfig::client().provider().expect("provider");
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .expect("verifier");
        (Arc::clone(&webpki), SipServerCertVerifier::new(webpki))
    }

    fn verify(
        v: &dyn ServerCertVerifier,
        cert: &CertKey,
        name: &str,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = if let Ok(ip) = name.parse::<std::net::IpAddr>() {
            ServerName::IpAddress(ip.into())
        } else {
            ServerName::try_from(name.to_owned()).expect("name")
        };
        let der = CertificateDer::from(cert.cert_der.as_slice());
        v.verify_server_cert(&der, &[], &name, &[], UnixTime::now())
    }

    fn name_mismatch(r: Result<ServerCertVerified, rustls::Error>) -> Vec<String> {
        match r {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            })) => presented,
            other => panic!("expected a name mismatch, got {other:?}"),
        }
    }

    #[test]
    fn sip_names_replace_https_names() {
        let pki = TestPki::generate();
        let (webpki, sip) = verifiers(&pki);
        // A DNS and an IP subjectAltName, as before.
        for name in ["localhost", "LOCALHOST", "127.0.0.1", "::1"] {
            verify(&sip, &pki.server, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        verify(&sip, &pki.wrong_name_server, WRONG_NAME).expect("its only name");
        // The wildcard: HTTPS accepts it, SIP does not.
        let wild = "a.wild.sip-transport.test";
        verify(webpki.as_ref(), &pki.wildcard_server, wild).expect("HTTPS rules");
        let presented = name_mismatch(verify(&sip, &pki.wildcard_server, wild));
        assert_eq!(presented, ["*.wild.sip-transport.test", "127.0.0.1"]);
        // The sip: URI: HTTPS refuses it, SIP accepts it.
        assert!(verify(webpki.as_ref(), &pki.sip_uri_server, SERVER_SIP_DOMAIN).is_err());
        verify(&sip, &pki.sip_uri_server, SERVER_SIP_DOMAIN).expect("sip: URI identity");
        let presented = name_mismatch(verify(&sip, &pki.sip_uri_server, "localhost"));
        assert_eq!(presented, [SERVER_SIP_DOMAIN]);
        name_mismatch(verify(&sip, &pki.server, "other.test"));
    }

    #[test]
    fn everything_but_the_name_is_still_checked_first() {
        // The wrapper trusts a name error to mean the rest passed; these pin rustls's order
        // (a certificate both wrong in name and otherwise bad reports the other problem).
        let pki = TestPki::generate();
        let (_, sip) = verifiers(&pki);
        let r = verify(&sip, &pki.untrusted_server, "other.test");
        assert!(
            matches!(
                r,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer
                ))
            ),
            "{r:?}"
        );
        let r = verify(&sip, &pki.expired_server, "other.test");
        assert!(
            matches!(
                r,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. }
                ))
            ),
            "{r:?}"
        );
        // A client certificate (client-auth EKU only) is no server certificate, whatever names
        // it carries: refused by rustls before the names are looked at.
        let r = verify(&sip, &pki.client, "client.sip-transport.test");
        assert!(
            matches!(&r, Err(rustls::Error::InvalidCertificate(e))
                if !matches!(e, CertificateError::NotValidForNameContext { .. })),
            "{r:?}"
        );
    }
}
