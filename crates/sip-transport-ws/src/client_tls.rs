//! The rustls client configuration for outbound `wss`, from a [`ClientTls`] choice.
//!
//! Each choice is expressed as a client-only [`sip_transport_tls::TlsConfig`] and built by the
//! TLS crate (`build_client_config`), so WSS and TLS load CA bundles, pick the crypto provider
//! (`ring` by default, chosen explicitly, never installed process-wide) and skip verification
//! for tests in one place. A caller-made `Arc<rustls::ClientConfig>` is used as given. Not a
//! TLS transport: the bytes flow through tokio-rustls in [`crate::stream`].

use std::sync::Arc;

use rustls::ClientConfig;
use sip_transport_api::Result;
use sip_transport_tls::{PemSource, ServerNameRules, TlsConfig};

use crate::ClientTls;

/// Builds (or returns) the client configuration for `tls`. Reads a CA file now; errors are
/// `Error::InvalidConfig` naming the file or problem.
pub(crate) fn client_config(tls: &ClientTls) -> Result<Arc<ClientConfig>> {
    // A wss server is a web server with a web certificate: HTTPS's name rules (wildcards
    // included), not SIP over TLS's (RFC 5922).
    let client = TlsConfig::client().with_server_name_rules(ServerNameRules::Https);
    let config = match tls {
        ClientTls::WebPkiRoots => client.with_webpki_roots(),
        ClientTls::CaFile(path) => client.with_server_ca_file(path),
        ClientTls::CaPem(pem) => client.with_server_ca(PemSource::memory(pem)),
        ClientTls::Config(c) => client.with_client_config(Arc::clone(c)),
        ClientTls::Tls(c) => (**c).clone(),
        ClientTls::DangerAcceptInvalidCertsForTests => {
            client.dangerous_accept_any_server_certificate()
        }
    };
    config.build_client_config()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_transport_api::Error;

    #[test]
    fn builds_each_kind() {
        assert!(client_config(&ClientTls::WebPkiRoots).is_ok());
        assert!(client_config(&ClientTls::DangerAcceptInvalidCertsForTests).is_ok());
        let err = client_config(&ClientTls::CaFile("/nonexistent/ca.pem".into()))
            .expect_err("missing file");
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
        assert!(!err.is_recoverable());
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = client_config(&ClientTls::CaPem(b"not pem".to_vec())).expect_err("no certs");
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
        assert!(err.to_string().contains("no certificate"), "{err}");
    }

    #[test]
    fn a_tls_config_is_built_by_the_tls_crate() {
        let given = TlsConfig::client().dangerous_accept_any_server_certificate();
        assert!(client_config(&ClientTls::Tls(Box::new(given))).is_ok());
        let made = client_config(&ClientTls::WebPkiRoots).expect("webpki roots");
        let used = client_config(&ClientTls::Config(Arc::clone(&made))).expect("as given");
        assert!(Arc::ptr_eq(&made, &used));
        let bad = TlsConfig::client().with_server_ca(PemSource::memory("junk"));
        let err = client_config(&ClientTls::Tls(Box::new(bad))).expect_err("no CA");
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    }
}
