//! Turning what rustls and tokio-rustls report during a `wss` handshake into the api's typed
//! errors: certificate problems are `Error::TlsCertificate` (not recoverable), other TLS
//! failures `Error::TlsHandshake`, socket failures `Error::Io`.
//!
//! The same mapping as the TLS crate's (kept separate so this crate needs neither the TCP nor
//! the TLS crate); no I/O here.

use std::io;
use std::net::SocketAddr;

use rustls::{AlertDescription, CertificateError};
use sip_transport_api::{CertificateProblem, Error};

/// Maps an I/O error from a TLS handshake with `peer`; `expected_name` is the name we verified.
pub(crate) fn map_io_error(err: io::Error, peer: SocketAddr, expected_name: Option<&str>) -> Error {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    let Some(tls) = tls else {
        return Error::Io { peer, source: err };
    };
    let reason = match &tls {
        rustls::Error::InvalidCertificate(c) => certificate_problem(c, expected_name),
        rustls::Error::NoCertificatesPresented => CertificateProblem::ClientCertificateRequired,
        rustls::Error::AlertReceived(alert) if is_certificate_alert(*alert) => {
            CertificateProblem::RejectedByPeer {
                alert: format!("{alert:?}"),
            }
        }
        _ => {
            return Error::TlsHandshake {
                peer,
                source: Box::new(tls),
            };
        }
    };
    Error::TlsCertificate { peer, reason }
}

/// Alerts a peer sends when it refuses our certificate (RFC 8446 §6.2, RFC 5246 §7.2.2).
fn is_certificate_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateRequired
            | AlertDescription::AccessDenied
    )
}

fn certificate_problem(err: &CertificateError, expected_name: Option<&str>) -> CertificateProblem {
    match err {
        CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            CertificateProblem::Expired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            CertificateProblem::NotYetValid
        }
        CertificateError::NotValidForNameContext { expected, .. } => {
            CertificateProblem::NameMismatch {
                expected: expected.to_str().into_owned(),
            }
        }
        CertificateError::NotValidForName => CertificateProblem::NameMismatch {
            expected: expected_name.unwrap_or("?").to_owned(),
        },
        CertificateError::Revoked => CertificateProblem::Revoked,
        other => CertificateProblem::Other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:443".parse().expect("addr")
    }

    fn wrapped(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn certificate_errors_are_final_others_not() {
        let e = map_io_error(
            wrapped(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            peer(),
            Some("localhost"),
        );
        assert!(matches!(
            e,
            Error::TlsCertificate {
                reason: CertificateProblem::UnknownIssuer,
                ..
            }
        ));
        assert!(!e.is_recoverable());
        let e = map_io_error(
            wrapped(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
            peer(),
            Some("a.example"),
        );
        assert!(e.to_string().contains("a.example"), "{e}");
        let e = map_io_error(wrapped(rustls::Error::HandshakeNotComplete), peer(), None);
        assert!(matches!(e, Error::TlsHandshake { .. }) && e.is_recoverable());
        let e = map_io_error(
            io::Error::from(io::ErrorKind::ConnectionReset),
            peer(),
            None,
        );
        assert!(matches!(e, Error::Io { .. }));
    }
}
