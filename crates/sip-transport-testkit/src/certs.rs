//! Test certificates, generated at test time with rcgen: a CA, server certificates (good,
//! expired, wrong name, from an unknown CA, a wildcard, a `sip:` URI only) and a client
//! certificate, in memory and as PEM files.
//!
//! Nothing is checked in and nothing is reused across runs: each [`TestPki::generate`] makes
//! fresh keys and writes them to its own temporary folder (removed on drop), so openssl,
//! Kamailio-style configs and our own PEM loaders can all read the same material.
//! Not for production: the keys are throwaway and the folder is world-readable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
};

/// The DNS name in [`TestPki::client`]'s subjectAltName.
pub const CLIENT_DNS_NAME: &str = "client.sip-transport.test";
/// The SIP URI in [`TestPki::client`]'s subjectAltName (RFC 5922 §7.1 style identity).
pub const CLIENT_SIP_URI: &str = "sip:client.sip-transport.test";
/// The only name [`TestPki::wrong_name_server`] is valid for.
pub const WRONG_NAME: &str = "not-this-host.sip-transport.test";
/// The only dNSName of [`TestPki::wildcard_server`]: a wildcard, which HTTPS (RFC 6125) would
/// match against `a.wild.sip-transport.test` and SIP (RFC 5922 §7.2) matches against nothing.
pub const WILDCARD_DNS_NAME: &str = "*.wild.sip-transport.test";
/// The only subjectAltName of [`TestPki::sip_uri_server`] (RFC 5922 §7.1 domain identity).
pub const SERVER_SIP_URI: &str = "sip:uri.sip-transport.test";
/// The host of [`SERVER_SIP_URI`]: the SIP domain [`TestPki::sip_uri_server`] is valid for.
pub const SERVER_SIP_DOMAIN: &str = "uri.sip-transport.test";

/// One certificate with its private key: DER, PEM and the PEM files on disk.
#[derive(Debug, Clone)]
pub struct CertKey {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate PEM file.
    pub cert_path: PathBuf,
    /// The key PEM file.
    pub key_path: PathBuf,
}

/// A fresh test PKI: CA, server, client, expired, wrong-name and unknown-CA certificates.
#[derive(Debug)]
pub struct TestPki {
    /// The CA certificate, PEM (the trust anchor for every certificate below but
    /// `untrusted_server`).
    pub ca_cert_pem: String,
    /// The CA certificate PEM file.
    pub ca_cert_path: PathBuf,
    /// Server certificate for `localhost`, `127.0.0.1` and `::1`, signed by the CA.
    pub server: CertKey,
    /// Client certificate (DNS [`CLIENT_DNS_NAME`], URI [`CLIENT_SIP_URI`]), signed by the CA.
    pub client: CertKey,
    /// Server certificate for the same names as `server`, expired since 2001.
    pub expired_server: CertKey,
    /// Server certificate valid only for [`WRONG_NAME`], signed by the CA.
    pub wrong_name_server: CertKey,
    /// Server certificate for the same names as `server`, signed by another CA nobody trusts.
    pub untrusted_server: CertKey,
    /// Server certificate whose only dNSName is [`WILDCARD_DNS_NAME`], plus the iPAddress
    /// `127.0.0.1` (so that a test can reach it verified by address), signed by the CA.
    pub wildcard_server: CertKey,
    /// Server certificate whose only subjectAltName is the URI [`SERVER_SIP_URI`] (no dNSName,
    /// no iPAddress), signed by the CA.
    pub sip_uri_server: CertKey,
    /// The folder holding every PEM file (removed on drop).
    pub dir: PathBuf,
    /// The CA's name and private key, for [`TestPki::issue_server_certificate`].
    ca_name: String,
    ca_key_pem: String,
}

fn server_names() -> Vec<SanType> {
    let dns = |s: &str| SanType::DnsName(s.try_into().expect("valid DNS name"));
    vec![
        dns("localhost"),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]
}

fn leaf_params(cn: &str, sans: Vec<SanType>, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.subject_alt_names = sans;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    p
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

impl TestPki {
    /// Generates everything and writes the PEM files to a fresh folder under the temp dir.
    pub fn generate() -> TestPki {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sip-transport-pki-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create PKI temp dir");

        let ca_key = KeyPair::generate().expect("CA key");
        let ca_key_pem = ca_key.serialize_pem();
        // A distinct CA name per PKI: verifiers find issuers by name, so two PKIs sharing one
        // would fail as a bad signature instead of an unknown issuer.
        let tag = dir.file_name().unwrap_or_default().to_string_lossy();
        let ca_name = format!("sip-transport test CA {tag}");
        let ca = CertifiedIssuer::self_signed(ca_params(&ca_name), ca_key).expect("self-sign CA");
        let rogue_key = KeyPair::generate().expect("rogue CA key");
        let rogue = CertifiedIssuer::self_signed(ca_params("untrusted test CA"), rogue_key)
            .expect("self-sign rogue CA");

        let issue = |name: &str,
                     params: CertificateParams,
                     issuer: &CertifiedIssuer<'_, KeyPair>|
         -> CertKey { issue_into(&dir, name, params, issuer) };

        let server_eku = ExtendedKeyUsagePurpose::ServerAuth;
        let server = issue(
            "server",
            leaf_params("localhost", server_names(), server_eku.clone()),
            &ca,
        );
        let client = issue(
            "client",
            leaf_params(
                CLIENT_DNS_NAME,
                vec![
                    SanType::DnsName(CLIENT_DNS_NAME.try_into().expect("valid DNS name")),
                    SanType::URI(CLIENT_SIP_URI.try_into().expect("valid URI")),
                ],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            &ca,
        );
        let mut expired = leaf_params("localhost", server_names(), server_eku.clone());
        expired.not_before = date_time_ymd(2000, 1, 1);
        expired.not_after = date_time_ymd(2001, 1, 1);
        let expired_server = issue("expired-server", expired, &ca);
        let wrong_name_server = issue(
            "wrong-name-server",
            leaf_params(
                WRONG_NAME,
                vec![SanType::DnsName(
                    WRONG_NAME.try_into().expect("valid DNS name"),
                )],
                server_eku.clone(),
            ),
            &ca,
        );
        let untrusted_server = issue(
            "untrusted-server",
            leaf_params("localhost", server_names(), server_eku.clone()),
            &rogue,
        );
        let wildcard_server = issue(
            "wildcard-server",
            leaf_params(
                WILDCARD_DNS_NAME,
                vec![
                    SanType::DnsName(WILDCARD_DNS_NAME.try_into().expect("valid DNS name")),
                    SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                ],
                server_eku.clone(),
            ),
            &ca,
        );
        let sip_uri_server = issue(
            "sip-uri-server",
            // The CN is no name at all: the URI is the certificate's only identity.
            leaf_params(
                "sip-uri-only test server",
                vec![SanType::URI(SERVER_SIP_URI.try_into().expect("valid URI"))],
                server_eku,
            ),
            &ca,
        );

        let ca_cert_pem = ca.pem();
        let ca_cert_path = dir.join("ca.pem");
        write(&ca_cert_path, &ca_cert_pem);
        TestPki {
            ca_cert_pem,
            ca_cert_path,
            server,
            client,
            expired_server,
            wrong_name_server,
            untrusted_server,
            wildcard_server,
            sip_uri_server,
            dir,
            ca_name,
            ca_key_pem,
        }
    }

    /// Issues one more server certificate from this PKI's CA, valid for `dns_names` (dNSName
    /// entries, wildcards allowed), written as `<file_stem>.pem` and `<file_stem>.key` in
    /// [`TestPki::dir`].
    pub fn issue_server_certificate(&self, file_stem: &str, dns_names: &[&str]) -> CertKey {
        let key = KeyPair::from_pem(&self.ca_key_pem).expect("CA key");
        let issuer = Issuer::new(ca_params(&self.ca_name), key);
        let sans = dns_names
            .iter()
            .map(|n| SanType::DnsName((*n).try_into().expect("valid DNS name")))
            .collect();
        let cn = dns_names.first().copied().unwrap_or("test server");
        let params = leaf_params(cn, sans, ExtendedKeyUsagePurpose::ServerAuth);
        issue_into(&self.dir, file_stem, params, &issuer)
    }
}

/// Signs `params` with a fresh key by `issuer` and writes `<name>.pem` and `<name>.key`.
fn issue_into(
    dir: &Path,
    name: &str,
    params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
) -> CertKey {
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("sign leaf");
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    write(&cert_path, &cert_pem);
    write(&key_path, &key_pem);
    CertKey {
        cert_der: cert.der().to_vec(),
        cert_pem,
        key_pem,
        cert_path,
        key_path,
    }
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_pem_files() {
        let pki = TestPki::generate();
        for ck in [
            &pki.server,
            &pki.client,
            &pki.expired_server,
            &pki.wrong_name_server,
            &pki.untrusted_server,
            &pki.wildcard_server,
            &pki.sip_uri_server,
        ] {
            assert!(ck.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(ck.key_pem.contains("PRIVATE KEY"));
            assert_eq!(
                std::fs::read_to_string(&ck.cert_path).expect("cert file"),
                ck.cert_pem
            );
            assert!(ck.key_path.is_file());
            assert_eq!(ck.cert_der.first(), Some(&0x30), "DER SEQUENCE");
        }
        assert_ne!(pki.server.cert_der, pki.expired_server.cert_der);
        assert!(pki.ca_cert_path.is_file());
        let dir = pki.dir.clone();
        drop(pki);
        assert!(!dir.exists(), "folder removed on drop");
    }
}
