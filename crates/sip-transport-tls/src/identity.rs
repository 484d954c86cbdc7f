//! The peer's certificate identity: the SHA-256 fingerprint of its leaf certificate and the
//! subjectAltName entries SIP cares about (RFC 5922 §7.1), read from the DER bytes.
//!
//! The reader below is a small, bounds-checked DER walker that knows exactly the path
//! Certificate → tbsCertificate → extensions → subjectAltName. It never panics on malformed
//! input: anything it cannot read yields no SAN entries (the fingerprint is always there), so
//! a name check on such a certificate fails. It verifies nothing itself: the server verifier
//! reads the names with it once rustls has checked the chain, and the connector reads the
//! identity of a peer rustls has verified (unless the configuration dangerously disabled
//! verification). Which entries are SIP identities is [`crate::sip_names`]' business.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use sip_transport_api::PeerIdentity;

use crate::sip_names::AltNames;

/// Builds the identity of a leaf certificate.
pub(crate) fn peer_identity(leaf_der: &[u8]) -> PeerIdentity {
    let fingerprint: [u8; 32] = Sha256::digest(leaf_der).into();
    let sans = subject_alt_names(leaf_der).unwrap_or_default();
    PeerIdentity::new(fingerprint, sans.dns, sans.ips, sans.uris)
}

/// The subjectAltName entries of a leaf certificate, for name checks
/// ([`crate::sip_names`]); none when they cannot be read.
pub(crate) fn leaf_alt_names(leaf_der: &[u8]) -> Sans {
    subject_alt_names(leaf_der).unwrap_or_default()
}

/// The subjectAltName entries SIP cares about, owned.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Sans {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    uris: Vec<String>,
}

impl Sans {
    /// The entries, borrowed for the name rules.
    pub(crate) fn alt_names(&self) -> AltNames<'_> {
        AltNames {
            dns: &self.dns,
            ips: &self.ips,
            uris: &self.uris,
        }
    }
}

/// At most this many entries of each kind are kept: a certificate is peer-controlled input.
const MAX_ENTRIES: usize = 256;

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const EXTENSIONS: u8 = 0xa3; // [3] EXPLICIT, constructed
const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11]; // 2.5.29.17
const GN_DNS: u8 = 0x82; // [2] IMPLICIT IA5String
const GN_URI: u8 = 0x86; // [6] IMPLICIT IA5String
const GN_IP: u8 = 0x87; // [7] IMPLICIT OCTET STRING

/// A cursor over DER TLVs.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next TLV: (tag, contents). `None` at the end or on malformed input.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers do not occur on this path
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None; // indefinite or absurd lengths are not DER certificates
            }
            let bytes = rest.get(..n)?;
            rest = rest.get(n..)?;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        let contents = rest.get(..len)?;
        self.0 = rest.get(len..)?;
        Some((tag, contents))
    }

    /// The next TLV if it has `tag`.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (t, c) if t == tag => Some(c),
            _ => None,
        }
    }
}

fn subject_alt_names(cert: &[u8]) -> Option<Sans> {
    let certificate = Der(cert).expect(SEQUENCE)?;
    let mut tbs = Der(Der(certificate).expect(SEQUENCE)?);
    // version, serial, signature, issuer, validity, subject, spki, then optional fields;
    // the extensions are the [3] element, wherever it is.
    let extensions = loop {
        let (tag, contents) = tbs.next()?;
        if tag == EXTENSIONS {
            break contents;
        }
    };
    let mut list = Der(Der(extensions).expect(SEQUENCE)?);
    while let Some((tag, ext)) = list.next() {
        if tag != SEQUENCE {
            return None;
        }
        let mut ext = Der(ext);
        if ext.expect(OID)? != SAN_OID {
            continue;
        }
        let mut value = ext.next()?;
        if value.0 == BOOLEAN {
            value = ext.next()?; // critical flag
        }
        if value.0 != OCTET_STRING {
            return None;
        }
        return Some(general_names(Der(value.1).expect(SEQUENCE)?));
    }
    Some(Sans::default())
}

fn general_names(names: &[u8]) -> Sans {
    let mut out = Sans::default();
    let mut names = Der(names);
    while let Some((tag, value)) = names.next() {
        match tag {
            GN_DNS if out.dns.len() < MAX_ENTRIES => {
                out.dns.push(String::from_utf8_lossy(value).into_owned())
            }
            GN_URI if out.uris.len() < MAX_ENTRIES => {
                out.uris.push(String::from_utf8_lossy(value).into_owned())
            }
            GN_IP if out.ips.len() < MAX_ENTRIES => {
                if let Ok(v4) = <[u8; 4]>::try_from(value) {
                    out.ips.push(IpAddr::from(v4));
                } else if let Ok(v6) = <[u8; 16]>::try_from(value) {
                    out.ips.push(IpAddr::from(v6));
                }
            }
            _ => {} // otherName, rfc822Name, directoryName, ...: not SIP identities
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use sip_transport_testkit::certs::{
        CLIENT_DNS_NAME, CLIENT_SIP_URI, SERVER_SIP_URI, TestPki, WILDCARD_DNS_NAME,
    };

    #[test]
    fn reads_server_and_client_sans() {
        let pki = TestPki::generate();
        let id = peer_identity(&pki.server.cert_der);
        assert_eq!(id.dns_names, vec!["localhost".to_owned()]);
        assert_eq!(
            id.ip_addresses,
            vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ]
        );
        let expect: [u8; 32] = Sha256::digest(&pki.server.cert_der).into();
        assert_eq!(id.fingerprint_sha256, expect);

        let client = peer_identity(&pki.client.cert_der);
        assert_eq!(client.dns_names, vec![CLIENT_DNS_NAME.to_owned()]);
        assert_eq!(client.uris, vec![CLIENT_SIP_URI.to_owned()]);
        assert!(client.ip_addresses.is_empty());
    }

    #[test]
    fn reads_a_sip_uri_only_certificate() {
        let pki = TestPki::generate();
        let sans = leaf_alt_names(&pki.sip_uri_server.cert_der);
        assert_eq!(sans.uris, vec![SERVER_SIP_URI.to_owned()]);
        assert!(sans.dns.is_empty() && sans.ips.is_empty());
        let wild = leaf_alt_names(&pki.wildcard_server.cert_der);
        assert_eq!(wild.dns, vec![WILDCARD_DNS_NAME.to_owned()]);
    }

    #[test]
    fn never_panics_on_garbage() {
        let pki = TestPki::generate();
        let der = &pki.client.cert_der;
        // Every truncation and every single-byte corruption of a real certificate.
        for n in 0..der.len() {
            let _ = peer_identity(&der[..n]);
        }
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0xff;
            let id = peer_identity(&bad);
            assert!(id.dns_names.len() <= MAX_ENTRIES);
        }
        for junk in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x1f, 0, 0],
        ] {
            let id = peer_identity(junk);
            assert!(id.dns_names.is_empty() && id.uris.is_empty() && id.ip_addresses.is_empty());
        }
    }
}
