//! `PeerIdentity`: who the peer of a secure flow proved to be, as plain data.
//!
//! A TLS transport fills it from the peer's verified leaf certificate and attaches it to every
//! message received on that flow. It holds no TLS library types, so this crate stays free of
//! rustls; it is not a certificate parser and it does not verify anything by itself.

use std::fmt;
use std::net::IpAddr;

/// The identity a peer presented and we verified: the SHA-256 fingerprint of its leaf
/// certificate and the subjectAltName entries that matter to SIP (RFC 5922 §7.1: DNS names and
/// `sip:`/`sips:` URIs; IP addresses for peers known by address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PeerIdentity {
    /// SHA-256 over the DER encoding of the leaf certificate.
    pub fingerprint_sha256: [u8; 32],
    /// subjectAltName dNSName entries, as written in the certificate.
    pub dns_names: Vec<String>,
    /// subjectAltName iPAddress entries.
    pub ip_addresses: Vec<IpAddr>,
    /// subjectAltName uniformResourceIdentifier entries (e.g. `sip:example.com`, RFC 5922 §7.1).
    pub uris: Vec<String>,
}

impl PeerIdentity {
    /// Builds an identity from a leaf fingerprint and its subjectAltName entries.
    pub fn new(
        fingerprint_sha256: [u8; 32],
        dns_names: Vec<String>,
        ip_addresses: Vec<IpAddr>,
        uris: Vec<String>,
    ) -> Self {
        PeerIdentity {
            fingerprint_sha256,
            dns_names,
            ip_addresses,
            uris,
        }
    }

    /// The fingerprint as 64 lower-case hex digits, without separators.
    pub fn fingerprint_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.fingerprint_sha256 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        s
    }

    /// True when a subjectAltName dNSName equals `name`, ASCII case-insensitively (exact match;
    /// wildcards are not SIP identities, RFC 5922 §7.2).
    pub fn has_dns_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.dns_names
            .iter()
            .any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.fingerprint_hex())?;
        let mut sep = " [";
        for n in &self.dns_names {
            write!(f, "{sep}DNS:{n}")?;
            sep = ", ";
        }
        for ip in &self.ip_addresses {
            write!(f, "{sep}IP:{ip}")?;
            sep = ", ";
        }
        for u in &self.uris {
            write!(f, "{sep}URI:{u}")?;
            sep = ", ";
        }
        if sep == ", " {
            f.write_str("]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_display() {
        let mut fp = [0u8; 32];
        fp[0] = 0xab;
        fp[31] = 0x01;
        let id = PeerIdentity::new(
            fp,
            vec!["Example.COM".into()],
            vec![IpAddr::from([127, 0, 0, 1])],
            vec!["sip:example.com".into()],
        );
        let hex = id.fingerprint_hex();
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("ab00") && hex.ends_with("0001"), "{hex}");
        assert!(id.has_dns_name("example.com."));
        assert!(!id.has_dns_name("www.example.com"));
        let s = id.to_string();
        assert!(
            s.contains("DNS:Example.COM") && s.contains("IP:127.0.0.1") && s.ends_with(']'),
            "{s}"
        );
        let bare = PeerIdentity::new([0; 32], vec![], vec![], vec![]);
        assert_eq!(bare.to_string(), format!("sha256:{}", "0".repeat(64)));
    }
}
