//! Building rustls `ServerConfig` and `ClientConfig` from a [`TlsConfig`]: loads the PEM
//! sources, picks the crypto provider explicitly (`builder_with_provider`), sets up
//! client-certificate verification with `WebPkiClientVerifier` and server verification against
//! webpki-roots or a CA bundle with SIP's name rules ([`SipServerCertVerifier`]), or (only when
//! asked for by name) no verification.
//!
//! Public so that other transports needing TLS (WSS, the facade) build the same configurations.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sip_transport_api::{Error, Result};

use crate::config::{
    CertifiedKeySource, ClientAuth, ServerIdentity, ServerNameRules, ServerVerification,
};
use crate::danger::AcceptAnyServerCertificate;
use crate::sni::SniResolver;
use crate::{SipServerCertVerifier, TlsConfig, pem, provider};

fn invalid(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidConfig {
        reason: format!("{what}: {e}"),
    }
}

impl TlsConfig {
    /// The crypto provider in force: the configured one, else the crate feature's.
    pub fn provider(&self) -> Result<Arc<CryptoProvider>> {
        self.crypto_provider
            .clone()
            .or_else(provider::feature_provider)
            .ok_or_else(|| {
                invalid(
                    "no crypto provider",
                    "enable the `ring` or `aws-lc-rs` feature, or call with_crypto_provider",
                )
            })
    }

    /// The listener's rustls configuration, or `None` when no server identity is set.
    /// Reads certificate and key files now.
    pub fn build_server_config(&self) -> Result<Option<Arc<ServerConfig>>> {
        let source = match &self.server_identity {
            None => return Ok(None),
            Some(ServerIdentity::Config(c)) => return Ok(Some(Arc::clone(c))),
            Some(ServerIdentity::Certificate(c)) => c,
        };
        let provider = self.provider()?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("server protocol versions", e))?;
        let builder = match &self.client_auth {
            ClientAuth::Off => builder.with_no_client_auth(),
            ClientAuth::Optional { ca } | ClientAuth::Required { ca } => {
                let roots = Arc::new(pem::root_store(ca)?);
                let mut v =
                    WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
                if matches!(self.client_auth, ClientAuth::Optional { .. }) {
                    v = v.allow_unauthenticated();
                }
                let verifier = v
                    .build()
                    .map_err(|e| invalid("client certificate verifier", e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let (chain, key) = load_pair(source)?;
        if self.sni_certificates.is_empty() {
            let config = builder
                .with_single_cert(chain, key)
                .map_err(|e| invalid("server certificate and key", e))?;
            return Ok(Some(Arc::new(config)));
        }
        let certified = |(chain, key): Pair, what: &str| {
            CertifiedKey::from_der(chain, key, &provider)
                .map(Arc::new)
                .map_err(|e| invalid(what, e))
        };
        let default = certified((chain, key), "server certificate and key")?;
        let named = self
            .sni_certificates
            .iter()
            .enumerate()
            .map(|(i, source)| {
                certified(
                    load_pair(source)?,
                    &format!("SNI certificate {i} (0-based, in the order added) and its key"),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let resolver = SniResolver::new(default, named).map_err(|i| {
            invalid(
                &format!("SNI certificate {i} (0-based, in the order added)"),
                "its subjectAltName has no DNS name or sip: URI, so no client name could \
                 choose it (the CN does not count)",
            )
        })?;
        Ok(Some(Arc::new(
            builder.with_cert_resolver(Arc::new(resolver)),
        )))
    }

    /// The rustls configuration for outbound connections. Reads certificate files now.
    pub fn build_client_config(&self) -> Result<Arc<ClientConfig>> {
        if let ServerVerification::Config(c) = &self.server_verification {
            return Ok(Arc::clone(c));
        }
        let provider = self.provider()?;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("client protocol versions", e))?;
        let verifier: Arc<dyn ServerCertVerifier> = match &self.server_verification {
            ServerVerification::WebPkiRoots => verifier(
                RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
                provider,
                self.server_name_rules,
            )?,
            ServerVerification::CaBundle(ca) => {
                verifier(pem::root_store(ca)?, provider, self.server_name_rules)?
            }
            ServerVerification::DangerousAcceptAny => {
                tracing::warn!(
                    "TLS server certificate verification is DISABLED \
                     (dangerous_accept_any_server_certificate)"
                );
                Arc::new(AcceptAnyServerCertificate::new(provider))
            }
            ServerVerification::Config(c) => return Ok(Arc::clone(c)),
        };
        // `dangerous()` is only rustls's door for a custom verifier: the SIP one skips nothing.
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client_identity {
            None => builder.with_no_client_auth(),
            Some(source) => {
                let (chain, key) = load_pair(source)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid("client certificate and key", e))?
            }
        };
        Ok(Arc::new(config))
    }
}

/// rustls's webpki verifier for the chain, SIP's rules for the name (RFC 5922 §7): rustls's
/// own name check is HTTPS's (wildcards, no `sip:` URIs).
/// The webpki verifier for `roots`, its name check replaced by SIP's unless HTTPS's rules are
/// asked for.
fn verifier(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
    rules: ServerNameRules,
) -> Result<Arc<dyn ServerCertVerifier>> {
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| invalid("server certificate verifier", e))?;
    Ok(match rules {
        ServerNameRules::Https => webpki,
        ServerNameRules::Sip => Arc::new(SipServerCertVerifier::new(webpki)),
    })
}

type Pair = (
    Vec<rustls_pki_types::CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
);

fn load_pair(source: &CertifiedKeySource) -> Result<Pair> {
    Ok((
        pem::certificates(&source.chain)?,
        pem::private_key(&source.key)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PemSource;
    use sip_transport_testkit::certs::TestPki;

    #[test]
    fn builds_both_sides() {
        let pki = TestPki::generate();
        let cfg = TlsConfig::default()
            .with_certificate_files(&pki.server.cert_path, &pki.server.key_path)
            .with_required_client_certificates(PemSource::file(&pki.ca_cert_path))
            .with_server_ca_file(&pki.ca_cert_path)
            .with_client_certificate(
                PemSource::memory(&pki.client.cert_pem),
                PemSource::memory(&pki.client.key_pem),
            );
        assert!(cfg.build_server_config().expect("server").is_some());
        let client = cfg.build_client_config().expect("client");
        assert!(client.client_auth_cert_resolver.has_certs());
        assert!(
            TlsConfig::client()
                .build_server_config()
                .expect("none")
                .is_none()
        );
        TlsConfig::client()
            .build_client_config()
            .expect("webpki roots");
        TlsConfig::client()
            .dangerous_accept_any_server_certificate()
            .build_client_config()
            .expect("dangerous");
    }

    #[test]
    fn mismatched_key_is_a_config_error() {
        let pki = TestPki::generate();
        let cfg =
            TlsConfig::default().with_certificate_pem(&pki.server.cert_pem, &pki.client.key_pem);
        let e = cfg.build_server_config().expect_err("key of another cert");
        assert!(matches!(e, Error::InvalidConfig { .. }), "{e:?}");
        let e = TlsConfig::client()
            .with_server_ca(PemSource::memory("junk"))
            .build_client_config()
            .expect_err("no CA");
        assert!(!e.is_recoverable());
    }
}
