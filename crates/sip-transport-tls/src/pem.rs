//! PEM sources (a file or bytes in memory) and loading them into rustls-pki-types values:
//! certificate chains, private keys and CA bundles.
//!
//! Uses `rustls-pki-types`' `PemObject` (rustls-pemfile is unmaintained). Every failure is an
//! `Error::InvalidConfig` that names the file; nothing here touches the network.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sip_transport_api::{Error, Result};

/// Where PEM text comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file, read when the transport is bound.
    File(PathBuf),
    /// PEM text in memory.
    Memory(Arc<[u8]>),
}

impl PemSource {
    /// A PEM file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        PemSource::File(path.into())
    }

    /// PEM text in memory.
    pub fn memory(pem: impl AsRef<[u8]>) -> Self {
        PemSource::Memory(Arc::from(pem.as_ref()))
    }

    fn describe(&self) -> String {
        match self {
            PemSource::File(p) => p.display().to_string(),
            PemSource::Memory(b) => format!("in-memory PEM ({} bytes)", b.len()),
        }
    }
}

impl fmt::Debug for PemSource {
    // Never prints the bytes: a source may hold a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(p) => f.debug_tuple("File").field(p).finish(),
            PemSource::Memory(b) => write!(f, "Memory({} bytes)", b.len()),
        }
    }
}

fn invalid(src: &PemSource, what: &str, e: impl fmt::Display) -> Error {
    Error::InvalidConfig {
        reason: format!("{what} from {}: {e}", src.describe()),
    }
}

/// Every certificate in the source, in order (leaf first for a chain). At least one.
pub(crate) fn certificates(src: &PemSource) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = match src {
        PemSource::File(p) => CertificateDer::pem_file_iter(p)
            .map_err(|e| invalid(src, "cannot read certificates", e))?
            .collect(),
        PemSource::Memory(b) => CertificateDer::pem_slice_iter(b).collect(),
    };
    let certs = certs.map_err(|e| invalid(src, "cannot read certificates", e))?;
    if certs.is_empty() {
        return Err(invalid(src, "no certificate", "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The first private key in the source (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn private_key(src: &PemSource) -> Result<PrivateKeyDer<'static>> {
    match src {
        PemSource::File(p) => PrivateKeyDer::from_pem_file(p),
        PemSource::Memory(b) => PrivateKeyDer::from_pem_slice(b),
    }
    .map_err(|e| invalid(src, "cannot read a private key", e))
}

/// A trust store of every certificate in the source. At least one must be usable.
pub(crate) fn root_store(src: &PemSource) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certificates(src)?);
    if added == 0 {
        return Err(invalid(
            src,
            "no usable CA certificate",
            format!("{ignored} certificate(s) could not be parsed as trust anchors"),
        ));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_transport_testkit::certs::TestPki;

    #[test]
    fn loads_files_and_memory() {
        let pki = TestPki::generate();
        let from_file = certificates(&PemSource::file(&pki.server.cert_path)).expect("file");
        let from_mem = certificates(&PemSource::memory(&pki.server.cert_pem)).expect("mem");
        assert_eq!(from_file, from_mem);
        assert_eq!(from_file[0].as_ref(), pki.server.cert_der.as_slice());
        private_key(&PemSource::file(&pki.server.key_path)).expect("key file");
        private_key(&PemSource::memory(&pki.client.key_pem)).expect("key mem");
        assert_eq!(
            root_store(&PemSource::memory(&pki.ca_cert_pem))
                .expect("ca")
                .len(),
            1
        );
    }

    #[test]
    fn errors_name_the_source() {
        let missing = PemSource::file("/nonexistent/cert.pem");
        let e = certificates(&missing).expect_err("missing file");
        assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
        let junk = PemSource::memory("not pem at all");
        assert!(certificates(&junk).is_err());
        assert!(private_key(&junk).is_err());
        assert!(format!("{junk:?}").starts_with("Memory("));
    }
}
