//! Building the rustls client configuration for outbound `wss` from a [`ClientTls`] choice.
//!
//! The crypto provider is `ring`, chosen explicitly with `builder_with_provider`: this crate
//! never calls `install_default()` and never relies on a process-wide provider. A caller-made
//! `Arc<rustls::ClientConfig>` is used as given. Not a TLS transport: the bytes flow through
//! tokio-rustls in [`crate::stream`].

use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::ClientTls;

/// The provider every configuration built here uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds (or returns) the client configuration for `tls`. Errors name the file or problem.
pub(crate) fn client_config(tls: &ClientTls) -> io::Result<Arc<ClientConfig>> {
    let roots = match tls {
        ClientTls::Config(c) => return Ok(c.clone()),
        ClientTls::DangerAcceptInvalidCertsForTests => return insecure_config(),
        ClientTls::WebPkiRoots => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        ClientTls::CaFile(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("CA file {}: {e}", path.display()),
                    )
                })?;
            store_of(certs, &path.display().to_string())?
        }
        ClientTls::CaPem(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("CA PEM: {e}")))?;
            store_of(certs, "the CA PEM")?
        }
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn store_of(certs: Vec<CertificateDer<'static>>, what: &str) -> io::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} holds no usable certificate"),
        ));
    }
    Ok(store)
}

fn insecure_config() -> io::Result<Arc<ClientConfig>> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyCertificate(
        provider.signature_verification_algorithms,
    ));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts every certificate but still checks the handshake signatures, so the connection is
/// at least bound to the key the server presented. For tests only.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_each_kind() {
        assert!(client_config(&ClientTls::WebPkiRoots).is_ok());
        assert!(client_config(&ClientTls::DangerAcceptInvalidCertsForTests).is_ok());
        let err = client_config(&ClientTls::CaFile("/nonexistent/ca.pem".into()))
            .expect_err("missing file");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = client_config(&ClientTls::CaPem(b"not pem".to_vec())).expect_err("no certs");
        assert!(err.to_string().contains("no usable certificate"), "{err}");
    }
}
