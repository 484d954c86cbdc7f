//! Which rustls crypto provider a `TlsConfig` uses when the caller names none.
//!
//! The provider is always passed explicitly (`builder_with_provider`); this crate never calls
//! `CryptoProvider::install_default()`, which would be a process-wide choice made behind the
//! application's back. With both provider features enabled the opt-in one, `aws-lc-rs`, wins
//! (enabling it is a deliberate act, `ring` is on by default); with neither, the caller must
//! give one through `TlsConfig::with_crypto_provider`.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The provider chosen by this crate's features, if any.
pub(crate) fn feature_provider() -> Option<Arc<CryptoProvider>> {
    #[cfg(feature = "aws-lc-rs")]
    {
        Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    }
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    {
        Some(Arc::new(rustls::crypto::ring::default_provider()))
    }
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_without_global_state() {
        let p = feature_provider().expect("a provider feature is enabled in tests");
        assert!(!p.cipher_suites.is_empty());
        // Choosing one must not install a process default.
        assert!(CryptoProvider::get_default().is_none());
    }
}
